"""Property-based tests (hypothesis) of the formulation, the baselines and layer-sa's warm-start guarantee.

Random layers: 1..4 neurons, 1..6 inputs, with or without a bias, 1..12 calibration samples (so H is often
singular, and inputs are often dead), weights on a coarse decimal lattice (exact zeros, ties at half steps,
outliers that clip at both grid edges), every bit width 1..8, both granularities and both int1 schemes.
Every property is checked against the raw data (inputs, targets, weights), never against the code's own
matrices alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qannealq.baselines import BASELINES
from qannealq.errors import InvalidArgumentError
from qannealq.formulation import LayerProblem, LayerStats, build_problem
from qannealq.grid import make_grid
from qannealq.solve import quantize_layer

FAST = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Case:
    """A random layer with its raw data and the problem formulated from it."""

    x: np.ndarray  # (N, f) calibration inputs
    y: np.ndarray  # (N, n) targets
    weight: np.ndarray
    bias: np.ndarray | None
    problem: LayerProblem

    def direct_errors(self, values: np.ndarray) -> np.ndarray:
        """mean_s (y_is - q_i . x̃_s)² per neuron, straight from the raw data."""
        x = self.x if self.bias is None else np.concatenate([self.x, np.ones((len(self.x), 1))], axis=1)
        return np.mean((self.y - x @ values.T) ** 2, axis=0)

    def scale(self, values: np.ndarray) -> np.ndarray:
        """A magnitude per neuron for relative tolerances: the two terms whose difference is the error."""
        x = self.x if self.bias is None else np.concatenate([self.x, np.ones((len(self.x), 1))], axis=1)
        return 1.0 + np.mean(self.y ** 2, axis=0) + np.mean((x @ values.T) ** 2, axis=0)


def _lattice(shape, low: int = -40, high: int = 40):
    """Arrays of multiples of 0.1 in [low/10, high/10]: exact zeros and ties included."""
    return arrays(np.float64, shape, elements=st.integers(low, high).map(lambda k: k / 10.0))


@st.composite
def cases(draw) -> Case:
    n, f = draw(st.integers(1, 4)), draw(st.integers(1, 6))
    samples = draw(st.integers(1, 12))
    has_bias = draw(st.booleans())
    x = draw(_lattice((samples, f), -30, 30))
    dead = draw(arrays(bool, f))
    x[:, dead] = 0.0  # inputs that never fire: not variables, rounded to nearest
    weight = draw(_lattice((n, f), -60, 60))
    bias = draw(_lattice((n,), -20, 20)) if has_bias else None
    y = draw(_lattice((samples, n), -50, 50))
    bits = draw(st.integers(1, 8))
    granularity = draw(st.sampled_from(("tensor", "channel")))
    int1 = draw(st.sampled_from(("sign", "paper")))
    stats = LayerStats.from_arrays(x, y, bias=has_bias)
    problem = build_problem(stats, weight, bias, make_grid(weight, bias, bits, granularity, int1))
    return Case(x, y, weight, bias, problem)


def _random_assignment(case: Case, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).integers(0, 2, size=case.problem.free.shape)
    return np.where(case.problem.free, v, 0)


@FAST
@given(cases(), st.integers(0, 2 ** 32 - 1))
def test_bqm_energy_is_the_reconstruction_error_of_the_raw_data(case, seed):
    p = case.problem
    v = _random_assignment(case, seed)
    _, values = p.decode_layer(v)
    direct = case.direct_errors(values)
    tol = 1e-9 * case.scale(values)
    for i in range(p.num_neurons):
        bqm = p.neuron_bqm(i)
        assert set(bqm.variables) == set(p.variables(i).tolist())
        energy = bqm.energy({j: int(v[i, j]) for j in bqm.variables})
        assert abs(energy - direct[i]) <= tol[i]
    assert np.all(np.abs(p.qubo_energies(v) - direct) <= tol)


@FAST
@given(cases(), st.integers(0, 2 ** 32 - 1))
def test_decoded_integers_stay_in_range_and_encode_back(case, seed):
    p, grid = case.problem, case.problem.grid
    v = _random_assignment(case, seed)
    ints, values = p.decode_layer(v)
    assert ints.min() >= grid.lo and ints.max() <= grid.hi
    assert np.array_equal(p.encode(ints), v)
    # every free coordinate is a real choice between two levels on either side of the weight
    floor_vals, ceil_vals = p.decode_layer(np.zeros_like(v))[1], p.decode_layer(p.free.astype(int))[1]
    assert np.all(floor_vals[p.free] <= p.weights[p.free] + 1e-12)
    assert np.all(ceil_vals[p.free] >= p.weights[p.free] - 1e-12)
    assert np.all(np.isfinite(values))


@FAST
@given(cases())
def test_every_baseline_stays_in_range_and_is_encodable_where_it_should_be(case):
    p, grid = case.problem, case.problem.grid
    for name, baseline in BASELINES.items():
        ints = baseline(p)
        assert ints.shape == p.free.shape and ints.min() >= grid.lo and ints.max() <= grid.hi, name
    # RTN is always the floor or the ceil (clipped), and the restricted GPTQ only ever chooses between them
    for name in ("rtn", "gptq-restricted"):
        ints = BASELINES[name](p)
        assert np.array_equal(p.decode_layer(p.encode(ints))[0], ints), name
    # unrestricted GPTQ may leave floor/ceil; encode accepts it exactly when it did not
    ints = BASELINES["gptq"](p)
    reachable = np.all((ints == p.base) | (p.free & (ints == p.base + 1)))
    if reachable:
        p.encode(ints)
    else:
        with pytest.raises(InvalidArgumentError):
            p.encode(ints)
    p.encode(p.restrict(ints))  # restricting always makes it encodable


@pytest.fixture(scope="module")
def layer_sa():
    from qannealq.backends import get_sampler

    return get_sampler("layer-sa", num_reads=2, num_sweeps=8, num_threads=1, device="cpu")


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(cases(), st.sampled_from(("gptq-restricted", "rtn", "gptq")), st.integers(0, 2 ** 31 - 1))
def test_layer_sa_is_never_worse_than_its_warm_start(layer_sa, case, warm, seed):
    result = quantize_layer(case.problem, "qubo", layer_sa, "layer-sa", warm_start=warm, seed=seed)
    direct = case.direct_errors(result.values)
    tol = 1e-9 * case.scale(result.values)
    assert np.all(np.abs(result.errors - direct) <= tol)  # the reported errors are the real ones
    assert np.all(result.errors <= result.warm_start_errors + tol)
