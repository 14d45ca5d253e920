"""Helpers shared by the backends: capacity checks, seeds, timing in ns, closing a child (ARCHITECTURE.md §3)."""

from __future__ import annotations

import time

import dimod
import numpy as np

from qannealq.contract import check_capacity, draw_seed
from qannealq.errors import InvalidArgumentError

__all__ = ["check_capacity", "draw_seed", "solver_seed", "record", "now_ns", "dense_binary", "close_child", "warm_bits",
           "as_bits"]

now_ns = time.perf_counter_ns


def record(sampleset: dimod.SampleSet, seed: int | None, start_ns: int, **timing: int) -> dimod.SampleSet:
    """Record ``seed`` in ``info["seed"]`` and complete ``info["timing"]`` with the dwave-samplers keys.

    Keys already present (a backend's own figures) are kept; missing ones are filled from ``timing`` or,
    for ``sampling_ns``, from the wall time since ``start_ns``. It resolves ``sampleset``: a backend that
    returns before its answer is in (``SampleSet.from_future``) calls it in the resolve hook.
    """
    sampleset.resolve()
    info = sampleset.info
    times = dict(info.get("timing") or {})
    for key, value in timing.items():
        times.setdefault(key, int(value))
    times.setdefault("preprocessing_ns", 0)
    times.setdefault("sampling_ns", now_ns() - start_ns)
    times.setdefault("postprocessing_ns", 0)
    info["timing"] = times
    info["seed"] = seed
    return sampleset


def solver_seed(seed: int | None, bound: int) -> int | None:
    """The contract's ``seed`` (``0..2**32-1``, :func:`draw_seed`) for a solver that takes seeds below ``bound``:
    itself within that range (a result recorded under it is the solver's own), else one derived from all its bits
    (``SeedSequence``), so that seeds apart by ``bound`` are other seeds (``seed % bound`` made ``s + 2**31`` the
    same as ``s``); None stays None."""
    if seed is None or seed < bound:
        return seed
    return int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0] % np.uint64(bound))


def dense_binary(bqm: dimod.BinaryQuadraticModel) -> tuple[np.ndarray, np.ndarray, float, list]:
    """The BINARY form of ``bqm`` as ``(linear, P, offset, labels)``: ``P`` symmetric with a zero diagonal and
    each interaction split over both triangles, so ``energy(x) == linear·x + xᵀPx + offset``."""
    binary = bqm.change_vartype("BINARY", inplace=False)
    lin, (row, col, quad), offset, labels = binary.to_numpy_vectors(return_labels=True)
    m = len(labels)
    mat = np.zeros((m, m))
    np.add.at(mat, (row, col), 0.5 * quad)
    return np.asarray(lin, dtype=np.float64), mat + mat.T, float(offset), list(labels)


def as_bits(values: np.ndarray) -> np.ndarray | None:
    """``values`` as bits, read as dwave-samplers read ``initial_states``: 0/1 values are bits and -1/+1 values
    spins (1 is 1 either way), whatever the BQM's vartype; None for anything else (each caller names it its way).
    The dtype stays."""
    if np.isin(values, (0, 1)).all():
        return values
    if np.isin(values, (-1, 1)).all():
        return (values + 1) // 2
    return None


def warm_bits(row) -> np.ndarray:
    """One warm-start row as bits (:func:`as_bits`), uint8; anything else is refused."""
    arr = np.asarray(row)
    bits = as_bits(arr)
    if bits is not None:
        return bits.astype(np.uint8)
    raise InvalidArgumentError(f"initial_states must hold 0/1 (binary) or -1/+1 (spin) values; got "
                               f"{sorted(set(arr.tolist()))[:6]}")


def close_child(child: object) -> None:
    """``child.close()`` when the child has one (a ``DWaveSampler`` closes its cloud client)."""
    close = getattr(child, "close", None)
    if callable(close):
        close()
