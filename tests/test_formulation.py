"""The energy identity, the per-neuron decomposition, clipping and the encode/decode round trip."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import GRIDS, random_layer
from qannealq import InvalidArgumentError, LayerStats, NonFiniteError, build_problem, make_grid


def _random_assignments(rng, problem, count):
    return [rng.integers(0, 2, size=problem.free.shape) for _ in range(count)]


@pytest.mark.parametrize("bits, granularity, int1", GRIDS)
@pytest.mark.parametrize("f, n, bias", [(50, 8, True), (13, 3, False), (1, 1, True)])
def test_bqm_energy_equals_reconstruction_error(bits, granularity, int1, f, n, bias):
    rng = np.random.default_rng(1000 * bits + f)
    layer = random_layer(rng, f, n, dead=min(2, f - 1), bias=bias)
    problem = layer.problem(bits, granularity, int1)
    for i in range(n):
        bqm = problem.neuron_bqm(i)
        for v in _random_assignments(rng, problem, 4) + [np.zeros_like(problem.free), np.ones_like(problem.free)]:
            sample = {j: int(v[i, j]) for j in bqm.variables}
            direct = layer.direct_error(i, problem.decode(i, sample).values)
            assert bqm.energy(sample) == pytest.approx(direct, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("bits, granularity, int1", GRIDS)
def test_layer_energies_match_bqms_and_data(bits, granularity, int1):
    rng = np.random.default_rng(bits)
    layer = random_layer(rng, 30, 6)
    problem = layer.problem(bits, granularity, int1)
    for v in _random_assignments(rng, problem, 3):
        ints, values = problem.decode_layer(v)
        direct = layer.direct_errors(values)
        np.testing.assert_allclose(problem.qubo_energies(v), direct, rtol=1e-9)
        np.testing.assert_allclose(problem.errors(values), direct, rtol=1e-9)
        bqm_energies = [problem.neuron_bqm(i).energy({j: int(v[i, j]) for j in problem.variables(i)})
                        for i in range(problem.num_neurons)]
        np.testing.assert_allclose(bqm_energies, direct, rtol=1e-9)


def test_layer_objective_is_sum_of_neuron_errors():
    rng = np.random.default_rng(7)
    layer = random_layer(rng, 40, 8)
    problem = layer.problem(3)
    _, values = problem.decode_layer(rng.integers(0, 2, size=problem.free.shape))
    frobenius = np.linalg.norm(layer.y - layer.x_aug @ values.T) ** 2 / len(layer.y)
    assert problem.errors(values).sum() == pytest.approx(frobenius, rel=1e-10)


def test_unquantized_weights_have_zero_error_in_float_calibration():
    rng = np.random.default_rng(3)
    layer = random_layer(rng, 20, 4, noise=0.0)
    problem = layer.problem(4)
    np.testing.assert_allclose(problem.errors(problem.weights), 0.0, atol=1e-10)


@pytest.mark.parametrize("bits, granularity, int1", GRIDS)
def test_clipping_fixed_and_dead_coordinates(bits, granularity, int1):
    rng = np.random.default_rng(11 + bits)
    layer = random_layer(rng, 25, 5, dead=3)
    problem = layer.problem(bits, granularity, int1)
    grid = problem.grid
    assert problem.dead[:3].all() and not problem.dead[3:].any()
    scaled = grid.scaled(problem.weights, problem.steps)
    clipped = (np.floor(scaled) < grid.lo) | (np.floor(scaled) > grid.hi)
    at_top = np.floor(scaled) >= grid.hi
    assert (clipped | at_top).any()  # the random layers reach the grid edges
    for i in range(problem.num_neurons):
        variables = set(problem.neuron_bqm(i).variables)
        expected = {j for j in range(problem.num_coordinates)
                    if not problem.dead[j] and not clipped[i, j] and not at_top[i, j]}
        assert variables == expected
    for v in (np.zeros_like(problem.free), np.ones_like(problem.free)):
        ints, _ = problem.decode_layer(v)
        assert ints.min() >= grid.lo and ints.max() <= grid.hi
    # dead inputs are rounded to nearest
    np.testing.assert_array_equal(problem.base[:, :3], grid.nearest(problem.weights, problem.steps)[:, :3])


def test_encode_decode_round_trip():
    rng = np.random.default_rng(5)
    problem = random_layer(rng, 30, 6).problem(4, "channel")
    v = np.where(problem.free, rng.integers(0, 2, size=problem.free.shape), 0).astype(np.uint8)
    ints, _ = problem.decode_layer(v)
    np.testing.assert_array_equal(problem.encode(ints), v)
    for i in range(problem.num_neurons):
        sample = {j: int(v[i, j]) for j in problem.variables(i)}
        np.testing.assert_array_equal(problem.decode(i, sample).integers, ints[i])
        np.testing.assert_array_equal(problem.assignment(i, sample), v[i])
    other = np.where(problem.free, 1 - v, 0).astype(np.uint8)
    stacked = np.stack([ints, problem.decode_layer(other)[0]], axis=1)  # (n, k, m): several per neuron
    np.testing.assert_array_equal(problem.encode(stacked), np.stack([v, other], axis=1))


def test_encode_rejects_unreachable_integers():
    rng = np.random.default_rng(5)
    problem = random_layer(rng, 10, 2).problem(4)
    bad = problem.base.copy()
    bad[0, 5] += 2
    with pytest.raises(InvalidArgumentError, match=r"integers\[0, 5\]"):
        problem.encode(bad)
    stacked = np.stack([problem.base, bad], axis=1)
    with pytest.raises(InvalidArgumentError, match=r"integers\[0, 1, 5\]"):
        problem.encode(stacked)


def test_decode_rejects_bad_samples():
    rng = np.random.default_rng(5)
    problem = random_layer(rng, 10, 2).problem(4)
    j = int(problem.variables(0)[0])
    with pytest.raises(InvalidArgumentError, match="lacks variable"):
        problem.decode(0, {})
    with pytest.raises(InvalidArgumentError, match="binary"):
        problem.decode(0, {k: 2 if k == j else 0 for k in problem.variables(0).tolist()})
    with pytest.raises(InvalidArgumentError, match="neuron index"):
        problem.neuron_bqm(7)


def test_statistics_shape_mismatch_is_a_clear_error():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, 10, 3)
    stats = LayerStats.from_arrays(layer.x[:, :5], layer.y)
    with pytest.raises(InvalidArgumentError, match="calibration statistics"):
        build_problem(stats, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, 4))
    with pytest.raises(InvalidArgumentError, match="same N"):
        LayerStats.from_arrays(np.zeros((0, 3)), np.zeros((0, 2)))


@pytest.mark.parametrize("value, where", [(np.nan, "inputs"), (np.inf, "inputs"), (1e200, "inputs"),
                                          (np.nan, "targets"), (1e200, "targets")])
def test_non_finite_statistics_are_refused_before_gptq_reads_them(value, where):
    """Statistics of NaN, infinite or overflowing data (1e200 squared) are refused when the problem is built: GPTQ
    had returned integers of -2**63 on NaN statistics, and raised a ZeroDivisionError on infinite ones."""
    layer = random_layer(np.random.default_rng(0), 6, 3)
    x, y = layer.x.copy(), layer.y.copy()
    (x if where == "inputs" else y)[3, 2] = value
    with np.errstate(over="ignore", invalid="ignore"):  # the statistics' own overflow
        stats = LayerStats.from_arrays(x, y)
    with pytest.raises(NonFiniteError, match="calibration statistics of layer contain NaN or infinity") as caught:
        build_problem(stats, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, 4))
    assert "the calibration data, or the weights" in str(caught.value)  # the targets are the weights' outputs


def test_hessian_is_shared_not_copied_per_neuron():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, 20, 6)
    stats = LayerStats.from_arrays(layer.x, layer.y)
    problem = build_problem(stats, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, 4))
    assert problem.hessian is stats.hessian  # the calibration's one H, not a copy
    # the problem holds one (m, m) matrix and per-neuron vectors only: no per-neuron matrix anywhere
    n, m = problem.linear.shape
    held = [v for v in vars(problem).values() if isinstance(v, np.ndarray)]
    held += [getattr(problem, name) for name in ("linear", "offsets", "dead", "base_values")]
    assert all(a.ndim < 3 for a in held)
    assert sum(a.nbytes for a in held if a.ndim == 2 and a.shape == (m, m)) == 0  # H lives in stats only
    # every neuron's quadratic coefficients are 2 d_j d_l H_jl of that same H
    for i in range(n):
        bqm = problem.neuron_bqm(i)
        d = problem.steps[i]
        for (j, l), b in bqm.quadratic.items():
            assert b == pytest.approx(2 * d[j] * d[l] * stats.hessian[j, l], rel=1e-12, abs=1e-15)
    # changing H changes every neuron's BQM: they read the shared matrix
    bumped = LayerStats(stats.hessian * 2.0, stats.cross, stats.target_sq, stats.num_samples)
    other = build_problem(bumped, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, 4))
    j, l = next(iter(problem.neuron_bqm(0).quadratic))
    assert other.neuron_bqm(0).quadratic[j, l] == pytest.approx(2 * problem.neuron_bqm(0).quadratic[j, l])


def test_restrict_moves_integers_to_floor_or_ceil():
    rng = np.random.default_rng(9)
    problem = random_layer(rng, 20, 4).problem(3)
    far = problem.base + rng.integers(-3, 4, size=problem.base.shape)
    near = problem.restrict(far)
    problem.encode(near)  # every restricted integer is reachable
    np.testing.assert_array_equal(near[~problem.free], problem.base[~problem.free])
    inside = (far >= problem.base) & (far <= problem.base + problem.free)
    np.testing.assert_array_equal(near[inside], far[inside])


def test_errors_of_rows_near_a_remembered_result_take_its_product_and_are_the_errors(monkeypatch):
    """Rows that differ from a remembered result in at most ``NEAR_SHARE`` of their entries: their errors are the
    errors computed afresh (to rounding), from the remembered product and the changed entries' rows of ``H``, with
    no product of their own; rows that differ in more take the product."""
    from qannealq import formulation

    rng = np.random.default_rng(11)
    problem = random_layer(rng, 64, 12, samples=300).problem(3)
    start = problem.grid.dequantize(problem.base + (rng.random(problem.base.shape) < 0.5) * problem.free,
                                    problem.steps)
    problem.errors(start)
    products = []
    real = formulation.LayerProblem.products
    monkeypatch.setattr(formulation.LayerProblem, "products", lambda self, v: products.append(v.shape) or real(self, v))

    def fresh(values):
        return (np.einsum("ij,ij->i", values @ problem.hessian, values)
                - 2 * np.einsum("ij,ij->i", values, problem.stats.cross) + problem.stats.target_sq)

    most = int(formulation.NEAR_SHARE * start.size)
    rows, cols = np.nonzero(problem.free)
    for count in (1, most):
        pick = rng.choice(rows.size, count, replace=False)
        moved = start.copy()
        moved[rows[pick], cols[pick]] += rng.choice([-1.0, 1.0], count) * problem.steps[rows[pick], cols[pick]]
        assert np.count_nonzero(moved != start) == count
        np.testing.assert_allclose(problem.errors(moved), fresh(moved), rtol=1e-13)
        assert products == []
        exact = moved @ problem.hessian
        np.testing.assert_allclose(problem.remembered_products(moved), exact, atol=1e-13 * np.abs(exact).max())
    far = problem.grid.dequantize(problem.base + (rng.random(problem.base.shape) < 0.5) * problem.free, problem.steps)
    assert np.count_nonzero(far != start) > most
    np.testing.assert_allclose(problem.errors(far), fresh(far), rtol=1e-13)
    assert products == [far.shape]


def test_errors_remembered_by_content_are_the_errors_and_never_stale():
    """``errors`` remembers its latest results by the exact bytes of the values: the same numbers as computed
    afresh, a copy each time (the caller may change it), another result for values that differ in one entry,
    the oldest forgotten, and nothing of it pickled."""
    import pickle

    from qannealq.formulation import ERRORS_REMEMBERED

    problem = random_layer(np.random.default_rng(5), 30, 4, samples=200).problem(3)
    values = problem.grid.dequantize(problem.base + problem.free, problem.steps)
    first = problem.errors(values)
    fresh = np.einsum("ij,ij->i", values @ problem.hessian, values) - 2 * np.einsum(
        "ij,ij->i", values, problem.stats.cross) + problem.stats.target_sq
    np.testing.assert_array_equal(first, fresh)
    first[:] = -1.0  # the caller's copy
    np.testing.assert_array_equal(problem.errors(values.copy()), fresh)
    moved = values.copy()
    moved[2, 7] += problem.steps[2, 7]
    other = problem.errors(moved)
    assert other[2] != fresh[2]
    np.testing.assert_array_equal(other[[0, 1, 3]], fresh[[0, 1, 3]])
    assert len(problem._remembered) == ERRORS_REMEMBERED
    problem.errors(problem.base_values)
    assert len(problem._remembered) == ERRORS_REMEMBERED  # the oldest went
    np.testing.assert_array_equal(problem.errors(problem.base_values), problem.offsets)
    products = problem.remembered_products(problem.base_values)  # with the errors, their product with H
    np.testing.assert_array_equal(products, problem.base_values @ problem.hessian)
    assert not products.flags.writeable
    assert problem.remembered_products(values) is None  # forgotten
    copy = pickle.loads(pickle.dumps(problem))
    assert len(copy._remembered) == 0
    # the copy computes afresh; ``other`` took its product from the remembered ``values``' (one entry changed)
    np.testing.assert_allclose(copy.errors(moved), other, rtol=1e-14)


def test_errors_from_products_are_the_errors_and_remembered_as_errors_keeps_them():
    """``errors_from_products`` gives ``errors`` from a product the caller formed, remembers it (``remember``)
    so that ``errors`` and ``remembered_products`` of those values find it, keeps a copy of it, and refuses a
    product of another shape by name (a problem of per-neuron ``H_i``: ``tests/test_weighted.py``)."""
    import dataclasses

    problem = random_layer(np.random.default_rng(8), 30, 4, samples=200).problem(3)
    values = problem.grid.dequantize(problem.base + problem.free, problem.steps)
    products = values @ problem.hessian
    quiet = problem.errors_from_products(values, products, remember=False)
    assert problem.remembered_products(values) is None
    np.testing.assert_allclose(quiet, dataclasses.replace(problem).errors(values), rtol=1e-12)  # fresh caches
    kept = problem.errors_from_products(values, products)
    np.testing.assert_array_equal(kept, quiet)
    products[:] = 0.0  # the caller's array: the problem kept a copy
    np.testing.assert_array_equal(problem.remembered_products(values), values @ problem.hessian)
    np.testing.assert_array_equal(problem.errors(values.copy()), quiet)
    with pytest.raises(InvalidArgumentError, match="products has shape"):
        problem.errors_from_products(values, products[:, :-1])


def test_a_grid_or_statistics_of_another_shape_are_refused():
    """Another layer's grid was used as it broadcast: a one-row grid's steps served every neuron and
    ``neuron_bqm(1)`` raised an IndexError; a grid with a bias step on a layer without bias failed in numpy
    ("operands could not be broadcast"). A ``c`` of one value was broadcast to every neuron's error."""
    rng = np.random.default_rng(5)
    layer = random_layer(rng, 10, 4)
    stats = LayerStats.from_arrays(layer.x, layer.y)
    for grid in (make_grid(layer.weight[:1], layer.bias[:1], 4), make_grid(layer.weight, None, 4)):
        with pytest.raises(InvalidArgumentError, match="grid of layer has .* make it with make_grid"):
            build_problem(stats, layer.weight, layer.bias, grid)
    with pytest.raises(InvalidArgumentError, match="grid of layer has 4 weight steps and a bias step, but the layer "
                                                   "has 4 neurons and no bias"):
        build_problem(LayerStats.from_arrays(layer.x, layer.y, bias=False), layer.weight, None,
                      make_grid(layer.weight, layer.bias, 4))
    one_c = LayerStats(stats.hessian, stats.cross, stats.target_sq[:1], stats.num_samples)
    with pytest.raises(InvalidArgumentError, match=r"c \(1,\), but the layer needs .* and \(4,\)"):
        build_problem(one_c, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, 4))


def test_errors_refuse_rows_of_another_shape():
    """One row ``(1, m)`` was broadcast against every neuron's ``g`` and ``c``: ``n`` numbers, none of them an error
    of that row unless it was neuron 0's."""
    rng = np.random.default_rng(5)
    problem = random_layer(rng, 10, 4).problem(4)
    for values in (problem.weights[:1], problem.weights[:, :-1]):
        with pytest.raises(InvalidArgumentError, match=r"values has shape .* errors takes every neuron's row, "
                                                       r"\(4, 11\)"):
            problem.errors(values)
    np.testing.assert_allclose(problem.neuron_errors(problem.weights[:1], np.arange(1)),
                               problem.errors(problem.weights)[:1], rtol=1e-12)
