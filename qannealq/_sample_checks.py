"""What a whole-layer sampler returns to the solve loop, checked against the backend contract before it is decoded.

A sampler of the user's (one with ``sample_layer``) may break the contract in ways that decoding alone does not see:
its assignments of 3 were decoded to integers off the grid (a layer error of 838 where the sampler's solution had
0.99, without a word), assignments of the wrong shape ended in numpy's broadcast error, and a result that is no
:class:`~qannealq.contract.LayerSample` in an ``AttributeError``, naming nothing. Each is refused here with a
:class:`~qannealq.errors.BackendError` naming the backend and what is wrong (the solve loop adds the layer). Energies
are the BQM's (ARCHITECTURE.md §1: ``energy(v) == E_i(decode(v))``) to :data:`ENERGY_RTOL`; an ``info`` without
``timing`` is allowed (dimod's own samplers keep none).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from qannealq.errors import BackendError

__all__ = ["ENERGY_RTOL", "sampler_name", "check_layer_sample"]

#: How far a reported energy may be from the BQM's, relative to the larger of its size and 1 (float64 sums agree to
#: about 1e-12 on the project's layers; a float32 solver's to about 1e-6).
ENERGY_RTOL = 1e-5


def sampler_name(sampler: Any, backend: str = "") -> str:
    """``backend`` where the caller named it, else the registry name :func:`qannealq.backends.get_sampler` built
    ``sampler`` under, else its class's name."""
    if backend:
        return backend
    built = getattr(sampler, "_qannealq_built", None)
    return str(built[0]) if built else type(sampler).__name__


def _timing(info: Any, backend: str, what: str) -> None:
    """Refuse an ``info`` that is no mapping, or a ``timing`` whose nanosecond keys are not finite numbers."""
    if not isinstance(info, Mapping):
        raise BackendError(f"backend {backend!r} returned info={info!r} for {what}: it must be a dict (timing in "
                           "info['timing'], in nanoseconds)")
    timing = info.get("timing")
    if timing is None:
        return
    if not isinstance(timing, Mapping):
        raise BackendError(f"backend {backend!r} returned info['timing']={timing!r} for {what}: it must be a dict of "
                           "nanoseconds (preprocessing_ns, sampling_ns, postprocessing_ns)")
    for key, value in timing.items():
        if str(key).endswith("_ns") and (isinstance(value, bool) or not isinstance(value, (int, float, np.number))
                                         or not np.isfinite(value)):
            raise BackendError(f"backend {backend!r} returned info['timing'][{key!r}]={value!r} for {what}: it must "
                               "be a finite number of nanoseconds")


def _energies_agree(backend: str, what: str, item: str, reported: np.ndarray, true: np.ndarray) -> None:
    """Refuse ``reported`` energies (of ``what``'s ``item`` 0, 1...) that are not the BQM's ``true`` ones."""
    bad = ~(np.abs(reported - true) <= ENERGY_RTOL * np.maximum(1.0, np.abs(true)))  # NaN is bad
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise BackendError(f"backend {backend!r} reported energy {float(reported[j])!r} for {item} {j} of {what} "
                           f"where its BQM gives {float(true[j])!r} ({int(bad.sum())} of {bad.size} disagree): a "
                           "sampler's energies must be those of the BQM it was given")


def check_layer_sample(problem: Any, result: Any, backend: str) -> tuple[np.ndarray, dict]:
    """The binary assignments ``(n, m)`` and info of a whole-layer sampler's ``result``, after checking that it is a
    :class:`~qannealq.contract.LayerSample` of ``(n, m)`` assignments, 0 or 1 at every free coordinate, ``(n,)``
    energies that agree with the layer's, and an info dict with a timing of numbers.

    Raises:
        BackendError: naming ``backend`` and what is wrong.
    """
    what = f"the layer's {problem.num_neurons} neurons"
    if not all(hasattr(result, name) for name in ("assignments", "energies", "info")):
        raise BackendError(f"backend {backend!r} returned {type(result).__name__} from sample_layer: it must return "
                           "a qannealq.LayerSample(assignments, energies, info)")
    _timing(result.info, backend, what)
    shape = (problem.num_neurons, problem.num_coordinates)
    assignments = np.asarray(result.assignments)
    if assignments.shape != shape:
        raise BackendError(f"backend {backend!r} returned assignments of shape {assignments.shape} for {what}: "
                           f"sample_layer must return one row per neuron and coordinate, {shape}")
    free = np.broadcast_to(problem.free, shape)
    if not np.isin(assignments[free], (0, 1)).all():
        bad = sorted(set(np.unique(assignments[free]).tolist()) - {0, 1})
        raise BackendError(f"backend {backend!r} returned assignments with values {bad[:5]} for {what}: each free "
                           "coordinate's must be 0 or 1 (its value is the grid's floor plus it)")
    assignments = np.where(free, assignments, 0).astype(np.int64)
    energies = np.asarray(result.energies, dtype=np.float64)
    if energies.shape != shape[:1]:
        raise BackendError(f"backend {backend!r} returned energies of shape {energies.shape} for {what}: "
                           f"sample_layer must return one per neuron, {shape[:1]}")
    _energies_agree(backend, what, "neuron", energies, problem.errors(problem.decode_layer(assignments)[1]))
    return assignments, result.info
