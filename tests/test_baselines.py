from __future__ import annotations

import numpy as np
import pytest

from helpers import random_layer
from qannealq import InvalidArgumentError, gptq, gptq_restricted, rtn
from qannealq.baselines import BASELINES, ORDERS


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



def _frantar_gptq(w, steps, lo, hi, offset, hessian, order, restricted, block):
    """GPTQ as the reference code of Frantar et al. writes it, in float64, independent of the package: dead inputs
    a unit diagonal and weight 0, act order by the diagonal after that, damping 1 % of the mean diagonal, the upper
    Cholesky factor of H⁻¹, lazy batch updates of ``block`` columns. Restricted: each weight's clipped floor or
    the level above it (ARCHITECTURE.md's fixed coordinates)."""
    h, w = hessian.copy(), w.copy()
    m = h.shape[0]
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    raw = np.floor(w / steps - offset)
    low = np.clip(raw, lo, hi)
    high = np.where((raw == low) & (low < hi), low + 1, low)
    w[:, dead] = 0.0
    perm = np.argsort(-np.diag(h), kind="stable") if order == "act" else np.arange(m)
    w, h, steps, low, high = w[:, perm], h[np.ix_(perm, perm)], steps[:, perm], low[:, perm], high[:, perm]
    h[np.diag_indices(m)] += 0.01 * np.mean(np.diag(h))
    u = np.linalg.cholesky(np.linalg.inv(h)).T
    q = np.zeros(w.shape)
    for a in range(0, m, block):
        b = min(a + block, m)
        errs = np.zeros((w.shape[0], b - a))
        for j in range(a, b):
            z = np.floor(w[:, j] / steps[:, j] - offset + 0.5)
            q[:, j] = np.clip(z, low[:, j], high[:, j]) if restricted else np.clip(z, lo, hi)
            errs[:, j - a] = (w[:, j] - steps[:, j] * (q[:, j] + offset)) / u[j, j]
            w[:, j:b] -= np.outer(errs[:, j - a], u[j, j:b])
        w[:, b:] -= errs @ u[a:b, b:]
    return q[:, np.argsort(perm)], dead


@pytest.mark.parametrize("bits, granularity, int1", [(4, "tensor", "sign"), (2, "channel", "sign"),
                                                     (1, "tensor", "paper"), (1, "channel", "sign")])
@pytest.mark.parametrize("bias", [True, False])
def test_gptq_equals_an_independent_reference(bits, granularity, int1, bias):
    """Index and act order, plain and restricted, across blocks, per-tensor and per-channel grids, the bias as an
    input of constant 1: the integers of every live input are the reference's (a dead one is rounded to nearest of
    its weight instead of the reference's 0, which no calibration sample sees); the errors are those of the data."""
    layer = random_layer(np.random.default_rng(bits + 10 * bias), 30, 6, samples=200, bias=bias)
    problem = layer.problem(bits, granularity, int1)
    x = layer.x_aug
    grid = problem.grid
    for order in ("index", "act"):
        for restricted in (False, True):
            ints = (gptq_restricted if restricted else gptq)(problem, order=order, block_size=7)
            want, dead = _frantar_gptq(problem.weights, problem.steps, grid.lo, grid.hi, grid.offset,
                                       x.T @ x / len(x), order, restricted, 7)
            np.testing.assert_array_equal(ints[:, ~dead], want[:, ~dead])
            np.testing.assert_array_equal(ints[:, dead], rtn(problem)[:, dead])
            values = grid.dequantize(ints, problem.steps)
            np.testing.assert_allclose(problem.errors(values), layer.direct_errors(values), rtol=1e-9)

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


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("percdamp", [-1, np.nan, np.inf, "0.01", None])
def test_percdamp_validated(order, percdamp):
    """percdamp=inf raised a ZeroDivisionError in index and act order (and ran in pivot order); a string or None
    a TypeError from the comparison."""
    rng = np.random.default_rng(1)
    problem = random_layer(rng, 5, 2).problem(3)
    with pytest.raises(InvalidArgumentError, match=r"percdamp=.* must be a finite number >= 0"):
        gptq(problem, percdamp=percdamp, order=order)


@pytest.mark.parametrize("order", ORDERS)
def test_a_percdamp_whose_damping_overflows_is_refused(order):
    """percdamp=1e308 is finite, but its damping (times H's mean diagonal) overflowed to infinity: index and
    act order raised a ZeroDivisionError (the factor's diagonal 0), pivot order returned RTN's integers."""
    from qannealq import LayerStats, build_problem, make_grid

    layer = random_layer(np.random.default_rng(1), 5, 2)
    x = 10.0 * layer.x  # H's mean diagonal about 80: 1e308 times it overflows
    stats = LayerStats.from_arrays(x, x @ layer.weight.T + layer.bias)
    problem = build_problem(stats, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, 3))
    for method in (gptq, gptq_restricted):
        with pytest.raises(InvalidArgumentError, match=r"percdamp=1e\+308 times H's mean diagonal .* overflows"):
            method(problem, percdamp=1e308, order=order)
    assert gptq(problem, percdamp=1e300, order=order).shape == problem.base.shape  # large, not overflowing: runs


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
    for block in (1, 3, 4, 5, 30, 31, 64):  # one block, one pivot per block, and the four-column steps' remainders
        other, other_factor = _pivot_factor(problem.hessian, problem.dead, 0.01, block=block)
        np.testing.assert_array_equal(other, order)
        np.testing.assert_allclose(other_factor, factor, rtol=1e-10, atol=1e-12)
    with pytest.raises(InvalidArgumentError, match="block=0 must be an integer >= 1"):
        _pivot_factor(problem.hessian, problem.dead, 0.01, block=0)


@pytest.mark.parametrize("scale", [0.05, 1.5, 30.0])
def test_pivot_factor_of_the_live_inputs_places_the_dead_ones_as_the_full_factorization_does(scale):
    """``_pivot_factor`` factors the live inputs alone; the dead ones (a unit diagonal, decoupled) take the places
    the pivoted factorization of the whole damped ``H`` gives them: the same order and factor. The scales put
    the live Schur diagonals below, around and above the dead inputs' ``1 + λ`` (the dead ones last, inside,
    first in the order)."""
    from qannealq._lapack import invert_lower
    from qannealq.baselines import _damped, _pivot_cholesky, _pivot_factor

    problem = random_layer(np.random.default_rng(10), 40, 3, samples=400, dead=5).problem(3)
    hessian = problem.hessian * scale
    for percdamp in (0.01, 0.001):
        pivots, full = _pivot_cholesky(_damped(hessian, problem.dead, percdamp), percdamp, 7)
        assert invert_lower(full) == 0
        order, factor = _pivot_factor(hessian, problem.dead, percdamp, block=7)
        np.testing.assert_array_equal(order, pivots[::-1])
        np.testing.assert_allclose(factor, full.T[::-1, ::-1], rtol=1e-9, atol=1e-12)
    places = np.flatnonzero(problem.dead[order])
    assert np.ptp(places) == places.size - 1  # together
    assert {0.05: places[0] == 0, 1.5: 0 < places[0] < order.size - places.size,
            30.0: places[-1] == order.size - 1}[scale]


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
    for order in ("index", "act"):  # GPTQ's own factor names the argument too
        with pytest.raises(InvalidArgumentError, match="percdamp=0.0 leaves the layer's H singular.*percdamp > 0"):
            gptq_restricted(singular, percdamp=0.0, order=order)
    assert gptq_restricted(singular, order="pivot").shape == (2, 6)  # the default damping is enough


@pytest.mark.parametrize("seed", range(12))
def test_undamped_singular_h_is_refused_whatever_the_rounding(seed):
    """An exactly singular H at percdamp=0 (two equal inputs, an input the combination of two others, fewer
    samples than inputs) was factored or refused depending on the sign rounding left on its zero pivot: on 4 of
    these 12 layers some order ran. It is now refused in every order; a full-rank H still runs undamped."""
    from qannealq import LayerStats, build_problem, make_grid

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 60)) * np.logspace(0, 3, 60)
    if seed % 3 == 0:
        x = x[:40]
    elif seed % 3 == 1:
        x[:, 7] = x[:, 30]
    else:
        x[:, 5] = 2 * x[:, 9] - x[:, 11]
    w = rng.normal(size=(3, 60))
    singular = build_problem(LayerStats.from_arrays(x, x @ w.T, bias=False), w, None, make_grid(w, None, 4))
    for order in ORDERS:
        with pytest.raises(InvalidArgumentError, match="percdamp=0.0 leaves the layer's H singular.*percdamp > 0"):
            gptq(singular, percdamp=0.0, order=order)
        assert gptq(singular, order=order).shape == (3, 60)  # the default damping is enough
    x = rng.normal(size=(200, 60))
    full = build_problem(LayerStats.from_arrays(x, x @ w.T, bias=False), w, None, make_grid(w, None, 4))
    for order in ORDERS:
        assert gptq(full, percdamp=0.0, order=order).shape == (3, 60)


def test_warm_start_on_a_rank_deficient_h_keeps_each_neurons_better_damping():
    """Fewer calibration samples than live inputs (dead inputs do not count): the warm start is, per neuron, the
    lower-energy one of GPTQ damped 0.01 and 0.001; with enough samples it is GPTQ damped 0.01 alone."""
    from qannealq.baselines import GPTQ_PERCDAMP, RANK_DEFICIENT_PERCDAMP, rank_deficient, warm_start_integers

    rng = np.random.default_rng(3)
    few = random_layer(rng, 30, 12, samples=20, dead=2).problem(3)  # 20 samples, 29 live inputs with the bias
    enough = random_layer(rng, 30, 4, samples=29, dead=2).problem(3)  # 29 samples, 29 live inputs
    assert rank_deficient(few) and not rank_deficient(enough)
    pivot = BASELINES["gptq-restricted-pivot"]
    paper, low = pivot(few), pivot(few, percdamp=RANK_DEFICIENT_PERCDAMP)
    e_paper, e_low = (few.qubo_energies(few.encode(ints)) for ints in (paper, low))
    lower = e_low < e_paper
    assert 0 < lower.sum() < few.num_neurons  # each damping wins on some neurons of this layer
    warm = warm_start_integers(few)
    np.testing.assert_array_equal(warm, np.where(lower[:, None], low, paper))
    np.testing.assert_array_equal(few.qubo_energies(few.encode(warm)), np.minimum(e_paper, e_low))
    np.testing.assert_array_equal(warm_start_integers(enough), pivot(enough))
    for name in ("gptq", "gptq-act"):  # unrestricted GPTQs: restricted to floor/ceil before they are compared
        ints = warm_start_integers(few, name)
        few.encode(ints)  # floor/ceil only: raises otherwise
        restricted = [few.restrict(BASELINES[name](few, percdamp=d)) for d in (GPTQ_PERCDAMP, RANK_DEFICIENT_PERCDAMP)]
        np.testing.assert_allclose(few.qubo_energies(few.encode(ints)),
                                   np.min([few.qubo_energies(few.encode(r)) for r in restricted], axis=0))
    np.testing.assert_array_equal(warm_start_integers(few, "rtn"), few.restrict(rtn(few)))


def test_a_pilot_takes_one_damping_for_the_layer_and_layer_sa_asks_for_it():
    """``pilot=True`` on a rank-deficient layer without a beam: GPTQ at the damping whose summed energy over the
    pilot's neurons is lower (GPTQ's only by more than the margin), on every neuron; the pilot's neurons spread
    over a wide layer give the same choice as their energies say. ``layer-sa`` asks for it through the solve
    loop (and its composites pass the question on); other samplers keep both dampings per neuron."""
    import qannealq.baselines
    from qannealq import quantize_layer
    from qannealq.backends import get_sampler
    from qannealq.backends.retry import RetryComposite
    from qannealq.baselines import (PILOT_MARGIN, RANK_DEFICIENT_PERCDAMP, _pilot_neurons, rank_deficient,
                                    warm_start_integers)
    from qannealq.contract import warm_start_pilot

    rng = np.random.default_rng(8)
    pivot = BASELINES["gptq-restricted-pivot"]
    for neurons in (12, 70):  # the pilot: every neuron; 32 of 70
        few = random_layer(rng, 30, neurons, samples=20, dead=2).problem(3)
        assert rank_deficient(few)
        paper, low = pivot(few), pivot(few, percdamp=RANK_DEFICIENT_PERCDAMP)
        pilot = _pilot_neurons(neurons)
        assert pilot.size == (neurons if neurons <= 64 else 32)
        e_paper, e_low = (few.qubo_energies(few.encode(ints))[pilot].sum() for ints in (paper, low))
        want = paper if e_paper < (1 - PILOT_MARGIN) * e_low else low
        np.testing.assert_array_equal(warm_start_integers(few, pilot=True), want)
        for margin in (-1.0, 0.999):  # GPTQ's damping wins unless twice as high / only if a thousandth as high
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(qannealq.baselines, "PILOT_MARGIN", margin)
                np.testing.assert_array_equal(warm_start_integers(few, pilot=True), paper if margin < 0 else low)
        for name in ("gptq", "gptq-act"):  # unrestricted: restricted to floor/ceil
            few.encode(warm_start_integers(few, name, pilot=True))
    enough = random_layer(rng, 30, 4, samples=29, dead=2).problem(3)
    np.testing.assert_array_equal(warm_start_integers(enough, pilot=True), pivot(enough))

    layer_sa = get_sampler("layer-sa")
    assert warm_start_pilot(layer_sa, {}, 30) and not warm_start_pilot(layer_sa, {"warm_start_pilot": False}, 30)
    assert warm_start_pilot(RetryComposite(layer_sa, retries=0), {}, 30)
    assert not warm_start_pilot(get_sampler("sa"), {}, 30)
    with pytest.raises(InvalidArgumentError, match="warm_start_pilot"):
        layer_sa.warm_start_pilot(warm_start_pilot="yes")
    result = quantize_layer(few, "qubo", layer_sa, "layer-sa", seed=0, effort="fast")
    np.testing.assert_array_equal(result.warm_start_errors, few.errors(few.grid.dequantize(
        warm_start_integers(few, pilot=True), few.steps)))


def test_the_compiled_lapack_calls_factor_and_invert_in_place_and_report_failure():
    """``qannealq._lapack``: LAPACK's Cholesky and triangular inverse called from compiled code, on a C-order
    matrix read column-major (``a.T``): ``L`` and ``L⁻¹`` in its lower triangle, the other left as it was, and
    LAPACK's ``info`` where the matrix is not positive definite; the trailing update of ``dsyrk``."""
    from qannealq._lapack import cholesky_lower, invert_lower, syrk_update

    rng = np.random.default_rng(3)
    x = rng.normal(size=(9, 20))
    h = x @ x.T
    a = h.copy()
    assert cholesky_lower(a) == 0
    lower = np.tril(a.T)
    np.testing.assert_allclose(lower, np.linalg.cholesky(h), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.tril(a, -1), np.tril(h, -1))  # the other triangle untouched
    assert invert_lower(a) == 0
    np.testing.assert_allclose(np.tril(a.T) @ lower, np.eye(9), atol=1e-10)
    indefinite = h.copy()
    indefinite[4, 4] = -1.0
    assert cholesky_lower(indefinite) == 5  # LAPACK's info: the order of the leading minor that is not positive
    singular = np.ascontiguousarray(np.tril(rng.normal(size=(4, 4))).T)
    singular[2, 2] = 0.0
    assert invert_lower(singular) == 3
    b = h.copy()  # A(3:, 3:) −= P Pᵀ with P = A(3:, 1:3), on the lower triangle of A = b.T (b's upper)
    syrk_update(b, 1, 3)
    want = h[3:, 3:] - h[3:, 1:3] @ h[3:, 1:3].T
    np.testing.assert_allclose(np.triu(b[3:, 3:]), np.triu(want), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.tril(b, -1), np.tril(h, -1))
    np.testing.assert_array_equal(b[:3], h[:3])


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("block_size", [0, -1, 2.5, True])
def test_block_size_is_validated(order, block_size):
    """A block size below 1 ran no block: -1 returned the uninitialised integers of an empty array (values like
    94482330763040 on a 3-bit grid), 0 raised range()'s ValueError, 2.5 a TypeError."""
    problem = random_layer(np.random.default_rng(1), 10, 3).problem(3)
    with pytest.raises(InvalidArgumentError, match=f"block_size={block_size!r} must be an integer >= 1"):
        gptq(problem, block_size=block_size, order=order)
    with pytest.raises(InvalidArgumentError, match="block_size"):
        gptq_restricted(problem, block_size=block_size, order=order)


@pytest.mark.parametrize("order", ORDERS)
def test_any_block_size_gives_the_same_integers(order):
    layer = random_layer(np.random.default_rng(4), 30, 4)
    problem = layer.problem(3, "channel")
    expected = gptq(problem, order=order)
    for block_size in (1, 7, 1000, np.int64(5)):
        np.testing.assert_array_equal(gptq(problem, block_size=block_size, order=order), expected)


def _textbook_gptq(problem, percdamp: float, order: str, restricted: bool) -> np.ndarray:
    """GPTQ as the paper's algorithm states it, written apart from the package's paths: dead inputs get a unit
    diagonal and zero weight, ``percdamp`` times the mean diagonal is added, the upper Cholesky factor ``U`` of the
    explicit inverse of ``H`` in the input order, then one input at a time: round to the nearest level clipped to
    the grid (or to the floor/ceil), and subtract ``err / U_jj · U_j,j:`` from the inputs not yet rounded. Pivot
    order: greedily from the last input, the one of least variance left given those chosen."""
    h = problem.hessian.copy()
    m = h.shape[0]
    dead = np.diag(h) <= 0
    h[dead, dead] = 1.0
    h[np.diag_indices(m)] += percdamp * np.mean(np.diag(h))
    if order == "index":
        perm = np.arange(m)
    elif order == "act":
        perm = np.argsort(-np.diag(problem.hessian), kind="stable")
    else:
        schur, left, chosen = h.copy(), list(range(m)), []
        while left:
            j = left[int(np.argmin([schur[k, k] for k in left]))]
            schur -= np.outer(schur[:, j], schur[j]) / schur[j, j]
            chosen.append(j)
            left.remove(j)
        perm = np.array(chosen[::-1])
    u = np.linalg.cholesky(np.linalg.inv(h[np.ix_(perm, perm)])).T
    w = np.where(dead, 0.0, problem.weights)[:, perm]
    steps, grid = problem.steps[:, perm], problem.grid
    lo = problem.base[:, perm] if restricted else np.full(w.shape, grid.lo)
    hi = lo + problem.free[:, perm] if restricted else np.full(w.shape, grid.hi)
    out = np.empty(w.shape, np.int64)
    for j in range(m):
        z = np.clip(np.floor(w[:, j] / steps[:, j] - grid.offset + 0.5), lo[:, j], hi[:, j])
        out[:, perm[j]] = z
        w[:, j:] -= np.outer((w[:, j] - steps[:, j] * (z + grid.offset)) / u[j, j], u[j, j:])
    return np.where(dead, problem.base, out)


@pytest.mark.parametrize("samples", [300, 25])  # 25 < 40 inputs: a rank-deficient H
@pytest.mark.parametrize("bits, granularity, int1", [(1, "tensor", "sign"), (1, "channel", "paper"),
                                                     (2, "channel", "sign"), (3, "tensor", "sign")])
def test_gptq_equals_the_textbook_algorithm(samples, bits, granularity, int1):
    """Every GPTQ form gives the integers of the paper's algorithm written out plainly, block boundaries (a block of
    16 of 43 coordinates), dead inputs, clipping at both edges, int1 and a singular H included."""
    layer = random_layer(np.random.default_rng(bits + samples), 40, 5, samples=samples, dead=3)
    problem = layer.problem(bits, granularity, int1)
    for order in ORDERS:
        for percdamp in (0.01, 0.001):
            for restricted, method in ((False, gptq), (True, gptq_restricted)):
                np.testing.assert_array_equal(method(problem, percdamp=percdamp, block_size=16, order=order),
                                              _textbook_gptq(problem, percdamp, order, restricted))
