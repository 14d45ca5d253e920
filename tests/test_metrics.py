"""Success probability, TTS99 and timing normalisation on hand-made SampleSets."""

from __future__ import annotations

import math

import dimod
import numpy as np
import pytest

from qannealq.errors import InvalidArgumentError
from qannealq.metrics import (call_timing, read_energies, residual_gap, solver_seconds, success_probability, tts,
                              tts99)


def _sampleset(energies, counts=None, timing=None) -> dimod.SampleSet:
    """A SampleSet over one variable whose records have exactly ``energies`` (and ``counts`` occurrences)."""
    energies = np.asarray(energies, dtype=float)
    samples = np.zeros((energies.size, 1), dtype=np.int8)
    counts = np.ones(energies.size, int) if counts is None else np.asarray(counts)
    ss = dimod.SampleSet.from_samples((samples, ["x"]), dimod.BINARY, energies, num_occurrences=counts)
    ss.info["timing"] = timing or {}
    return ss


def test_read_energies_repeat_records_by_their_occurrences():
    ss = _sampleset([1.0, 2.0, 3.0], counts=[3, 1, 2])
    np.testing.assert_array_equal(read_energies(ss), [1.0, 1.0, 1.0, 2.0, 3.0, 3.0])


def test_success_probability_zero_one_and_between():
    ref = 0.25
    assert success_probability([0.3, 0.5, 1.0], ref) == 0.0
    assert success_probability([0.25, 0.25], ref) == 1.0
    assert success_probability(read_energies(_sampleset([0.25, 0.4], counts=[3, 1])), ref) == 0.75
    # relative eps: float noise counts as the optimum, a 1 % miss only under the loose target
    assert success_probability([ref * (1 + 1e-12)], ref) == 1.0
    assert success_probability([ref * 1.005], ref) == 0.0
    assert success_probability([ref * 1.005], ref, eps=0.01) == 1.0
    assert math.isnan(success_probability([], ref))
    # no reference, no success measured (it was 0.0, and then a TTS of inf: a solver that never succeeds)
    assert math.isnan(success_probability([0.25, 0.3], float("nan")))
    assert math.isnan(tts(1.0, success_probability([0.25], float("nan"))))
    with pytest.raises(InvalidArgumentError, match="eps"):
        success_probability([1.0], ref, eps=-1)


def test_tts99_formula_and_its_limits():
    assert tts99(0.2, 0.0) == math.inf
    assert tts99(0.2, 1.0) == 0.2  # one read
    assert tts99(0.2, 0.995) == 0.2  # never less than one read
    p = 0.1
    assert tts99(0.2, p) == pytest.approx(0.2 * math.log(0.01) / math.log(0.9), rel=1e-12)
    assert tts99(0.2, p) == pytest.approx(0.2 * 43.7093, rel=1e-4)  # 43.7 reads for 99 % at p = 0.1
    assert tts(1.0, 0.5, confidence=0.5) == 1.0
    assert math.isnan(tts99(float("nan"), 0.5))
    with pytest.raises(InvalidArgumentError):
        tts99(1.0, 1.5)
    # a call whose reads share one cost (QAOA's shots, one optimisation): never less than that call
    assert tts99(0.2 / 1024, 0.5, t_call=0.2) == 0.2
    assert tts99(0.2 / 1024, 0.001, t_call=0.2) == pytest.approx(0.2 / 1024 * math.log(0.01) / math.log(0.999))
    assert tts99(0.2 / 1024, 0.0, t_call=0.2) == math.inf and math.isnan(tts99(0.1, 0.5, t_call=float("nan")))


def test_timing_is_normalised_to_seconds_per_read():
    ss = _sampleset([1.0, 2.0], counts=[4, 6], timing={"preprocessing_ns": 5_000_000, "sampling_ns": 30_000_000,
                                                        "postprocessing_ns": 1_000_000})
    timing = call_timing(ss, wall_s=0.05)
    assert timing.reads == 10
    assert timing.solver_s == pytest.approx(0.03)
    assert timing.solver_per_read == pytest.approx(0.003)
    assert timing.wall_per_read == pytest.approx(0.005)
    assert math.isnan(timing.qpu_access_s)


def test_a_qpu_access_time_in_microseconds_is_the_solver_time():
    ss = _sampleset([1.0], counts=[100], timing={"sampling_ns": 900_000_000, "qpu_access_time": 15_000.0})
    timing = call_timing(ss, wall_s=2.0)
    assert timing.solver_s == pytest.approx(0.015) == timing.qpu_access_s
    assert timing.solver_per_read == pytest.approx(0.00015)
    assert math.isnan(solver_seconds({}))


def test_residual_gap_is_relative_to_the_reference():
    assert residual_gap(1.5, 1.0) == pytest.approx(0.5)
    np.testing.assert_allclose(residual_gap(np.array([0.2, 0.3]), 0.2), [0.0, 0.5])
    assert residual_gap(0.1, 0.0) == pytest.approx(0.1)  # absolute where the reference is 0
