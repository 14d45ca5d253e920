"""Solution-quality and time-to-solution metrics for comparing samplers on the same BQMs.

Energies here are neuron errors (mean squared errors, > 0), so relative gaps are well defined.

* :func:`read_energies`: every read's energy (a record seen ``k`` times counts ``k`` times).
* :func:`residual_gap`: ``(E - E_ref) / |E_ref|``.
* :func:`success_probability`: the share of reads with ``E <= E_ref + eps |E_ref| + noise``, ``noise`` the
  float noise of the BQM's energies (:func:`energy_noise`, a few ulps of the sum of its |coefficients|).
* :func:`tts`: time to solution at 99 % confidence, ``t_read ln(1 - 0.99) / ln(1 - p)`` reads' worth of time,
  never less than one read (``t_read`` where ``p >= 0.99``), infinite where ``p = 0`` (Rønnow et al. 2014); for
  :data:`ONE_CALL_FLOOR`'s backends (QAOA: shots of one optimisation) never less than one call.
* :func:`call_timing`: the time of one sampler call, normalised: the *solver* time (a Leap hybrid solver's
  ``run_time``, a QPU's ``qpu_access_time``, else the sampler's ``sampling_ns``) and the *wall* time of the whole
  call (embedding, transpilation, network, pre- and post-processing), each also per read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import dimod
import numpy as np

from qannealq.errors import InvalidArgumentError

__all__ = ["read_energies", "residual_gap", "success_probability", "target_energy", "energy_noise", "NOISE_ULPS",
           "tts", "tts99", "ONE_CALL_FLOOR", "CallTiming", "call_timing", "solver_seconds", "QPU_ACCESS_KEY",
           "RUN_TIME_KEY"]

QPU_ACCESS_KEY = "qpu_access_time"
"""The QPU's own access time in ``info["timing"]``, in microseconds (D-Wave's unit)."""
RUN_TIME_KEY = "run_time"
"""A Leap hybrid solver's own run time in ``info["timing"]``, in microseconds: its ``qpu_access_time`` is the
part of it spent on a QPU (40 ms of a 3 s run), not the solver's time."""


def read_energies(sampleset: dimod.SampleSet) -> np.ndarray:
    """Every read's energy, float64: each record repeated ``num_occurrences`` times."""
    record = sampleset.record
    counts = record.num_occurrences if "num_occurrences" in record.dtype.names else np.ones(len(record), int)
    return np.repeat(np.asarray(record.energy, dtype=np.float64), np.asarray(counts, dtype=np.int64))


def residual_gap(energy: float | np.ndarray, reference: float) -> float | np.ndarray:
    """``(E - E_ref) / |E_ref|`` (``E - E_ref`` when ``E_ref == 0``); 0 at the optimum."""
    scale = abs(reference)
    gap = np.asarray(energy, dtype=np.float64) - reference
    out = gap / scale if scale > 0 else gap
    return float(out) if np.ndim(out) == 0 else out


NOISE_ULPS = 16
""":func:`energy_noise` in ulps of the sum of a BQM's |coefficients| (reordering the sums of an MNIST neuron's
energy, 599 variables, moved it by up to 4 of them)."""


def energy_noise(bqm: dimod.BinaryQuadraticModel) -> float:
    """The float noise of ``bqm``'s energies: :data:`NOISE_ULPS` ulps of ``|offset| + sum |biases|``, what two
    sums of the same state's terms in another order may differ by. Below ``eps |E_ref|`` on a neuron (at
    ``eps`` 1e-9 at most about a tenth of it on the digits and MNIST neurons measured), it matters where
    ``E_ref`` is 0: the optimum of a degenerate neuron, ``0.3 + 0.1 + 0.2 - 0.6`` computed as 1.1e-16, failed
    ``E <= 0 + eps * 0``."""
    linear, (_, _, quadratic), offset = bqm.to_numpy_vectors()
    total = abs(float(offset)) + float(np.abs(linear).sum()) + float(np.abs(quadratic).sum())
    return NOISE_ULPS * float(np.spacing(total))


def target_energy(reference: float, eps: float, noise: float = 0.0) -> float:
    """The success threshold ``E_ref + eps |E_ref| + noise`` (``noise``: :func:`energy_noise`)."""
    if not eps >= 0:
        raise InvalidArgumentError(f"eps={eps!r} must be >= 0 (a relative tolerance, e.g. 1e-9)")
    return reference + eps * abs(reference) + noise


def success_probability(energies: np.ndarray, reference: float, eps: float = 1e-9, noise: float = 0.0) -> float:
    """Share of ``energies`` (one per read) within ``eps`` (relative) of ``reference``, and within the BQM's
    float ``noise`` (absolute, :func:`energy_noise`) of it; NaN without reads or without a reference (NaN: 0
    would make a TTS of ``inf``, a solver that never succeeds)."""
    energies = np.asarray(energies, dtype=np.float64)
    if energies.size == 0 or math.isnan(reference):
        return float("nan")
    return float(np.mean(energies <= target_energy(reference, eps, noise)))


def tts(t_read: float, p: float, confidence: float = 0.99, t_call: float | None = None) -> float:
    """Time to reach the target with probability ``confidence``: ``t_read ln(1-c) / ln(1-p)``, >= one read.

    Args:
        t_read: time of one read (seconds, or any unit: the result has the same).
        p: success probability of one read.
        confidence: e.g. 0.99 for TTS99.
        t_call: where a call's reads share a cost that fewer reads would not shrink (``qaoa``'s shots all come
            from one optimisation of its angles, :data:`ONE_CALL_FLOOR`), the time of one call: no solution
            comes sooner, so the result is at least it. None: reads are independent, the floor is one read.

    Returns:
        ``inf`` where ``p == 0``; ``t_read`` (or ``t_call``) where ``p >= confidence``; NaN where ``p`` or
        ``t_read`` is NaN.
    """
    if not 0 < confidence < 1:
        raise InvalidArgumentError(f"confidence={confidence!r} must lie in (0, 1)")
    if math.isnan(p) or math.isnan(t_read) or (t_call is not None and math.isnan(t_call)):
        return float("nan")
    if not 0 <= p <= 1 or t_read < 0 or (t_call is not None and t_call < 0):
        raise InvalidArgumentError(f"p={p!r} must lie in [0, 1] and t_read={t_read!r} (t_call={t_call!r}) must "
                                   "be >= 0")
    if p == 0:
        return float("inf")
    reads = float(t_read) if p >= confidence else float(t_read * math.log(1 - confidence) / math.log1p(-p))
    return reads if t_call is None else max(reads, float(t_call))


def tts99(t_read: float, p: float, t_call: float | None = None) -> float:
    """:func:`tts` at 99 % confidence."""
    return tts(t_read, p, 0.99, t_call)


ONE_CALL_FLOOR = ("qaoa",)
"""Backends whose reads are shots of one optimisation: a call with fewer reads costs about as much (QAOA's
angles are optimised first, on every call), so their TTS99 is at least one call (:func:`tts`'s ``t_call``).
Before 2026-12-06 it was floored at one shot: with ``p`` near 1 on a small neuron, 1/1024 of a call."""


def solver_seconds(info: Mapping[str, Any]) -> float:
    """The pure solver time of a call from its ``info``: a hybrid solver's ``run_time`` (µs) if present, else
    ``qpu_access_time`` (µs), else ``timing["sampling_ns"]``; NaN when none is there."""
    timing = info.get("timing") or {}
    if RUN_TIME_KEY in timing:
        return float(timing[RUN_TIME_KEY]) * 1e-6
    if QPU_ACCESS_KEY in timing:
        return float(timing[QPU_ACCESS_KEY]) * 1e-6
    if "sampling_ns" in timing:
        return float(timing["sampling_ns"]) * 1e-9
    return float("nan")


@dataclass(frozen=True)
class CallTiming:
    """One sampler call's time, normalised.

    Attributes:
        solver_s: pure solver time (:func:`solver_seconds`).
        wall_s: wall time of the whole call, submission to resolved answer.
        reads: reads the call returned.
        qpu_access_s: the QPU's access time when reported (NaN otherwise).
    """

    solver_s: float
    wall_s: float
    reads: int
    qpu_access_s: float = float("nan")

    @property
    def solver_per_read(self) -> float:
        return self.solver_s / self.reads if self.reads else float("nan")

    @property
    def wall_per_read(self) -> float:
        return self.wall_s / self.reads if self.reads else float("nan")


def call_timing(sampleset: dimod.SampleSet, wall_s: float) -> CallTiming:
    """The :class:`CallTiming` of a resolved SampleSet whose call took ``wall_s`` seconds."""
    timing = sampleset.info.get("timing") or {}
    qpu = float(timing[QPU_ACCESS_KEY]) * 1e-6 if QPU_ACCESS_KEY in timing else float("nan")
    return CallTiming(solver_seconds(sampleset.info), float(wall_s), int(read_energies(sampleset).size), qpu)
