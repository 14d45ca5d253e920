from __future__ import annotations

import numpy as np
import pytest

from helpers import random_layer
from qannealq import InvalidArgumentError, gptq, gptq_restricted, rtn
from qannealq.baselines import BASELINES


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("granularity", ["tensor", "channel"])
def test_gptq_beats_rtn_on_the_same_hessian(bits, granularity):
    rng = np.random.default_rng(bits)
    layer = random_layer(rng, 40, 8, samples=400)
    problem = layer.problem(bits, granularity)
    scores = {}
    for name, method in BASELINES.items():
        ints = method(problem)
        assert ints.min() >= problem.grid.lo and ints.max() <= problem.grid.hi
        values = problem.grid.dequantize(ints, problem.steps)
        # every method is scored with the same H, g, c and agrees with the data directly
        np.testing.assert_allclose(problem.errors(values), layer.direct_errors(values), rtol=1e-9)
        scores[name] = problem.errors(values).sum()
    assert scores["gptq"] <= scores["rtn"]
    assert scores["gptq-restricted"] <= scores["rtn"] * 1.0001


def test_rtn_is_nearest_level():
    rng = np.random.default_rng(0)
    problem = random_layer(rng, 10, 3).problem(4)
    scaled = problem.grid.scaled(problem.weights, problem.steps)
    np.testing.assert_array_equal(rtn(problem), np.clip(np.floor(scaled + 0.5), problem.grid.lo, problem.grid.hi))


def test_gptq_restricted_is_a_valid_qubo_assignment():
    rng = np.random.default_rng(1)
    problem = random_layer(rng, 30, 5).problem(3)
    ints = gptq_restricted(problem)
    v = problem.encode(ints)  # raises if any integer is not floor/ceil of its weight
    np.testing.assert_allclose(problem.qubo_energies(v), problem.errors(problem.grid.dequantize(ints, problem.steps)),
                               rtol=1e-9)


def test_gptq_with_identity_hessian_is_rtn():
    """With uncorrelated unit-variance inputs GPTQ has no error to feed forward: it equals RTN."""
    from qannealq import LayerStats, build_problem, make_grid

    rng = np.random.default_rng(2)
    w = rng.normal(size=(4, 6))
    stats = LayerStats(np.eye(6), w.copy(), np.sum(w * w, axis=1), 1)
    problem = build_problem(stats, w, None, make_grid(w, None, 3))
    np.testing.assert_array_equal(gptq(problem, percdamp=0.0), rtn(problem))


def test_percdamp_validated():
    rng = np.random.default_rng(1)
    problem = random_layer(rng, 5, 2).problem(3)
    with pytest.raises(InvalidArgumentError, match="percdamp"):
        gptq(problem, percdamp=-1)


def _permuted(problem, order):
    """``problem`` with its inputs taken in ``order``."""
    from dataclasses import replace

    from qannealq.formulation import LayerStats

    st = problem.stats
    return replace(problem, stats=LayerStats(st.hessian[np.ix_(order, order)], st.cross[:, order], st.target_sq,
                                             st.num_samples),
                   weights=problem.weights[:, order], steps=problem.steps[:, order],
                   base=problem.base[:, order], free=problem.free[:, order])


def test_act_order_quantizes_in_order_of_decreasing_hessian_diagonal():
    """``order="act"``: GPTQ over the inputs sorted by decreasing ``H_jj``, the result in the original order: it
    equals plain GPTQ on the problem with its inputs so sorted, is unchanged by a prior shuffle of the inputs,
    and its restricted form is a valid QUBO assignment."""
    rng = np.random.default_rng(5)
    layer = random_layer(rng, 40, 6, samples=400)
    problem = layer.problem(3)
    order = np.argsort(-np.diag(problem.hessian), kind="stable")
    assert not np.array_equal(order, np.arange(order.size))  # the test means something
    back = np.argsort(order)
    for restricted, fn in ((False, gptq), (True, gptq_restricted)):
        act = fn(problem, order="act")
        np.testing.assert_array_equal(act, fn(_permuted(problem, order))[:, back])
        shuffle = rng.permutation(order.size)
        np.testing.assert_array_equal(fn(_permuted(problem, shuffle), order="act"), act[:, shuffle])
        assert not np.array_equal(act, fn(problem))  # another order, another rounding
    problem.encode(BASELINES["gptq-restricted-act"](problem))  # floor/ceil only: raises otherwise


def _conditional_variance(h, j, later):
    """Variance of input ``j`` left unexplained by the inputs ``later``: ``H_jj - H_jS H_SS⁻¹ H_Sj``."""
    if not later:
        return h[j, j]
    s = np.array(later)
    return h[j, j] - h[j, s] @ np.linalg.solve(h[np.ix_(s, s)], h[s, j])


def test_pivot_order_rounds_each_input_while_the_later_ones_explain_the_most_of_it():
    """``order="pivot"``, from the end: every input has the least variance left unexplained by the inputs after
    it, among those not yet placed (greedily). Its factor is GPTQ's factor of ``H`` in that order, for any block
    size of the pivoted factorization."""
    from qannealq.baselines import _inverse_cholesky, _pivot_factor
    from qannealq.formulation import submatrix

    rng = np.random.default_rng(8)
    problem = random_layer(rng, 30, 3, samples=400, dead=2).problem(3)
    h = problem.hessian.copy()
    h[problem.dead, problem.dead] = 1.0
    h[np.diag_indices_from(h)] += 0.01 * np.mean(np.diag(h))
    order, factor = _pivot_factor(problem.hessian, problem.dead, 0.01, block=7)  # blocks of 7: 5 blocks
    assert sorted(order.tolist()) == list(range(31))
    for t in range(30, -1, -1):
        later = order[t + 1:].tolist()
        costs = {j: _conditional_variance(h, j, later) for j in order[:t + 1].tolist()}
        assert costs[order[t]] <= min(costs.values()) * (1 + 1e-9)
    assert not np.array_equal(order, np.argsort(-np.diag(problem.hessian), kind="stable")[::-1])  # not act order
    np.testing.assert_allclose(factor, _inverse_cholesky(submatrix(problem.hessian, order), problem.dead[order],
                                                         0.01), rtol=1e-8, atol=1e-10)
    for block in (1, 64):
        other, other_factor = _pivot_factor(problem.hessian, problem.dead, 0.01, block=block)
        np.testing.assert_array_equal(other, order)
        np.testing.assert_allclose(other_factor, factor, rtol=1e-10, atol=1e-12)


def test_pivot_order_gptq_is_gptq_of_the_problem_so_ordered():
    """GPTQ in pivot order equals plain GPTQ on the inputs taken in that order, is unchanged by a prior shuffle
    of the inputs, and its restricted form is a valid QUBO assignment."""
    from qannealq.baselines import _pivot_factor

    rng = np.random.default_rng(9)
    problem = random_layer(rng, 40, 6, samples=400).problem(3)
    order = _pivot_factor(problem.hessian, problem.dead, 0.01)[0]
    back = np.argsort(order)
    for fn in (gptq, gptq_restricted):
        pivot = fn(problem, order="pivot")
        np.testing.assert_array_equal(pivot, fn(_permuted(problem, order))[:, back])
        shuffle = rng.permutation(order.size)
        np.testing.assert_array_equal(fn(_permuted(problem, shuffle), order="pivot"), pivot[:, shuffle])
        assert not np.array_equal(pivot, fn(problem, order="act"))  # another order, another rounding
    problem.encode(BASELINES["gptq-restricted-pivot"](problem))  # floor/ceil only: raises otherwise


def test_order_and_percdamp_errors_name_the_argument():
    from qannealq import LayerStats, build_problem, make_grid

    rng = np.random.default_rng(1)
    problem = random_layer(rng, 5, 2).problem(3)
    with pytest.raises(InvalidArgumentError, match="order='desc'.*index, act, pivot"):
        gptq(problem, order="desc")
    x = rng.normal(size=(3, 6))  # 3 samples of 6 inputs: H is singular
    w = rng.normal(size=(2, 6))
    stats = LayerStats.from_arrays(x, x @ w.T, bias=False)
    singular = build_problem(stats, w, None, make_grid(w, None, 3))
    with pytest.raises(InvalidArgumentError, match="percdamp=0.0 leaves the layer's H singular.*percdamp > 0"):
        gptq_restricted(singular, percdamp=0.0, order="pivot")
    assert gptq_restricted(singular, order="pivot").shape == (2, 6)  # the default damping is enough


def test_warm_start_damps_less_where_h_is_rank_deficient():
    """Fewer calibration samples than live inputs: the warm start is GPTQ-restricted at the lower damping;
    enough samples: at the GPTQ baselines' 0.01. Dead inputs do not count as inputs."""
    from qannealq.baselines import RANK_DEFICIENT_PERCDAMP, warm_start_damping, warm_start_integers

    rng = np.random.default_rng(3)
    few = random_layer(rng, 30, 4, samples=20, dead=2).problem(3)  # 20 samples, 29 live inputs with the bias
    enough = random_layer(rng, 30, 4, samples=29, dead=2).problem(3)  # 29 samples, 29 live inputs
    assert few.rank_deficient.tolist() == [True] * 4 and not enough.rank_deficient.any()
    assert warm_start_damping(few) == RANK_DEFICIENT_PERCDAMP < 0.01 == warm_start_damping(enough)
    pivot = BASELINES["gptq-restricted-pivot"]
    low, paper = pivot(few, percdamp=RANK_DEFICIENT_PERCDAMP), pivot(few)
    assert not np.array_equal(low, paper)  # the damping matters on this H
    np.testing.assert_array_equal(warm_start_integers(few), low)
    np.testing.assert_array_equal(warm_start_integers(enough), pivot(enough))
    np.testing.assert_array_equal(warm_start_integers(few, percdamp=0.01), paper)  # an explicit damping wins
    np.testing.assert_array_equal(warm_start_integers(few, "rtn"), few.restrict(rtn(few)))


def test_per_neuron_damping_on_relu_aware_problems():
    """On per-neuron H_i each neuron is damped by its own percdamp, and its warm start by whether its H_i has
    fewer active samples than live inputs; a per-neuron damping on a shared H is refused."""
    from qannealq import make_grid
    from qannealq.baselines import RANK_DEFICIENT_PERCDAMP, warm_start_damping
    from qannealq.weighted import WeightedLayerStats, build_weighted_problem

    rng = np.random.default_rng(4)
    layer = random_layer(rng, 12, 3, samples=40, dead=0)
    weights = np.ones_like(layer.y)
    weights[5:, 0] = 0.0  # neuron 0: 5 active samples for 13 live inputs; the others: all 40
    weights[20:, 1] = 0.5
    stats = WeightedLayerStats.from_arrays(layer.x, layer.y, weights)
    problem = build_weighted_problem(stats, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, 3))
    assert problem.per_neuron and problem.rank_deficient.tolist() == [True, False, False]
    np.testing.assert_array_equal(warm_start_damping(problem), [RANK_DEFICIENT_PERCDAMP, 0.01, 0.01])
    damps = np.array([0.001, 0.3, 0.05])
    mixed = gptq_restricted(problem, percdamp=damps, order="pivot")
    for i, d in enumerate(damps):
        np.testing.assert_array_equal(mixed[i], gptq_restricted(problem, percdamp=float(d), order="pivot")[i])
    shared = random_layer(rng, 12, 3).problem(3)
    with pytest.raises(InvalidArgumentError, match=r"percdamp: one value per neuron .*relu-aware.*give one float"):
        gptq(shared, percdamp=damps)
    with pytest.raises(InvalidArgumentError, match=r"percdamp: .*got shape \(2,\)"):
        gptq(problem, percdamp=damps[:2])
    with pytest.raises(InvalidArgumentError, match="percdamp=.* must be >= 0"):
        gptq(problem, percdamp=-damps)
