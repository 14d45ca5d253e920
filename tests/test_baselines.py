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


def test_act_order_quantizes_in_order_of_decreasing_hessian_diagonal():
    """``act_order``: GPTQ over the inputs sorted by decreasing ``H_jj``, the result in the original order: it
    equals plain GPTQ on the problem with its inputs so sorted, is unchanged by a prior shuffle of the inputs,
    and its restricted form is a valid QUBO assignment."""
    from dataclasses import replace

    from qannealq.formulation import LayerStats

    def permuted(problem, order):
        st = problem.stats
        return replace(problem, stats=LayerStats(st.hessian[np.ix_(order, order)], st.cross[:, order],
                                                 st.target_sq, st.num_samples),
                       weights=problem.weights[:, order], steps=problem.steps[:, order],
                       base=problem.base[:, order], free=problem.free[:, order])

    rng = np.random.default_rng(5)
    layer = random_layer(rng, 40, 6, samples=400)
    problem = layer.problem(3)
    order = np.argsort(-np.diag(problem.hessian), kind="stable")
    assert not np.array_equal(order, np.arange(order.size))  # the test means something
    back = np.argsort(order)
    for restricted, fn in ((False, gptq), (True, gptq_restricted)):
        act = fn(problem, act_order=True)
        np.testing.assert_array_equal(act, fn(permuted(problem, order))[:, back])
        shuffle = rng.permutation(order.size)
        np.testing.assert_array_equal(fn(permuted(problem, shuffle), act_order=True), act[:, shuffle])
        assert not np.array_equal(act, fn(problem))  # another order, another rounding
    problem.encode(BASELINES["gptq-restricted-act"](problem))  # floor/ceil only: raises otherwise
