"""What a sampler returns to the solve loop, checked against the backend contract before it is decoded.

A sampler of the user's (any ``dimod.Sampler``, or one with ``sample_layer``) may break the contract in ways that
decoding alone does not see: a whole layer's assignments of 3 were decoded to integers off the grid (a layer error of
838 where the sampler's solution had 0.99, without a word); a neuron's energies that the sampler made up chose the
wrong sample (a layer error of 4.16 where its best reads had 0.95) and NaN energies the first; a SampleSet over other
labels, assignments of the wrong shape or a result that is no SampleSet or LayerSample ended in numpy's broadcast
error or an ``AttributeError``, naming nothing. Each is refused here with a :class:`~qannealq.errors.BackendError`
naming the backend and what is wrong (the solve loop adds the layer and the neuron). Energies are the BQM's
(ARCHITECTURE.md §1: ``energy(v) == E_i(decode(v))``) to :data:`ENERGY_RTOL`; an ``info`` without ``timing`` is
allowed, from a SampleSet or a LayerSample (dimod's own samplers keep none; every backend of ours reports it, which
``tests/test_backends_contract.py`` checks).
"""

from __future__ import annotations

from typing import Any, Mapping

import dimod
import numpy as np

from qannealq.errors import BackendError

__all__ = ["ENERGY_RTOL", "check_sampleset", "best_sample_row", "check_layer_sample"]

#: How far a reported energy may be from the BQM's, relative to the larger of its size and the size of the BQM's
#: offset (its energy at v = 0, the sum's first term), but at most 1: float64 sums agree to about 1e-12 on the
#: project's layers, a float32 solver's to 1e-6 of the offset at most (MNIST's first layer, int1-int8). Relative to
#: the larger of the energy and 1 alone, the tolerance was an absolute 1e-5 where energies are small, a neuron's
#: whole 8e-6 on that layer at int8: energies all 0, or another read's, passed.
ENERGY_RTOL = 1e-5


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


def _energies_agree(backend: str, what: str, item: str, reported: np.ndarray, true: np.ndarray,
                    offset: np.ndarray | float) -> None:
    """Refuse ``reported`` energies (of ``what``'s ``item`` 0, 1...) that are not the BQM's ``true`` ones, to
    :data:`ENERGY_RTOL` of the larger of their size and their BQM's ``offset``'s (at most 1)."""
    scale = np.maximum(np.abs(true), np.minimum(np.abs(offset), 1.0))
    bad = ~(np.abs(reported - true) <= ENERGY_RTOL * scale)  # NaN is bad
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise BackendError(f"backend {backend!r} reported energy {float(reported[j])!r} for {item} {j} of {what} "
                           f"where its BQM gives {float(true[j])!r} ({int(bad.sum())} of {bad.size} disagree): a "
                           "sampler's energies must be those of the BQM it was given")


def _row_energies(problem: Any, i: int, rows: np.ndarray) -> np.ndarray:
    """The BQM energies of neuron ``i`` at full binary ``rows`` ``(k, m)``: its errors at their decoded values (the
    QUBO is exact), never from its BQM built again."""
    values = problem.grid.dequantize(problem.base[i] + rows, problem.steps[i])
    return problem.neuron_errors(values, np.full(len(rows), i))


def check_sampleset(sampleset: Any, variables: list, backend: str, what: str) -> np.ndarray:
    """The samples ``(k, len(variables))`` of ``sampleset`` (resolved here), in the order of ``variables`` and as
    0/1 (a SPIN set's -1/+1 mapped), after checking that it is a ``dimod.SampleSet`` over exactly ``variables`` with
    such values and an ``info`` whose timing holds numbers.

    Raises:
        BackendError: naming ``backend``, ``what`` it sampled and what is wrong.
    """
    if not isinstance(sampleset, dimod.SampleSet):
        raise BackendError(f"backend {backend!r} returned {type(sampleset).__name__} for {what}: sample(bqm) must "
                           "return a dimod.SampleSet")
    sampleset.resolve()
    _timing(sampleset.info, backend, what)
    labels = list(sampleset.variables)
    samples = np.asarray(sampleset.record.sample)
    if labels != variables:  # the BQM's own order (most samplers keep it) needs neither the sets nor a gather
        missing = sorted(set(variables) - set(labels), key=repr)
        extra = sorted(set(labels) - set(variables), key=repr)
        if missing or extra:
            raise BackendError(f"backend {backend!r} returned samples over other variables than {what}'s BQM: "
                               f"{len(missing)} missing ({missing[:5]}), {len(extra)} not in it ({extra[:5]}); a "
                               "sample must hold every variable of the BQM, under its labels")
        position = {label: k for k, label in enumerate(labels)}
        samples = samples[:, [position[v] for v in variables]]
    allowed = (-1, 1) if sampleset.vartype is dimod.SPIN else (0, 1)
    if not ((samples == allowed[0]) | (samples == allowed[1])).all():
        raise BackendError(f"backend {backend!r} returned a {sampleset.vartype.name} sample for {what} with values "
                           f"{sorted(set(np.unique(samples).tolist()) - set(allowed))[:5]}: each must be one of "
                           f"{allowed}")
    return (samples + 1) // 2 if sampleset.vartype is dimod.SPIN else samples


def best_sample_row(problem: Any, i: int, sampleset: Any, backend: str) -> np.ndarray:
    """The binary row ``(m,)`` of the lowest-energy sample of neuron ``i``'s resolved ``sampleset``, by the BQM's
    energies, after checking that it holds samples of exactly the BQM's variables, 0/1 (or -1/+1 in a SPIN set),
    energies that agree with the BQM's and a timing of numbers.

    Raises:
        BackendError: naming ``backend`` and what is wrong (a SampleSet of no sample too).
    """
    what = f"neuron {i}"
    idx = problem.variables(i)
    samples = check_sampleset(sampleset, idx.tolist(), backend, what)
    if len(samples) == 0:
        raise BackendError(f"backend {backend!r} returned no sample for neuron {i} of layer {problem.name!r}: a "
                           "sampler must return at least one sample per call")
    rows = np.zeros((len(samples), problem.num_coordinates), dtype=np.int64)
    rows[:, idx] = samples
    true = _row_energies(problem, i, rows)
    _energies_agree(backend, what, "sample", np.asarray(sampleset.record.energy, dtype=np.float64), true,
                    problem.offsets[i])
    return rows[int(np.argmin(true))]


def check_layer_sample(problem: Any, result: Any, backend: str) -> tuple[np.ndarray, dict]:
    """The binary assignments ``(n, m)`` and info of a whole-layer sampler's ``result``, after checking that it is a
    :class:`~qannealq.contract.LayerSample` of ``(n, m)`` assignments, 0 or 1 at every free coordinate, ``(n,)``
    energies that agree with the layer's, and an info dict with a timing of numbers where it has one (optional, as
    for a SampleSet: the module docstring).

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
    if not ((assignments == 0) | (assignments == 1) | ~free).all():  # no gather of the free ones, no isin
        bad = sorted(set(np.unique(assignments[free]).tolist()) - {0, 1})
        raise BackendError(f"backend {backend!r} returned assignments with values {bad[:5]} for {what}: each free "
                           "coordinate's must be 0 or 1 (its value is the grid's floor plus it)")
    assignments = np.where(free, assignments, 0).astype(np.int64)
    energies = np.asarray(result.energies, dtype=np.float64)
    if energies.shape != shape[:1]:
        raise BackendError(f"backend {backend!r} returned energies of shape {energies.shape} for {what}: "
                           f"sample_layer must return one per neuron, {shape[:1]}")
    true = problem.errors(problem.decode_layer(assignments)[1])
    _energies_agree(backend, what, "neuron", energies, true, _layer_scale(problem, true))
    return assignments, result.info


def _layer_scale(problem: Any, true: np.ndarray) -> np.ndarray | float:
    """The whole-layer check's floor of each energy's scale: the neurons' offsets where the problem already holds
    them (a sampler formed its QUBOs' linear terms), else the layer's largest error. Asking for the offsets forms
    a product of ``H`` with every neuron's base values, which ``layer-sa`` avoids (``fast`` on a layer too wide to
    anneal never forms it): the check made every such solve pay it. The largest error is of the offsets' size or
    below, so made-up energies of a neuron are still refused at int8, and float32 sums still pass."""
    if problem.per_neuron or "offsets" in vars(problem):
        return problem.offsets
    return float(np.max(np.abs(true))) if true.size else 0.0
