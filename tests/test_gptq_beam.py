"""The beam search over GPTQ's roundings (qannealq._gptq_beam) and the warm start built on it."""

from __future__ import annotations

import dataclasses
import itertools
import time

import numpy as np
import pytest

import qannealq._gptq_beam as gptq_beam
import qannealq.baselines as baselines
from helpers import GRIDS, random_layer
from qannealq import InvalidArgumentError
from qannealq._deadline import Deadline
from qannealq._gptq_beam import beam_search
from qannealq.baselines import (BASELINES, GPTQ_PERCDAMP, RANK_DEFICIENT_PERCDAMP, _beam_arguments, _damping,
                                _pivot_factor, rank_deficient, warm_start_integers)


def _beam(problem, width, percdamp=GPTQ_PERCDAMP, **kwargs):
    """``beam_search`` on the pivot-order factor, back in input order: ``(v (n, m), score (n,))``."""
    perm, factor = _pivot_factor(problem.hessian, problem.dead, percdamp)
    v, score = beam_search(*_beam_arguments(problem, slice(None), perm, factor, percdamp), width, **kwargs)
    out = np.empty_like(v)
    out[..., perm] = v
    return out, score


def _reference(problem, width, percdamp=GPTQ_PERCDAMP, widths=None, block=64, pairs=True):
    """The same beam search written plainly (float64, no lazy updates, full sort by (energy, child index)),
    per neuron: the states of each neuron's best survivor; ``widths``: the width at each position of the
    order (default: ``width`` throughout). With ``pairs``, where the beam is full (at least as many survivors
    as the width there, more than one) and the next two positions of a block of ``block`` are both live and
    free, they are one step: every survivor's four grandchildren, the width at the second position kept."""
    perm, u = _pivot_factor(problem.hessian, problem.dead, percdamp)
    lam = _damping(problem.hessian, problem.dead, percdamp)
    w0 = np.where(problem.dead, 0.0, problem.weights)
    grad = w0 @ problem.hessian - problem.stats.cross
    steps = np.where(problem.dead, 0.0, problem.steps)
    free = problem.free & ~problem.dead
    offset = float(problem.grid.offset)
    m = len(perm)
    at = np.full(m, width) if widths is None else np.asarray(widths)
    out = np.zeros(problem.free.shape, np.uint8)
    for i in range(problem.num_neurons):

        def rounded(c, x, t, bit):  # (partial energy, positions after it) of rounding position t to bit
            j = perm[t]
            value = steps[i, j] * (problem.base[i, j] + bit + offset)
            e = (x[t] - value) / u[t, t]
            d = value - w0[i, j]
            y = x.copy()
            y[t + 1:] -= e * u[t, t + 1:]
            return c + e * e - lam * d * d + 2 * d * grad[i, j], y

        def live_free(t):
            return steps[i, perm[t]] != 0.0 and free[i, perm[t]]

        beam = [(0.0, w0[i, perm].copy(), [])]  # (partial energy, positions in beam order, choices)
        t = 0
        while t < m:
            j = perm[t]
            if steps[i, j] == 0.0:
                beam = [(c, x, bits + [0]) for c, x, bits in beam]
                t += 1
                continue
            if (pairs and len(beam) >= at[t] > 1 and t % block < block - 1 and t + 1 < m and live_free(t)
                    and live_free(t + 1)):
                children = [(*rounded(*rounded(c, x, t, bit), t + 1, bit2), bits + [bit, bit2])
                            for c, x, bits in beam for bit in (0, 1) for bit2 in (0, 1)]
                keep, t = at[t + 1], t + 2
            else:
                children = [(*rounded(c, x, t, bit), bits + [bit])
                            for c, x, bits in beam for bit in ((0, 1) if free[i, j] else (0,))]
                keep, t = at[t], t + 1
            beam = [children[k] for k in sorted(range(len(children)), key=lambda k: children[k][0])[:keep]]
        best = min(beam, key=lambda item: item[0])[2]
        out[i, perm] = best
    return out


def _assert_optimal(problem, energies):
    """Each neuron's QUBO energy ``energies[i]`` is its brute-force optimum over its free inputs."""
    for i in range(problem.num_neurons):
        free = np.flatnonzero(problem.free[i])
        states = np.zeros((2 ** free.size, problem.free.shape[1]), np.uint8)
        states[:, free] = list(itertools.product((0, 1), repeat=free.size))
        u = problem.steps[i] * states
        brute = (problem.offsets[i] + states @ (problem.linear[i] - problem.steps[i] ** 2 * np.diag(problem.hessian))
                 + np.einsum("sj,sj->s", u @ problem.hessian, u)).min()
        assert energies[i] == pytest.approx(brute, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("bits,granularity,int1", GRIDS)
def test_a_beam_wide_enough_keeps_every_state_and_finds_the_optimum(bits, granularity, int1):
    """Every grid: with a width of 2^(free inputs) no prefix is ever dropped, so each neuron's state is its
    brute-force optimum; the score plus ``E(w)`` is the QUBO energy of the state (float32 updates)."""
    problem = random_layer(np.random.default_rng(bits), 7, 4, samples=80).problem(bits, granularity, int1)
    v, score = _beam(problem, 2 ** 8, block=3)
    energies = problem.qubo_energies(v)
    _assert_optimal(problem, energies)
    w0 = np.where(problem.dead, 0.0, problem.weights)
    np.testing.assert_allclose(score + problem.errors(w0), energies, rtol=1e-4 if bits == 8 else 1e-5)


@pytest.mark.parametrize("pairs", [True, False])
@pytest.mark.parametrize("width", [1, 3, 8])
def test_the_compiled_beam_is_the_plain_beam_search(width, pairs):
    """Blocks, lazy updates, shared rows and back-pointers change nothing: the states are those of a plain
    float64 beam search (per neuron, every child sorted), on a layer with dead inputs and targets with noise,
    with two inputs a step where the beam is full and one (``pairs=False``)."""
    problem = random_layer(np.random.default_rng(width), 23, 5, samples=150).problem(3)
    v, score = _beam(problem, width, block=5, pairs=pairs)
    np.testing.assert_array_equal(v, _reference(problem, width, block=5, pairs=pairs))
    if width == 3:  # the pair steps do change the states here
        assert (v != _beam(problem, width, block=5, pairs=not pairs)[0]).any()
    w0 = np.where(problem.dead, 0.0, problem.weights)
    np.testing.assert_allclose(score + problem.errors(w0), problem.qubo_energies(v), rtol=1e-5)


def _cholesky_beam(problem, width, **kwargs):
    """``beam_search`` on ``R = U⁻¹`` of the pivot order (``R Rᵀ`` the damped ``H``), ``form="cholesky"``, back
    in input order: ``(v (n, m), score (n,))``."""
    perm, u = _pivot_factor(problem.hessian, problem.dead, GPTQ_PERCDAMP)
    args = list(_beam_arguments(problem, slice(None), perm, u, GPTQ_PERCDAMP))
    args[6] = np.linalg.inv(u)  # upper triangular
    v, score = beam_search(*args, width, form="cholesky", **kwargs)
    out = np.empty_like(v)
    out[:, perm] = v
    return out, score


@pytest.mark.parametrize("pairs", [True, False])
@pytest.mark.parametrize("width", [1, 3, 8])
def test_the_beam_on_the_cholesky_factor_is_the_beam_on_its_inverse(width, pairs):
    """``form="cholesky"``: the factor is ``R`` (``R Rᵀ`` the damped ``H`` in the beam's order, ``U = R⁻¹``) and
    the positions move by the raw errors ``q − w``: the states are the plain beam search's (float64, on ``U``),
    the scores the QUBO energies less ``E(w)``."""
    problem = random_layer(np.random.default_rng(width), 23, 5, samples=150).problem(3)
    v, score = _cholesky_beam(problem, width, block=5, pairs=pairs)
    np.testing.assert_array_equal(v, _reference(problem, width, block=5, pairs=pairs))
    w0 = np.where(problem.dead, 0.0, problem.weights)
    np.testing.assert_allclose(score + problem.errors(w0), problem.qubo_energies(v), rtol=1e-5)
    with pytest.raises(InvalidArgumentError, match="form='lu' must be 'inverse'"):
        beam_search(*_beam_arguments(problem, slice(None), *_pivot_factor(problem.hessian, problem.dead, 0.01), 0.01),
                    width, form="lu")


@pytest.mark.parametrize("bits,granularity,int1", GRIDS)
def test_a_beam_on_the_cholesky_factor_wide_enough_finds_the_optimum(bits, granularity, int1):
    """Every grid, ``form="cholesky"``: with a width of 2^(free inputs) each neuron's state is its brute-force
    optimum."""
    problem = random_layer(np.random.default_rng(bits), 7, 4, samples=80).problem(bits, granularity, int1)
    v, _ = _cholesky_beam(problem, 2 ** 8, block=3)
    energies = problem.qubo_energies(v)
    _assert_optimal(problem, energies)


def test_the_selection_by_counting_cuts_at_the_kth_smallest():
    """The beam's cut (:func:`_cut`: interpolation on counts) keeps exactly the k + 1 lowest child costs: where
    the k-th smallest (the quickselect's) has no tie past it, the values at or below the cut are those k + 1
    (the cut is that value or any above it and below the next), else the cut is that value itself; on smooth,
    tied, clustered, heavy-tailed values and values spread beyond the largest float's range, and on a beam's
    children in pairs (its bracket below the pairs' lower values); ties that no float separates and too many
    passes end it correctly (the quickselect takes over)."""
    rng = np.random.default_rng(7)
    cases = []
    for trial in range(600):
        n = int(rng.integers(2, 600))
        kind = trial % 6
        if kind == 0:
            v = rng.random(n) + rng.random()
        elif kind == 1:  # few distinct values: ties at the cut
            v = rng.integers(-2, 3, n).astype(float)
        elif kind == 2:  # values one float apart
            v = np.nextafter(1.0, 2.0) ** rng.integers(0, 4, n)
        elif kind == 3:  # heavy tail: interpolation converges slowly
            v = np.sort(rng.standard_cauchy(n)) ** 3
            rng.shuffle(v)
        elif kind == 4:  # the range beyond the largest float: hi − lo overflows
            v = rng.choice([-1.0, 1.0], n) * np.exp(rng.uniform(0, 709.7, n))
        else:
            v = np.full(n, -0.5)
        cases += [(v, int(k)) for k in rng.integers(0, n, 2)]
    for trial in range(300):  # a beam's children: pairs of a parent's floor and ceil, the lower half kept
        half = int(rng.integers(1, 300))
        parents = rng.gamma(2.0, 1e-5, half) + 1e-3
        spread = [rng.exponential(1e-6, (half, 2)), rng.exponential(1e-6, (half, 2)) ** 3,
                  np.round(rng.exponential(1.0, (half, 2))) * 1e-6][trial % 3]  # smooth, heavy-tailed, tied
        v = (parents[:, None] + spread).ravel()
        cases += [(v, half - 1), (v, int(rng.integers(0, 2 * half)))]
    def assert_cuts(cut, v, k):
        kth = np.partition(v, k)[k]
        if np.count_nonzero(v <= kth) == k + 1:  # no tie past it: the same k + 1 at or below the cut
            assert kth <= cut and np.count_nonzero(v <= cut) == k + 1
        else:
            assert cut == kth

    scratch = np.empty(600)
    above = 0
    for v, k in cases:
        cut = gptq_beam._cut(v, scratch, k)
        assert_cuts(cut, v, k)
        above += bool(cut != np.partition(v, k)[k])
        assert gptq_beam._kth(v, scratch, k) == np.partition(v, k)[k]
    assert above > len(cases) // 10  # the counting often ends early, above the k-th smallest (377 of 1800)
    for v, k in cases[:50]:  # a scratch no larger than the values (the beam's own: 2 · width)
        assert_cuts(gptq_beam._cut(v, np.empty(v.size), k), v, k)


def test_the_selection_bounds_are_exact():
    """:func:`_bounds`: the least and the largest value and the largest of the pairs' lower values, for odd and
    even sizes and an odd number of pairs."""
    rng = np.random.default_rng(3)
    for n in [1, 2, 3, 4, 5, 6, 7, 8, 9, 31, 32, 33, 256]:
        v = rng.normal(size=n)
        least, most, pairs = gptq_beam._bounds(v)
        assert (least, most) == (v.min(), v.max())
        assert pairs == (np.minimum(v[0:n - n % 2:2], v[1:n - n % 2:2]).max() if n > 1 else -np.inf)


@pytest.mark.parametrize("growth", [4.0, 0.25])
def test_a_widening_or_narrowing_beam_is_the_plain_beam_search_of_those_widths(growth):
    """``growth``: each block's width, geometric from ``width / growth`` in the first block to ``width`` in the
    last (:func:`beam_widths`), is the plain beam search's width at each input of that block, whether the beam
    widens (empty slots filled by the children of the survivors) or narrows (the best survivors of a block go
    on to the next: the narrower width holds from the block's last input)."""
    problem = random_layer(np.random.default_rng(13), 31, 5, samples=200).problem(3)
    widths = gptq_beam.beam_widths(8, growth, 32, block=5)
    assert widths[-1] == 8 and widths[0] == (2 if growth > 1 else 32) and len(widths) == 7
    v, score = _beam(problem, 8, block=5, growth=growth)
    at = np.repeat(widths, 5)[:32]  # a narrowing beam narrows at the last input of the block before
    np.testing.assert_array_equal(v, _reference(problem, 8, widths=np.minimum(at, np.append(at[1:], at[-1])),
                                                block=5))
    w0 = np.where(problem.dead, 0.0, problem.weights)
    np.testing.assert_allclose(score + problem.errors(w0), problem.qubo_energies(v), rtol=1e-5)


def test_the_trunk_moves_and_every_neuron_group_is_the_plain_beam_search(monkeypatch):
    """Thirteen neurons: two groups of the compiled kernels (8 and a partial 5), each neuron equal to the plain
    search; and the survivors' shared errors do move into the trunk (a boundary where every survivor descends from
    one is found), so the positions built from trunk and history are the ones checked."""
    moved = []
    group = gptq_beam._group_search

    def spy(*args):
        out = group(*args)
        moved.append(out[1])  # the most inputs one extension moved into a trunk
        return out
    monkeypatch.setattr(gptq_beam, "_group_search", spy)
    problem = random_layer(np.random.default_rng(29), 47, 13, samples=250).problem(3)
    v, score = _beam(problem, 4, block=4, threads=2)
    assert max(moved) > 0, "the trunk never moved"
    np.testing.assert_array_equal(v, _reference(problem, 4, block=4))
    w0 = np.where(problem.dead, 0.0, problem.weights)
    np.testing.assert_allclose(score + problem.errors(w0), problem.qubo_energies(v), rtol=1e-5)


def test_beam_widths_refuse_bad_arguments():
    for bad in (0.0, -1.0, float("nan"), float("inf"), "2", True):
        with pytest.raises(InvalidArgumentError, match="growth"):
            gptq_beam.beam_widths(8, bad, 100)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InvalidArgumentError, match="width"):
            gptq_beam.beam_widths(bad, 1.0, 100)
        with pytest.raises(InvalidArgumentError, match="block"):
            gptq_beam.beam_widths(8, 1.0, 100, block=bad)
    np.testing.assert_array_equal(gptq_beam.beam_widths(16, 1.0, 130, block=64), [16, 16, 16])
    np.testing.assert_array_equal(gptq_beam.beam_widths(16, 16.0, 40, block=64), [16])  # one block: the width


def test_the_beam_refuses_a_pairs_that_is_not_a_bool():
    problem = random_layer(np.random.default_rng(5), 12, 3, samples=60).problem(3)
    for bad in ("yes", 1, None):
        with pytest.raises(InvalidArgumentError, match="pairs"):
            _beam(problem, 4, pairs=bad)


def test_the_beam_does_not_depend_on_threads():
    """Neurons in fixed groups: the same states with one thread or two."""
    problem = random_layer(np.random.default_rng(7), 40, 21, samples=300).problem(3)
    v, score = _beam(problem, 6, threads=1)
    assert np.all(v[~problem.free] == 0), "a fixed coordinate was rounded up"
    again, again_score = _beam(problem, 6, threads=2)
    np.testing.assert_array_equal(again, v)
    np.testing.assert_array_equal(again_score, score)


def test_a_wider_beam_finds_lower_energies_on_a_correlated_layer():
    """What the beam is for: on strongly correlated inputs, width 16 ends far below GPTQ-restricted (and width
    1), summed over the layer."""
    problem = random_layer(np.random.default_rng(3), 60, 12, samples=400).problem(2)
    gptq = problem.qubo_energies(problem.encode(BASELINES["gptq-restricted-pivot"](problem))).sum()
    narrow = problem.qubo_energies(_beam(problem, 1)[0]).sum()
    wide = problem.qubo_energies(_beam(problem, 16)[0]).sum()
    w0 = problem.errors(np.where(problem.dead, 0.0, problem.weights)).sum()
    assert wide - w0 < 0.9 * (min(gptq, narrow) - w0)


@pytest.mark.parametrize("name", ["gptq-restricted-pivot", "gptq-restricted", "gptq-act"])
def test_the_beam_warm_start_is_never_worse_than_gptqs_and_is_deterministic(name):
    """With a beam, each neuron's warm start is at most GPTQ's start (of ``name``, at each damping), lower on
    some neurons, the same every call; a full-rank and a rank-deficient ``H``."""
    rng = np.random.default_rng(11)
    for problem in (random_layer(rng, 40, 10, samples=300).problem(3),
                    random_layer(rng, 40, 10, samples=25).problem(3)):
        plain = warm_start_integers(problem, name)
        warm = warm_start_integers(problem, name, beam=8)
        e_plain, e_warm = (problem.qubo_energies(problem.encode(ints)) for ints in (plain, warm))
        assert np.all(e_warm <= e_plain)
        assert np.any(e_warm < e_plain)
        np.testing.assert_array_equal(warm_start_integers(problem, name, beam=8), warm)
    assert rank_deficient(problem)
    restricted = name != "gptq-act"
    best = np.min([problem.qubo_energies(problem.encode(ints if restricted else problem.restrict(ints)))
                   for ints in (BASELINES[name](problem, percdamp=d) for d in (GPTQ_PERCDAMP,
                                                                               RANK_DEFICIENT_PERCDAMP))], axis=0)
    assert np.all(e_warm <= best + 1e-12)


@pytest.mark.parametrize("bits,granularity,int1", GRIDS)
def test_gptq_restricted_s_scores_from_its_pass_are_its_energies(bits, granularity, int1):
    """:func:`_gptq_scores`: GPTQ-restricted's ``E(q) − E(w)`` from its own pass (its squared scaled errors, no
    product with ``H``) plus ``E(w)`` is its error, on every grid, with dead inputs, on the live inputs' factor
    (the warm start's) and on the full one, at two dampings."""
    problem = random_layer(np.random.default_rng(bits + 70), 60, 7, samples=200, dead=3).problem(
        bits, granularity, int1)
    w0 = np.where(problem.dead, 0.0, problem.weights)
    grad = problem.products(w0) - problem.stats.cross
    for percdamp in (GPTQ_PERCDAMP, RANK_DEFICIENT_PERCDAMP):
        for live in (True, False):
            perm, factor = baselines._ordered_factor(problem.hessian, problem.dead, percdamp, "pivot",
                                                     baselines._inverse_cholesky, live)
            squares = np.empty(problem.num_neurons)
            ints = baselines._gptq_on(problem, perm, factor, True, squares=squares)
            score = baselines._gptq_scores(problem, ints, squares, _damping(problem.hessian, problem.dead, percdamp),
                                           grad)
            errors = problem.errors(problem.grid.dequantize(ints, problem.steps))
            np.testing.assert_allclose(score + problem.errors(w0), errors, rtol=1e-9)


@pytest.mark.parametrize("beam", [1, 8])
def test_the_start_s_candidates_take_products_only_where_their_scores_can_win(monkeypatch, beam):
    """:func:`_lowest` with scores picks each neuron's start as exact errors of every candidate do (a beam of 1,
    where GPTQ's own start wins on many neurons, and of 8), on a full-rank and a rank-deficient layer, while
    GPTQ's own starts take products only for the neurons their scores leave in reach."""
    rng = np.random.default_rng(5)
    rows = []
    problems = (random_layer(rng, 60, 24, samples=300, dead=4).problem(3),
                random_layer(rng, 60, 24, samples=30).problem(3))
    products = type(problems[0]).products

    def counted(self, values):
        rows.append(len(values))
        return products(self, values)

    monkeypatch.setattr(type(problems[0]), "products", counted)
    for problem in problems:
        rows.clear()  # each start on a fresh copy: a problem keeps its float weights' product (weight_products)
        scored = warm_start_integers(dataclasses.replace(problem), "gptq-restricted-pivot", beam=beam)
        with_scores = sum(rows)
        rows.clear()
        monkeypatch.setattr(baselines, "SCORE_MARGIN", np.inf)  # every candidate's every row: exact errors
        exact = warm_start_integers(dataclasses.replace(problem), "gptq-restricted-pivot", beam=beam)
        monkeypatch.setattr(baselines, "SCORE_MARGIN", 1e-3)
        np.testing.assert_array_equal(scored, exact)
        assert with_scores < sum(rows)
        if beam == 1:  # GPTQ's own start is strictly lower than the beam's on some neurons: those found too
            candidates = []
            lowest = baselines._lowest
            monkeypatch.setattr(baselines, "_lowest", lambda p, c, **kw: candidates.extend(c) or lowest(p, c, **kw))
            warm_start_integers(problem, "gptq-restricted-pivot", beam=beam)
            errors = [problem.errors(problem.grid.dequantize(c, problem.steps)) for c in candidates]
            wins = np.min(errors[1:], axis=0) < errors[0]
            assert wins.any()
            np.testing.assert_array_equal(problem.errors(problem.grid.dequantize(scored, problem.steps))[wins],
                                          np.min(errors[1:], axis=0)[wins])
            monkeypatch.setattr(baselines, "_lowest", lowest)


@pytest.mark.parametrize("margin", [0.02, 1.0, -1e9])
def test_a_pilot_chooses_the_damping_of_a_rank_deficient_layer(monkeypatch, margin):
    """Rank-deficient ``H``, more neurons than the pilot: the whole layer takes the lower damping's beam unless
    the pilot's energy at GPTQ's damping is lower by more than the margin (GPTQ's start where it is lower still);
    with every neuron in the pilot, the same rule over the layer."""
    monkeypatch.setattr(baselines, "PILOT_NEURONS", 4)
    monkeypatch.setattr(baselines, "PILOT_MARGIN", margin)
    problem = random_layer(np.random.default_rng(5), 50, 20, samples=30).problem(2)
    assert rank_deficient(problem)
    e = problem.qubo_energies
    high, _ = _beam(problem, 6, GPTQ_PERCDAMP)
    low, _ = _beam(problem, 6, RANK_DEFICIENT_PERCDAMP)
    gptq = np.min([e(problem.encode(BASELINES["gptq-restricted-pivot"](problem, percdamp=d)))
                   for d in (GPTQ_PERCDAMP, RANK_DEFICIENT_PERCDAMP)], axis=0)
    for pilot in (np.unique(np.linspace(0, 19, 4).round().astype(int)), np.arange(20)):
        if pilot.size == 20:
            monkeypatch.setattr(baselines, "PILOT_NEURONS", 10)  # 20 neurons: every neuron is in the pilot
        chosen = high if e(high)[pilot].sum() < (1 - margin) * e(low)[pilot].sum() else low
        warm = problem.encode(warm_start_integers(problem, beam=6))
        np.testing.assert_allclose(e(warm), np.minimum(e(chosen), gptq))
    if margin != 0.02:  # a margin of 1 never takes GPTQ's damping, a hugely negative one always does
        np.testing.assert_allclose(e(warm), np.minimum(e(low if margin > 0 else high), gptq))
    assert not np.allclose(e(high), e(low))



@pytest.mark.parametrize("margin", [1.0, -1e9])
def test_under_a_deadline_the_damping_pilot_runs_narrow_and_every_neuron_is_beamed_at_its_choice(monkeypatch, margin):
    """Rank-deficient ``H`` under a deadline (a roomy one): the damping pilot's two beams run at
    ``DEADLINE_PILOT_WIDTH`` in every block (growth 1), one path, on one neuron in ``DEADLINE_PILOT_SPREAD`` (at
    least a group of 8), and one beam at the full width and growth then searches every neuron at the damping they
    chose (``PILOT_MARGIN`` 1: the lower always; -1e9: GPTQ's always), GPTQ's own starts competing per neuron.
    Without a deadline the pilot is the beam of its neurons, at the full width, as before."""
    monkeypatch.setattr(baselines, "PILOT_MARGIN", margin)
    problem = random_layer(np.random.default_rng(5), 50, 40, samples=30).problem(2)
    assert rank_deficient(problem)
    calls = []
    real = gptq_beam.beam_search

    def spy(*args, **kwargs):  # rows, width, growth, paths, damping of each beam
        calls.append((args[0].shape[0], args[9], kwargs["growth"], kwargs["paths"], args[7]))
        return real(*args, **kwargs)

    monkeypatch.setattr(gptq_beam, "beam_search", spy)
    lam = {d: _damping(problem.hessian, problem.dead, d) for d in (GPTQ_PERCDAMP, RANK_DEFICIENT_PERCDAMP)}
    chosen = GPTQ_PERCDAMP if margin < 0 else RANK_DEFICIENT_PERCDAMP
    warm = warm_start_integers(problem, beam=12, growth=3.0, deadline=Deadline(time.perf_counter() + 600.0))
    pilot = (8, baselines.DEADLINE_PILOT_WIDTH, 1.0, 1)  # 40 neurons: 40 // 16 = 2, at least a group of 8
    assert [c[:4] for c in calls] == [pilot, pilot, (40, 12, 3.0, 1)]
    assert [c[4] for c in calls] == [lam[GPTQ_PERCDAMP], lam[RANK_DEFICIENT_PERCDAMP], lam[chosen]]
    e = problem.qubo_energies
    beam, _ = _beam(problem, 12, chosen, growth=3.0)
    gptq = np.min([e(problem.encode(BASELINES["gptq-restricted-pivot"](problem, percdamp=d))) for d in lam], axis=0)
    np.testing.assert_allclose(e(problem.encode(warm)),
                               np.minimum(e(problem.encode(problem.base + np.where(problem.free, beam, 0))), gptq))
    calls.clear()
    warm_start_integers(problem, beam=12, growth=3.0)  # no deadline: the pilot (every neuron here) at full width
    assert [c[:4] for c in calls] == [(40, 12, 3.0, 1)] * 2


def _beam_in(problem, width, percdamp, ordered, rows=None):
    """``beam_search`` in a given order of the live inputs (``ordered``: the order and its factor, e.g.
    ``_pivot_live_factor``'s) on ``rows``, back in input order (dead inputs at their floor): ``(v, score)``."""
    perm, factor = ordered
    rows = np.arange(problem.num_neurons) if rows is None else rows
    v, score = beam_search(*_beam_arguments(problem, rows, perm, factor, percdamp), width)
    out = np.zeros((rows.size, problem.dead.size), np.uint8)
    out[:, perm] = v
    return out, score


def test_the_blast_order_rounds_first_the_input_with_the_most_variance_left_and_its_factor_is_the_beams():
    """V-BLAST's order (``_blast_factor``): each input in turn is, among those not yet rounded, the one with the
    largest variance unexplained by the others not yet rounded (``1 / (H_S⁻¹)_jj``, by brute force), and the
    factor is the upper Cholesky factor of the damped ``H⁻¹`` in that order, over the live inputs alone."""
    problem = random_layer(np.random.default_rng(3), 30, 4, samples=300).problem(4)
    damping = _damping(problem.hessian, problem.dead, GPTQ_PERCDAMP)
    order, factor = baselines._blast_factor(*baselines._pivot_live_factor(problem.hessian, problem.dead,
                                                                          GPTQ_PERCDAMP)[:2], GPTQ_PERCDAMP)
    live = np.flatnonzero(~problem.dead)
    assert sorted(order) == list(live) and live.size < problem.dead.size
    h = problem.hessian[np.ix_(order, order)] + damping * np.eye(order.size)
    np.testing.assert_allclose(np.triu(factor), factor)
    np.testing.assert_allclose(factor.T @ factor, np.linalg.inv(h), atol=1e-10)
    for t in range(order.size - 1):
        left = np.linalg.inv(h[t:, t:])  # H_S⁻¹ over the inputs not yet rounded
        variances = 1.0 / np.diag(left)
        assert variances[0] >= variances.max() * (1 - 1e-9), t
    pivot = baselines._pivot_live_factor(problem.hessian, problem.dead, GPTQ_PERCDAMP)[0]
    assert not np.array_equal(order, pivot)


@pytest.mark.parametrize("seed, bits, expected", [(0, 2, "blast"), (1, 4, "pivot")])
def test_a_pilot_chooses_the_input_order_of_a_full_rank_layers_beam(monkeypatch, seed, bits, expected):
    """Full rank, more neurons than twice the pilot's, no deadline or a roomy one: the beam runs in the order
    (pivot or V-BLAST) whose pilot beams (``ORDER_PILOT_WIDTH``, on the pilot's neurons) end lower, GPTQ's own
    starts competing per neuron as before. The two cases choose one order each. Under a deadline that leaves
    less than ``ORDER_PILOT_ROOM`` times the factorizations' time, or with at most twice the pilot's neurons,
    the beam runs in pivot order."""
    monkeypatch.setattr(baselines, "PILOT_NEURONS", 4)
    monkeypatch.setattr(baselines, "ORDER_PILOT_WIDTH", 2)
    problem = random_layer(np.random.default_rng(seed), 40, 20, samples=300).problem(bits)
    assert not rank_deficient(problem)
    e = problem.qubo_energies
    damping = baselines.FULL_RANK_BEAM_PERCDAMP if bits >= baselines.FULL_RANK_BEAM_BITS else GPTQ_PERCDAMP
    pivot = baselines._pivot_live_factor(problem.hessian, problem.dead, damping)[:2]
    orders = {"pivot": pivot, "blast": baselines._blast_factor(*pivot, damping)}
    pilot = np.unique(np.linspace(0, 19, 4).round().astype(int))
    ends = {name: _beam_in(problem, 2, damping, o, pilot)[1].sum() for name, o in orders.items()}
    chosen = "blast" if ends["blast"] < ends["pivot"] else "pivot"
    assert chosen == expected
    beams = {name: e(problem.encode(problem.base + np.where(problem.free, _beam_in(problem, 6, damping, o)[0], 0)))
             for name, o in orders.items()}
    assert not np.allclose(beams["pivot"], beams["blast"])
    gptq = np.min([e(problem.encode(BASELINES["gptq-restricted-pivot"](problem, percdamp=d)))
                   for d in {GPTQ_PERCDAMP, damping}], axis=0)
    warm = e(problem.encode(warm_start_integers(problem, beam=6)))
    np.testing.assert_allclose(warm, np.minimum(beams[chosen], gptq))
    roomy = Deadline(time.perf_counter() + 600.0)  # the pilot fits: the same start
    np.testing.assert_allclose(e(problem.encode(warm_start_integers(problem, beam=6, deadline=roomy))),
                               np.minimum(beams[chosen], gptq))
    monkeypatch.setattr(baselines, "ORDER_PILOT_ROOM", 1e12)  # a deadline that leaves no room for the pilot
    np.testing.assert_allclose(e(problem.encode(warm_start_integers(problem, beam=6, deadline=roomy))),
                               np.minimum(beams["pivot"], gptq))
    np.testing.assert_allclose(e(problem.encode(warm_start_integers(problem, beam=6))),
                               np.minimum(beams[chosen], gptq))  # the room matters under a deadline only
    monkeypatch.setattr(baselines, "PILOT_NEURONS", 10)  # 20 neurons: the pilot would be the layer
    np.testing.assert_allclose(e(problem.encode(warm_start_integers(problem, beam=6))),
                               np.minimum(beams["pivot"], gptq))


def test_a_rank_deficient_layer_beams_in_both_orders_and_keeps_each_neurons_lower(monkeypatch):
    """Rank-deficient ``H``, no deadline, a beam of at least ``BOTH_ORDERS_WIDTH``: at the damping the pilot
    chose, the beam runs in pivot order and in V-BLAST order, and each neuron keeps the lower of the two (GPTQ's
    own starts at both dampings competing as before). Under a deadline, the same where it leaves the beams at
    least ``BOTH_ORDERS_ROOM`` times the factorizations' time, else pivot order alone; narrower, pivot order alone."""
    monkeypatch.setattr(baselines, "PILOT_NEURONS", 4)
    monkeypatch.setattr(baselines, "BOTH_ORDERS_WIDTH", 4)
    problem = random_layer(np.random.default_rng(5), 50, 20, samples=30).problem(2)
    assert rank_deficient(problem)
    e = problem.qubo_energies

    def beam(damping, blast):
        ordered = baselines._pivot_live_factor(problem.hessian, problem.dead, damping)[:2]
        if blast:
            ordered = baselines._blast_factor(*ordered, damping)
        return e(problem.encode(problem.base + np.where(problem.free, _beam_in(problem, 6, damping, ordered)[0], 0)))

    pilot = np.unique(np.linspace(0, 19, 4).round().astype(int))
    high, low = beam(GPTQ_PERCDAMP, False), beam(RANK_DEFICIENT_PERCDAMP, False)
    damping = GPTQ_PERCDAMP if high[pilot].sum() < (1 - baselines.PILOT_MARGIN) * low[pilot].sum() else \
        RANK_DEFICIENT_PERCDAMP
    pivot, blast = beam(damping, False), beam(damping, True)
    assert np.any(blast < pivot - 1e-12) and np.any(pivot < blast - 1e-12)  # each order wins somewhere
    gptq = np.min([e(problem.encode(BASELINES["gptq-restricted-pivot"](problem, percdamp=d)))
                   for d in (GPTQ_PERCDAMP, RANK_DEFICIENT_PERCDAMP)], axis=0)
    warm = e(problem.encode(warm_start_integers(problem, beam=6)))
    np.testing.assert_allclose(warm, np.minimum(np.minimum(pivot, blast), gptq))
    roomy = Deadline(time.perf_counter() + 600.0)  # room for both beams: the same start
    np.testing.assert_allclose(e(problem.encode(warm_start_integers(problem, beam=6, deadline=roomy))), warm)
    monkeypatch.setattr(baselines, "BOTH_ORDERS_ROOM", 1e12)  # a deadline that leaves no room for the second beam
    np.testing.assert_allclose(e(problem.encode(warm_start_integers(problem, beam=6, deadline=roomy))),
                               np.minimum(pivot, gptq))
    np.testing.assert_allclose(e(problem.encode(warm_start_integers(problem, beam=6))), warm)  # no deadline: both
    monkeypatch.setattr(baselines, "BOTH_ORDERS_WIDTH", 7)
    np.testing.assert_allclose(e(problem.encode(warm_start_integers(problem, beam=6))), np.minimum(pivot, gptq))


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_a_full_rank_layer_beams_at_its_bit_widths_damping(bits):
    """Full-rank ``H``: from int4 on the beam runs at ``FULL_RANK_BEAM_PERCDAMP``, below at GPTQ's damping; GPTQ's
    own start at its damping (and at the beam's) competes per neuron, so the warm start is never worse than it."""
    problem = random_layer(np.random.default_rng(bits), 40, 12, samples=300).problem(bits)
    assert not rank_deficient(problem)
    e = problem.qubo_energies
    damping = baselines.FULL_RANK_BEAM_PERCDAMP if bits >= baselines.FULL_RANK_BEAM_BITS else GPTQ_PERCDAMP
    dampings = {GPTQ_PERCDAMP, damping}
    beam, _ = _beam(problem, 6, damping)
    gptq = np.min([e(problem.encode(BASELINES["gptq-restricted-pivot"](problem, percdamp=d))) for d in dampings],
                  axis=0)
    warm = e(problem.encode(warm_start_integers(problem, beam=6)))
    np.testing.assert_allclose(warm, np.minimum(e(beam), gptq))
    assert np.all(warm <= e(problem.encode(BASELINES["gptq-restricted-pivot"](problem))) + 1e-12)
    if bits >= baselines.FULL_RANK_BEAM_BITS:  # the other damping's beam is another start
        assert not np.allclose(e(beam), e(_beam(problem, 6, GPTQ_PERCDAMP)[0]))


def test_the_beams_damping_is_read_from_one_rule():
    """``_beam_damping``, which the warm start and the beam benchmarks read: on a full-rank ``H`` 0.3 % from int4
    on and GPTQ's 1 % below; None on a rank-deficient one (its pilot chooses)."""
    rng = np.random.default_rng(11)
    full, deficient = random_layer(rng, 40, 10, samples=300), random_layer(rng, 40, 10, samples=25)
    assert baselines._beam_damping(full.problem(4)) == 0.003 and baselines._beam_damping(full.problem(8)) == 0.003
    assert baselines._beam_damping(full.problem(3)) == GPTQ_PERCDAMP == 0.01
    assert rank_deficient(deficient.problem(4)) and baselines._beam_damping(deficient.problem(4)) is None


def test_under_a_deadline_the_full_rank_start_s_other_damping_waits_for_the_beam(monkeypatch):
    """Full rank, int4: under a deadline GPTQ's start at its own 1 % (which only competes with the beam at 0.3 %)
    is formed after the beam, where the time the first damping took is still left. A roomy deadline: the same
    start as without one, both factorizations formed (the 1 % one last), nothing cut. A deadline already passed:
    no beam (``SKIP_BEAM``), no 1 % factorization; each neuron starts from GPTQ's start at the beam's damping,
    and ``cut`` and ``late`` are set."""
    from qannealq._deadline import Deadline

    problem = random_layer(np.random.default_rng(4), 40, 12, samples=300).problem(4)
    assert not rank_deficient(problem) and problem.grid.bits >= baselines.FULL_RANK_BEAM_BITS
    formed = []
    factor = baselines._pivot_live_cholesky  # every factorization in pivot order starts with it

    def spy(hessian, dead, percdamp, *args, **kwargs):
        formed.append(percdamp)
        return factor(hessian, dead, percdamp, *args, **kwargs)
    monkeypatch.setattr(baselines, "_pivot_live_cholesky", spy)
    unbounded = warm_start_integers(problem, beam=6)
    assert sorted(formed) == sorted([GPTQ_PERCDAMP, baselines.FULL_RANK_BEAM_PERCDAMP])
    formed.clear()
    roomy = Deadline(time.perf_counter() + 600)
    np.testing.assert_array_equal(warm_start_integers(problem, beam=6, deadline=roomy), unbounded)
    assert formed == [baselines.FULL_RANK_BEAM_PERCDAMP, GPTQ_PERCDAMP] and not roomy.cut
    formed.clear()
    passed = Deadline(time.perf_counter() - 1.0)
    start = warm_start_integers(problem, beam=6, deadline=passed)
    assert formed == [baselines.FULL_RANK_BEAM_PERCDAMP] and passed.cut and passed.late
    own = BASELINES["gptq-restricted-pivot"](problem, percdamp=baselines.FULL_RANK_BEAM_PERCDAMP)
    np.testing.assert_array_equal(start, own)


@pytest.mark.parametrize("limit, later, narrowed", [(2.3, False, False), (2.7, True, False), (10.0, False, True)])
def test_under_a_deadline_gptq_s_own_starts_follow_the_beam_where_what_follows_them_still_fits(monkeypatch, limit,
                                                                                               later, narrowed):
    """Full rank, int4, under a deadline: GPTQ's own starts (at the beam's 0.3 %, then at its own 1 %, which only
    compete with the beam) run after the beam, each only where the beam ran at its full width and the deadline
    leaves the time the start's fixed costs took (``fixed``: here the first factorization) and
    :data:`qannealq._deadline.RESERVE` times it more for what follows. A fake clock: the first factorization
    takes 1 s, nothing else any time; a layer deadline 2.3 s away leaves 1.3 s after the beam: no GPTQ start, no
    second factorization, the beam's own best state, cut; 2.7 s: both run, and the start is the unbounded one,
    nothing cut; 10 s, but the beam narrowed (it marks its deadline cut): none."""
    import types

    import qannealq._deadline
    import qannealq._gptq_beam
    from qannealq._deadline import RESERVE, Deadline

    assert 1.0 + RESERVE == pytest.approx(1.6)
    now = [0.0]
    clock = types.SimpleNamespace(perf_counter=lambda: now[0])
    for module in (baselines, qannealq._deadline, qannealq._gptq_beam):
        monkeypatch.setattr(module, "time", clock)
    problem = random_layer(np.random.default_rng(4), 40, 12, samples=300).problem(4)
    unbounded = warm_start_integers(problem, beam=6)
    formed, starts = [], []
    factor, gptq_on = baselines._pivot_live_cholesky, baselines._gptq_on
    monkeypatch.setattr(baselines, "SKIP_BEAM", 0.0)  # the beam's logic under a deadline, not its skip
    monkeypatch.setattr(baselines, "_FASTEST", {})  # the fake clock's times stay in this test

    def spy(hessian, dead, percdamp, *args, **kwargs):
        formed.append(percdamp)
        now[0] += 1.0 if len(formed) == 1 else 0.0
        return factor(hessian, dead, percdamp, *args, **kwargs)

    def gptq_spy(*args, **kwargs):
        starts.append(kwargs.get("rows"))
        return gptq_on(*args, **kwargs)
    monkeypatch.setattr(baselines, "_pivot_live_cholesky", spy)
    monkeypatch.setattr(baselines, "_gptq_on", gptq_spy)
    search = qannealq._gptq_beam.beam_search

    def narrowing(*args, deadline=None, **kwargs):
        deadline.mark_cut()  # as a beam the deadline narrowed does (its full width here, the same state)
        return search(*args, deadline=deadline, **kwargs)
    if narrowed:
        monkeypatch.setattr(qannealq._gptq_beam, "beam_search", narrowing)
    deadline = Deadline(limit)
    start = warm_start_integers(problem, beam=6, deadline=deadline)
    assert formed == [baselines.FULL_RANK_BEAM_PERCDAMP, *([GPTQ_PERCDAMP] if later else [])]
    assert len(starts) == (2 if later else 0) and deadline.cut is not later
    if later:
        np.testing.assert_array_equal(start, unbounded)
    else:
        beam, _ = _beam(problem, 6, baselines.FULL_RANK_BEAM_PERCDAMP)
        np.testing.assert_array_equal(start, problem.base + np.where(problem.free, beam, 0))


def test_under_a_deadline_a_neuron_the_beam_missed_takes_gptq_s_start_alone(monkeypatch):
    """Where the deadline leaves no time for GPTQ's own start after the beam, the neurons the beam did not reach
    take it, computed for those rows alone on the Cholesky factor (nearest plane): the factor's inverse is never
    formed, the beam read the Cholesky factor too; the others keep the beam's state. A fake clock: the
    factorization takes 1 s, nothing else any time, and the deadline is 1.5 s away (0.5 s left after the beam)."""
    import types

    import qannealq._deadline
    import qannealq._gptq_beam
    from qannealq._deadline import Deadline

    now = [0.0]
    clock = types.SimpleNamespace(perf_counter=lambda: now[0])
    for module in (baselines, qannealq._deadline, qannealq._gptq_beam):
        monkeypatch.setattr(module, "time", clock)
    problem = random_layer(np.random.default_rng(5), 40, 12, samples=300).problem(4)
    factor, search, gptq_on = baselines._pivot_live_cholesky, qannealq._gptq_beam.beam_search, baselines._gptq_on
    monkeypatch.setattr(baselines, "SKIP_BEAM", 0.0)  # the beam's logic under a deadline, not its skip
    monkeypatch.setattr(baselines, "_FASTEST", {})  # the fake clock's times stay in this test

    def slow_factor(*args, **kwargs):
        now[0] += 1.0
        return factor(*args, **kwargs)

    def half(*args, **kwargs):  # the beam reaches the first half of the neurons
        forms.append(kwargs.get("form"))
        v, score = search(*args, **kwargs)
        score = score.copy()
        score[score.size // 2:] = np.inf
        return v, score
    rows, inverted, forms = [], [], []
    plane = baselines._gptq_plane
    monkeypatch.setattr(baselines, "_pivot_live_cholesky", slow_factor)
    monkeypatch.setattr(qannealq._gptq_beam, "beam_search", half)
    monkeypatch.setattr(baselines, "_gptq_on", lambda *a, **k: rows.append(("on", k.get("rows"))) or gptq_on(*a, **k))
    monkeypatch.setattr(baselines, "_gptq_plane",
                        lambda *a, **k: rows.append(("plane", k.get("rows"))) or plane(*a, **k))
    live_factor = baselines._pivot_live_factor  # the inverse: not formed by the start
    monkeypatch.setattr(baselines, "_pivot_live_factor", lambda *a, **k: inverted.append(1) or live_factor(*a, **k))
    deadline = Deadline(1.5)
    start = warm_start_integers(problem, beam=6, deadline=deadline)
    missed = np.arange(problem.num_neurons // 2, problem.num_neurons)
    assert [kind for kind, _ in rows] == ["plane"] and np.array_equal(rows[0][1], missed) and deadline.cut
    assert not inverted and forms == ["cholesky"]
    own = BASELINES["gptq-restricted-pivot"](problem, percdamp=baselines.FULL_RANK_BEAM_PERCDAMP)
    np.testing.assert_array_equal(start[missed], own[missed])
    beam, _ = _beam(problem, 6, baselines.FULL_RANK_BEAM_PERCDAMP)
    reached = slice(0, problem.num_neurons // 2)
    np.testing.assert_array_equal(start[reached], (problem.base + np.where(problem.free, beam, 0))[reached])


@pytest.mark.parametrize("case", ["roomy", "narrowed", "missed"])
def test_under_a_deadline_a_rank_deficient_start_s_gptq_starts_follow_its_beams(monkeypatch, case):
    """Rank-deficient (both dampings factored, the pilot's beams at each): under a deadline GPTQ's own starts,
    which only compete with the beam, run after the beams. A roomy deadline: both after the beams, and the start
    that without one (GPTQ's starts first). The beam narrowed (it marks its deadline cut): none, each neuron the
    beam's state at the damping the pilot chose. The beam narrowed and half the neurons missed: GPTQ's start at
    that damping, formed for the missed neurons alone, on the Cholesky factor (nearest plane: the beams read the
    Cholesky factors under a deadline, and no inverse is formed for it)."""
    problem = random_layer(np.random.default_rng(7), 40, 12, samples=25).problem(3)
    assert rank_deficient(problem) and problem.num_neurons <= 2 * baselines.PILOT_NEURONS  # the pilot: every neuron
    events = []
    search, gptq_on = gptq_beam.beam_search, baselines._gptq_on

    def spy_beam(*args, deadline=None, **kwargs):
        events.append("beam")
        v, score = search(*args, deadline=deadline, **kwargs)
        if deadline is not None and case != "roomy":
            deadline.mark_cut()  # as a beam the deadline narrowed does (its full width here, the same states)
            if case == "missed":
                score = score.copy()
                score[score.size // 2:] = np.inf
        return v, score

    def spy_gptq(*args, **kwargs):
        events.append(("gptq", kwargs.get("rows")))
        return gptq_on(*args, **kwargs)

    def spy_plane(*args, **kwargs):
        events.append(("plane", kwargs.get("rows")))
        return plane(*args, **kwargs)
    plane = baselines._gptq_plane
    monkeypatch.setattr(gptq_beam, "beam_search", spy_beam)
    monkeypatch.setattr(baselines, "_gptq_on", spy_gptq)
    monkeypatch.setattr(baselines, "_gptq_plane", spy_plane)
    unbounded = warm_start_integers(problem, beam=6)
    assert [e if e == "beam" else e[0] for e in events] == ["gptq", "gptq", "beam", "beam"]
    events.clear()
    deadline = Deadline(time.perf_counter() + 600)
    start = warm_start_integers(problem, beam=6, deadline=deadline)
    assert events[:2] == ["beam", "beam"] and deadline.cut is (case != "roomy")
    if case == "roomy":
        assert [e[0] for e in events[2:]] == ["gptq", "gptq"] and all(e[1] == slice(None) for e in events[2:])
        np.testing.assert_array_equal(start, unbounded)
        return
    beams = {d: problem.base + np.where(problem.free, _beam(problem, 6, d)[0], 0)
             for d in (GPTQ_PERCDAMP, RANK_DEFICIENT_PERCDAMP)}
    half = problem.num_neurons // 2
    reached = slice(None) if case == "narrowed" else slice(0, half)
    chosen = [d for d, b in beams.items() if np.array_equal(start[reached], b[reached])]
    assert len(chosen) == 1 and not np.array_equal(beams[GPTQ_PERCDAMP], beams[RANK_DEFICIENT_PERCDAMP])
    if case == "narrowed":
        assert events == ["beam", "beam"]
        return
    missed = np.arange(half, problem.num_neurons)
    assert len(events) == 3 and events[2][0] == "plane" and np.array_equal(events[2][1], missed)
    own = BASELINES["gptq-restricted-pivot"](problem, percdamp=chosen[0])
    np.testing.assert_array_equal(start[missed], own[missed])


def test_a_lone_damping_s_gradient_product_runs_beside_its_factorization(monkeypatch):
    """Full rank, int4, under a deadline (a lone damping factored first): below ``ONE_BLAS_INPUTS`` inputs the
    gradient's product of every row runs in the helper thread while the caller factors, and the factorization
    copies the products' live block instead of gathering ``H`` again; the start is the one without a deadline.
    From ``ONE_BLAS_INPUTS`` on (the caller's BLAS threads) the product runs in the caller's thread."""
    import threading

    from qannealq.formulation import LayerProblem, submatrix

    products, blocks = [], []
    product, factor = LayerProblem.products, baselines._pivot_live_cholesky

    def spy_products(self, values):
        products.append((values.shape[0], threading.current_thread().name))
        return product(self, values)

    def spy_factor(*args, live_h=None, **kwargs):
        blocks.append(live_h)
        return factor(*args, live_h=live_h, **kwargs)
    monkeypatch.setattr(LayerProblem, "products", spy_products)
    monkeypatch.setattr(baselines, "_pivot_live_cholesky", spy_factor)
    layer = random_layer(np.random.default_rng(21), 40, 12, samples=300, dead=8)
    unbounded = warm_start_integers(layer.problem(4), beam=6)
    for inputs, helper in ((1024, True), (20, False)):  # ONE_BLAS_INPUTS: 41 inputs below it, or not
        monkeypatch.setattr(baselines, "ONE_BLAS_INPUTS", inputs)
        problem = layer.problem(4)  # its products not formed yet
        assert not rank_deficient(problem) and problem.grid.bits >= baselines.FULL_RANK_BEAM_BITS
        products.clear()
        blocks.clear()
        start = warm_start_integers(problem, beam=6, deadline=Deadline(time.perf_counter() + 600))
        np.testing.assert_array_equal(start, unbounded)
        assert products[0][0] == problem.num_neurons  # the gradient's: every row
        assert (products[0][1].startswith("qannealq-helper")) is helper
        live = np.flatnonzero(~problem.dead)
        assert blocks[0] is not None and live.size < problem.num_coordinates
        np.testing.assert_array_equal(blocks[0], submatrix(problem.hessian, live))


def test_a_lone_damping_factors_on_one_blas_thread_below_one_blas_inputs(monkeypatch):
    """A full-rank int2 layer (one damping): its factorization runs on one BLAS thread below
    ``ONE_BLAS_INPUTS`` inputs (numpy's and scipy's OpenBLAS threads would share the cores), on the caller's
    threads from it. The threads counted are numpy's and scipy's BLAS's, the libraries the factorization calls:
    another package's BLAS loaded by an earlier test (qiskit-optimization's) keeps its own threads."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from qannealq._pool import _controller

    ours = {lib.filepath for lib in _controller().lib_controllers if lib.user_api == "blas"}
    assert len(ours) >= 1
    seen = []
    factor = baselines._ordered_factor

    def spy(*args):
        seen.append(max(i["num_threads"] for i in threadpool_info() if i["filepath"] in ours))
        return factor(*args)
    monkeypatch.setattr(baselines, "_ordered_factor", spy)
    monkeypatch.setattr(baselines, "ONE_BLAS_INPUTS", 50)
    for inputs, expected in ((40, 1), (60, 2)):
        problem = random_layer(np.random.default_rng(inputs), inputs, 4, samples=400).problem(2)
        assert not rank_deficient(problem)
        seen.clear()
        with threadpool_limits(2, user_api="blas"):
            warm_start_integers(problem, beam=4)
        assert seen == [expected], (inputs, seen)


def test_paths_are_the_final_beam_spread_by_rank_the_best_first():
    """``paths``: with a width of 2^(free inputs) the final beam holds every state, so ``paths`` = that width
    returns each state once, in order of energy (path 0 the best: ``paths=1``'s state); fewer paths take
    every ``width // paths``-th of them; more paths than survivors repeat the last."""
    problem = random_layer(np.random.default_rng(3), 5, 3, samples=60).problem(3)
    free = int(problem.free.sum(axis=1).max())
    width = 2 ** free
    best, score = _beam(problem, width, block=2)
    every, every_score = _beam(problem, width, block=2, paths=width)
    assert every.shape == (3, width, problem.num_coordinates)
    np.testing.assert_array_equal(every[:, 0], best)
    np.testing.assert_array_equal(every_score, score)
    for i in range(problem.num_neurons):
        states = {tuple(row) for row in every[i]}
        assert len(states) == 2 ** int(problem.free[i].sum())  # each reachable state once (then repeats)
        e = np.array([problem.qubo_energies(np.repeat(row[None], 3, axis=0))[i] for row in every[i]])
        assert np.all(np.diff(e) >= -1e-6 * np.abs(e).max())  # by energy (float32 scores)
    spread, _ = _beam(problem, width, block=2, paths=4)
    for i in range(problem.num_neurons):
        finite = 2 ** int(problem.free[i].sum())
        ranks = [min(t * max(finite // 4, 1), finite - 1) for t in range(4)]
        np.testing.assert_array_equal(spread[i], every[i, ranks])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidArgumentError, match="paths"):
            _beam(problem, 4, paths=bad)


def test_the_warm_start_with_paths_starts_with_the_warm_start():
    """``warm_start_integers(paths=k)``: ``(n, k, m)``, the start of ``paths=1`` first (also on a rank-deficient
    ``H``, where the pilot picks the damping), then valid roundings, the beam's distinct survivors; copies
    without a beam."""
    rng = np.random.default_rng(17)
    for problem in (random_layer(rng, 40, 6, samples=300).problem(3),
                    random_layer(rng, 40, 6, samples=25).problem(3)):
        one = warm_start_integers(problem, beam=16)
        many = warm_start_integers(problem, beam=16, paths=4)
        assert many.shape == (6, 4, problem.num_coordinates)
        np.testing.assert_array_equal(many[:, 0], one)
        for t in range(4):
            problem.encode(many[:, t])  # each a floor/ceil rounding (raises otherwise)
        assert all(len({tuple(row) for row in many[i, 1:]}) == 3 for i in range(6))  # distinct survivors
        plain = warm_start_integers(problem, paths=3)
        np.testing.assert_array_equal(plain, np.repeat(warm_start_integers(problem)[:, None], 3, axis=1))
    for bad in (0, 2.5, True):
        with pytest.raises(InvalidArgumentError, match="paths"):
            warm_start_integers(problem, beam=4, paths=bad)


def test_the_beam_warm_start_refuses_bad_widths_and_skips_rtn():
    problem = random_layer(np.random.default_rng(2), 12, 3).problem(4)
    for bad in (-1, 1.5, True, "4"):
        with pytest.raises(InvalidArgumentError, match="beam"):
            warm_start_integers(problem, beam=bad)
    with pytest.raises(InvalidArgumentError, match="unknown"):
        warm_start_integers(problem, "gptq-sideways")
    np.testing.assert_array_equal(warm_start_integers(problem, "rtn", beam=4), warm_start_integers(problem, "rtn"))


@pytest.mark.parametrize("restricted", [True, False], ids=["restricted", "gptq"])
@pytest.mark.parametrize("bits,granularity,int1", GRIDS)
def test_the_compiled_gptq_path_is_gptq(bits, granularity, int1, restricted):
    """GPTQ and GPTQ-restricted on a shared ``H``, compiled (the baselines' and the warm start's): the integers of
    the numpy GPTQ rows in pivot order, on every grid, a layer with dead inputs, blocks that do not divide the
    inputs."""
    problem = random_layer(np.random.default_rng(bits + 40), 150, 9, samples=300, dead=3).problem(
        bits, granularity, int1)
    perm, factor = _pivot_factor(problem.hessian, problem.dead, GPTQ_PERCDAMP)
    base = problem.base[:, perm]
    lo, hi = (base, base + problem.free[:, perm]) if restricted else (problem.grid.lo, problem.grid.hi)
    ints = gptq_beam.gptq_path(problem.weights[:, perm], problem.steps[:, perm], lo, hi, float(problem.grid.offset),
                               problem.dead[perm], factor, block=64)
    out = np.empty_like(ints)
    out[:, perm] = np.where(problem.dead[perm], base, ints)
    n, m = problem.weights.shape
    rows = baselines._gptq_rows(problem, np.broadcast_to(perm, (n, m)), factor, problem.dead[perm], restricted, 64)
    np.testing.assert_array_equal(out, rows[:, np.argsort(perm)])
    name = "gptq-restricted-pivot" if restricted else "gptq-pivot"
    np.testing.assert_array_equal(out, BASELINES[name](problem, block_size=64))
    if not restricted:  # rounding beyond floor/ceil: a grid level anywhere in range
        assert out.min() >= problem.grid.lo and out.max() <= problem.grid.hi


@pytest.mark.parametrize("restricted", [True, False], ids=["restricted", "gptq"])
@pytest.mark.parametrize("bits,granularity,int1", GRIDS)
def test_nearest_plane_on_the_cholesky_factor_is_gptq_on_the_inverse_factor(bits, granularity, int1, restricted):
    """Babai's nearest plane on ``L`` (``H = L Lᵀ`` in pivot order, no inverse) rounds as GPTQ on ``J L⁻¹ J`` in
    the reversed order, for blocks of one input, of sizes that do not divide the inputs and of all of them, its
    neurons in one group or several side by side; and the GPTQ baselines in pivot order (which run it on the live
    inputs alone) give those integers."""
    problem = random_layer(np.random.default_rng(bits + 60), 90, 7, samples=200, dead=4).problem(
        bits, granularity, int1)
    damped = baselines._damped(problem.hessian, problem.dead, GPTQ_PERCDAMP)
    pivots, lt = baselines._pivot_cholesky(damped, GPTQ_PERCDAMP)
    perm, factor = _pivot_factor(problem.hessian, problem.dead, GPTQ_PERCDAMP)
    np.testing.assert_array_equal(perm, pivots[::-1])
    base = problem.base[:, perm]
    lo, hi = (base, base + problem.free[:, perm]) if restricted else (problem.grid.lo, problem.grid.hi)
    want = gptq_beam.gptq_path(problem.weights[:, perm], problem.steps[:, perm], lo, hi,
                               float(problem.grid.offset), problem.dead[perm], factor, block=16)[:, ::-1]
    lo, hi = (lo[:, ::-1], hi[:, ::-1]) if restricted else (lo, hi)
    for block, threads in ((1, 1), (7, 3), (16, 2), (91, 7), (128, 1)):  # neurons in groups side by side too
        got = gptq_beam.nearest_plane_path(problem.weights[:, pivots], problem.steps[:, pivots], lo, hi,
                                           float(problem.grid.offset), problem.dead[pivots], lt, block=block,
                                           threads=threads)
        live = ~problem.dead[pivots]
        np.testing.assert_array_equal(got[:, live], want[:, live])
    name = "gptq-restricted-pivot" if restricted else "gptq-pivot"
    out = np.empty_like(want)
    out[:, pivots] = np.where(problem.dead[pivots], problem.base[:, pivots], want)
    np.testing.assert_array_equal(BASELINES[name](problem), out)


def test_a_deadline_the_beam_meets_changes_nothing():
    """A deadline far off: the same states and scores as without one (the probes' results are overwritten by
    their group's wave), paths too, and ``cut`` stays False."""
    from qannealq._deadline import Deadline

    problem = random_layer(np.random.default_rng(8), 45, 21, samples=300).problem(3)
    for paths in (1, 3):
        free_v, free_score = _beam(problem, 12, paths=paths, threads=2)
        deadline = Deadline(time.perf_counter() + 600)
        v, score = _beam(problem, 12, paths=paths, threads=2, deadline=deadline)
        np.testing.assert_array_equal(v, free_v)
        np.testing.assert_array_equal(score, free_score)
        assert deadline.cut is False
    with pytest.raises(InvalidArgumentError, match="deadline"):
        _beam(problem, 4, deadline=time.perf_counter() + 5)


def _fake_clock(monkeypatch, per_width: float = 1e-4, slow_from: int | None = None, fixed: float = 0.0):
    """A clock the beam's own groups advance (:func:`gptq_beam._group_search`, one block a group on layers of at
    most 64 inputs): ``fixed + per_width · (1 + width)`` per group, and 1 s more per group from group ``slow_from``
    on (a slow spell).
    Returns the clock (``[now]``) and the log of ``(group's first neuron, width, now before the block)``."""
    import types

    import qannealq._deadline as deadline_module

    clock, log = [0.0], []
    fake = types.SimpleNamespace(perf_counter=lambda: clock[0])
    monkeypatch.setattr(gptq_beam, "time", fake)
    monkeypatch.setattr(deadline_module, "time", fake)
    group = gptq_beam._group_search

    def timed(*args):  # one block per group: the layers here have at most 64 inputs
        first, widths = int(args[16]), args[4]
        assert widths.size == 1, "the fake clock times one block per group"
        width = int(widths[0])
        log.append((first, width, clock[0]))
        clock[0] += fixed + per_width * (1 + width) + (1.0 if slow_from is not None and first >= slow_from else 0.0)
        return group(*args)
    monkeypatch.setattr(gptq_beam, "_group_search", timed)
    return clock, log


def test_under_a_deadline_the_waves_narrow_to_end_by_it(monkeypatch):
    """A group's time ``a + b · width`` from a fake clock, one group a wave (one thread), 5 groups. With time for
    about 9 of 16 a wave: the first group is probed at 8 only (16 would not fit its share), the waves narrow and
    end by the deadline having used most of it, each group's states are the plain beam's at the width it ran,
    and ``cut`` is set. With time for the full width: the first group's probe at 16 is its search, nothing is
    narrowed, the states are the unbounded beam's and ``cut`` stays False."""
    from qannealq._deadline import Deadline

    problem = random_layer(np.random.default_rng(9), 40, 40, samples=300).problem(3)  # 5 groups of 8
    reference = {w: _beam(problem, w, threads=1) for w in range(1, 17)}  # unbounded, before the fake clock
    clock, log = _fake_clock(monkeypatch)
    deadline = Deadline(9e-4 + 50e-4)  # the probe at 8, then 10e-4 a wave: width 9 at a = b = 1e-4
    v, score = _beam(problem, 16, threads=1, deadline=deadline)
    assert log[0][:2] == (0, 8) and [f for f, _, _ in log[1:]] == [0, 8, 16, 24, 32]
    widths = {first: width for first, width, _ in log[1:]}
    for first, width in widths.items():
        rows = slice(first, first + 8)
        np.testing.assert_array_equal(v[rows], reference[width][0][rows])
        np.testing.assert_allclose(score[rows], reference[width][1][rows])
    assert max(widths.values()) < 16 and deadline.cut is True
    assert clock[0] <= deadline.at + 1e-12 and deadline.at - clock[0] < 0.25 * 50e-4  # ended by it, most used

    clock[0], log[:] = 0.0, []
    deadline = Deadline(9e-4 + 5 * 18.5e-4)  # room for the probe at 16 and four waves at 16
    v, score = _beam(problem, 16, threads=1, deadline=deadline)
    assert [(f, w) for f, w, _ in log[:2]] == [(0, 8), (0, 16)] and [f for f, _, _ in log[2:]] == [8, 16, 24, 32]
    assert {w for _, w, _ in log[1:]} == {16} and deadline.cut is False
    np.testing.assert_array_equal(v, reference[16][0])
    np.testing.assert_array_equal(score, reference[16][1])


def test_a_lone_probe_counts_a_groups_fixed_time_and_the_groups_run_at_even_widths(monkeypatch):
    """A group's time with a large fixed part, as the beam's (its trunk's products, each input's pricing): on a
    fake clock ``0.6 ms + 0.05 ms · (1 + width)``, one thread, 5 groups, time for a width of about 30 each after the
    probe at 8. The model takes ``PROBE_FIXED`` of the lone probe's time as fixed: every group runs at 27-31,
    the deadline met with all but a tenth of a group's time used. Through the origin (``PROBE_FIXED`` 0, the rule
    before) the probe over-predicts the wider groups: the first runs at under 0.6 of the last's width."""
    from qannealq._deadline import Deadline

    problem = random_layer(np.random.default_rng(9), 40, 40, samples=300).problem(3)  # 5 groups of 8
    per_group = 0.6e-3 + 0.05e-3 * 31  # a width of 30
    widths = {}
    for fixed_share in (gptq_beam.PROBE_FIXED, 0.0):
        monkeypatch.setattr(gptq_beam, "PROBE_FIXED", fixed_share)
        clock, log = _fake_clock(monkeypatch, per_width=0.05e-3, fixed=0.6e-3)
        deadline = Deadline(0.6e-3 + 0.05e-3 * 9 + 5 * per_group)  # the probe at 8, then 5 groups at 30
        _beam(problem, 64, threads=1, deadline=deadline)
        assert log[0][:2] == (0, 8) and [f for f, _, _ in log[1:]] == [0, 8, 16, 24, 32]
        assert clock[0] <= deadline.at + 1e-12
        widths[fixed_share] = ([w for _, w, _ in log[1:]], deadline.at - clock[0])
        monkeypatch.undo()
    assert gptq_beam.PROBE_FIXED == 0.6
    (even, unused), (ramp, _) = widths[0.6], widths[0.0]
    assert all(27 <= w <= 31 for w in even) and unused < 0.1 * per_group, widths
    assert ramp[0] < 0.6 * ramp[-1], widths


def test_under_a_deadline_a_free_thread_takes_the_next_group(monkeypatch):
    """Two threads under a deadline: the groups go one at a time to whichever thread is free, so a slow group on
    one thread holds no other back. With the second group 0.4 s slow, the third to fifth start before it ends (in
    waves of two the next wave waited for it); a deadline the full width meets narrows nothing, and the states are
    the unbounded beam's."""
    import threading

    problem = random_layer(np.random.default_rng(9), 40, 40, samples=300).problem(3)  # 5 groups of 8
    reference = _beam(problem, 16, threads=1)
    group, log, lock = gptq_beam._group_search, {}, threading.Lock()

    def timed(*args):
        first = int(args[16])
        with lock:
            log.setdefault(first, []).append(time.perf_counter())
        if first == 8:
            time.sleep(0.4)
        out = group(*args)
        with lock:
            log[first].append(time.perf_counter())
        return out
    monkeypatch.setattr(gptq_beam, "_group_search", timed)
    deadline = Deadline(time.perf_counter() + 30.0)
    v, score = _beam(problem, 16, threads=2, deadline=deadline)
    assert sorted(log) == [0, 8, 16, 24, 32]
    slow_end = log[8][-1]
    assert all(log[first][-2] < slow_end for first in (16, 24, 32))  # started while the slow group ran
    assert deadline.cut is False
    np.testing.assert_array_equal(v, reference[0])
    np.testing.assert_array_equal(score, reference[1])


def test_groups_the_deadline_passes_before_are_not_searched(monkeypatch):
    """A slow spell from the third group on: its wave overruns, the deadline passes, the groups after it are not
    searched (score inf, every choice floor) and ``cut`` is set; the warm start past its deadline is GPTQ's own
    start (int3, full rank: at GPTQ's damping), its other paths copies of it."""
    from qannealq._deadline import Deadline

    problem = random_layer(np.random.default_rng(9), 40, 40, samples=300).problem(3)
    _fake_clock(monkeypatch, slow_from=16)
    deadline = Deadline(26e-4 + 0.5)
    v, score = _beam(problem, 16, threads=1, deadline=deadline)
    assert np.all(np.isfinite(score[:24])) and np.all(np.isinf(score[24:]))
    assert np.all(v[24:] == 0) and deadline.cut is True

    monkeypatch.undo()
    from qannealq._deadline import Deadline as Fresh
    passed = Fresh(time.perf_counter() - 1.0)
    warm = warm_start_integers(problem, beam=16, paths=3, deadline=passed)
    assert passed.cut is True
    np.testing.assert_array_equal(warm[:, 0], warm_start_integers(problem))
    for t in (1, 2):
        np.testing.assert_array_equal(warm[:, t], warm[:, 0])


def test_the_warm_starts_beam_runs_on_the_live_inputs_alone(monkeypatch):
    """Dead inputs are decoupled in the damped ``H``: the warm start's beam runs on the live inputs' rows and
    columns of the factor (no dead input reaches it) and finds what a beam over every input finds, each dead
    input left at its floor."""
    problem = random_layer(np.random.default_rng(12), 60, 10, samples=300, dead=6).problem(3)
    assert problem.dead.sum() == 6
    seen = []
    search = gptq_beam.beam_search

    def spy(weights, steps, base, free, offset, dead, factor, *args, **kwargs):
        seen.append((weights.shape[1], factor.shape, bool(dead.any())))
        return search(weights, steps, base, free, offset, dead, factor, *args, **kwargs)
    monkeypatch.setattr(gptq_beam, "beam_search", spy)
    warm = warm_start_integers(problem, beam=8)
    assert seen == [(55, (55, 55), False)]  # 60 inputs and the bias, 6 of them dead
    full, _ = _beam(problem, 8)  # over all 60 inputs, the dead ones in place
    gptq = problem.qubo_energies(problem.encode(warm_start_integers(problem)))
    e = problem.qubo_energies
    np.testing.assert_allclose(e(problem.encode(warm)), np.minimum(e(full), gptq), rtol=1e-12)
    assert np.all(warm[:, problem.dead] == problem.base[:, problem.dead])


def test_a_start_whose_deadline_leaves_the_polish_alone_forms_one_start_a_neuron():
    """Where the warm start's deadline is tight once its fixed costs are paid (the search after it is the polish
    alone), asking for several paths gives ``(n, 1, m)``: the start itself, the same as with room, without the
    beam's other survivors (rows that the search would not use); with room, ``(n, paths, m)``."""
    problem = random_layer(np.random.default_rng(13), 60, 10, samples=30).problem(3)  # rank-deficient: pilots
    n, m = problem.weights.shape
    roomy = Deadline(time.perf_counter() + 100.0, share=0.5, tight_share=0.85)
    many = warm_start_integers(problem, beam=8, paths=3, deadline=roomy)
    tight = Deadline(time.perf_counter() + 100.0, share=0.5, tight_share=0.85, tight=1e9)  # every time tight
    one = warm_start_integers(problem, beam=8, paths=3, deadline=tight)
    assert many.shape == (n, 3, m) and one.shape == (n, 1, m)
    assert not (roomy.cut or tight.cut)  # both beams at their full width
    np.testing.assert_array_equal(one[:, 0], many[:, 0])
    np.testing.assert_array_equal(warm_start_integers(problem, beam=8, deadline=Deadline(
        time.perf_counter() + 100.0, share=0.5, tight_share=0.85, tight=1e9)), one[:, 0])  # one path: (n, m)


def test_a_deadlines_search_share_is_of_the_time_its_fixed_costs_leave(monkeypatch):
    """``Deadline.search(fixed)`` on a fake clock: ``share`` of the time left where it is roomy (at least ``TIGHT``
    times the fixed costs); where it is tight, ``tight_share`` of it less ``RESERVE`` times those costs (or times
    the ``scale`` given: the part of them what follows scales with); without a ``tight_share``, ``share`` in either
    case; with ``keep``, where it is not tight and the fixed costs were measured, all that is left once ``keep``
    (plus ``KEEP_ROWS`` per row per input) times the scale and ``KEEP_SECONDS`` are kept. Shortening a search under
    the result marks the layer's deadline cut; ``search_seconds`` is what ``search`` gives; ``mark_late`` marks late
    and cut up the chain; shares outside (0, 1] and a negative or infinite ``keep`` are refused naming them."""
    import types

    import qannealq._deadline as deadline_module
    from qannealq._deadline import KEEP_ROWS, KEEP_SECONDS, RESERVE, TIGHT, Deadline

    clock = [100.0]
    monkeypatch.setattr(deadline_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    layer = Deadline(110.0, share=0.3, tight_share=0.85)
    roomy = layer.search(10.0 / TIGHT)
    assert roomy.at == pytest.approx(100.0 + 0.3 * 10.0)
    tight = layer.search(10.0 / TIGHT + 1e-6)
    assert tight.at == pytest.approx(100.0 + 0.85 * (10.0 - RESERVE * 10.0 / TIGHT))
    assert Deadline(110.0, share=0.5).search(1000.0).at == pytest.approx(105.0)
    scaled = layer.search(10.0 / TIGHT + 1e-6, 1.0)  # what follows scales with a part of the fixed costs
    assert scaled.at == pytest.approx(100.0 + 0.85 * (10.0 - RESERVE * 1.0))
    assert layer.search(10.0 / TIGHT, 1.0).at == pytest.approx(103.0)  # roomy: the share, whatever the scale
    assert layer.search(0.0).at == pytest.approx(103.0)
    kept = Deadline(110.0, share=0.5, keep=2.0)  # what follows kept: twice the scale, and the calls' own seconds
    assert kept.search(1.0, 0.5).at == pytest.approx(110.0 - 2.0 * 0.5 - KEEP_SECONDS)  # the rest: no share
    assert kept.search(1.0, 0.5, 0.25).at == pytest.approx(110.0 - (2.0 + KEEP_ROWS * 0.25) * 0.5 - KEEP_SECONDS)
    assert layer.search(1.0, 0.5, 0.25).at == pytest.approx(103.0)  # no keep: rows change nothing
    assert kept.search(4.0).at == pytest.approx(110.0 - 2.0 * 4.0 - KEEP_SECONDS)  # no tight_share: never tight
    assert kept.search(6.0).at == pytest.approx(100.0)  # more kept than is left: nothing for the search
    assert kept.search(0.0).at == pytest.approx(105.0)  # fixed costs not measured (per-neuron H_i): the share
    tight_kept = Deadline(110.0, share=0.5, keep=2.0, tight_share=0.85)
    assert tight_kept.search(1.0).at == pytest.approx(110.0 - 2.0 - KEEP_SECONDS)
    assert tight_kept.search(5.0).at == pytest.approx(tight_at := 100.0 + 0.85 * (10.0 - RESERVE * 5.0))  # as before
    assert layer.search(5.0).at == pytest.approx(tight_at)
    clock[0] = 120.0  # passed: nothing left for the search
    assert layer.search(1.0).at == pytest.approx(120.0)
    assert layer.cut is False
    tight.part(0.5).mark_cut()
    assert layer.cut is True
    # search_seconds: what search gives, asked without making the search's deadline
    clock[0] = 100.0
    for d, args in ((layer, (10.0 / TIGHT,)), (layer, (5.0, 1.0)), (kept, (1.0, 0.5, 0.25)), (kept, (6.0,)),
                    (tight_kept, (5.0,))):
        assert d.search_seconds(*args) == pytest.approx(d.search(*args).at - 100.0)
    # a threshold of its own: tight below 6 times the fixed costs instead of TIGHT
    later = Deadline(110.0, share=0.3, tight_share=0.85, tight=6.0)
    assert later.search(10.0 / 5.0).at == pytest.approx(100.0 + 0.85 * (10.0 - RESERVE * 2.0))  # 5 < 6: tight
    assert layer.search(10.0 / 5.0).at == pytest.approx(103.0)  # 5 > TIGHT: the share
    # a tight search's deadline says that the polish alone follows it (a warm start then forms one start)
    assert later.search(2.0).polish and tight.polish and scaled.polish and tight_kept.search(5.0).polish
    assert not (roomy.polish or layer.search(2.0).polish or kept.search(4.0).polish or tight_kept.search(1.0).polish)
    # mark_late: the search left out, here and above, and cut too
    child = Deadline(110.0).part(0.5)
    child.mark_late()
    assert child.late and child.cut and child.parent.late and child.parent.cut
    for bad in ({"share": 0.0}, {"share": 1.5}, {"share": True}, {"tight_share": 0}, {"tight_share": "1"},
                {"keep": -1.0}, {"keep": True}, {"keep": "1"}, {"keep": float("nan")}, {"keep": float("inf")},
                {"tight": -1.0}, {"tight": True}, {"tight": float("inf")}):
        with pytest.raises(InvalidArgumentError, match=next(iter(bad))):
            Deadline(1.0, **bad)


def test_the_warm_starts_beam_takes_its_share_after_the_fixed_costs(monkeypatch):
    """The warm start's factorizations run first (GPTQ's own starts after the beam), then the beam
    asks the layer's deadline for its share (``Deadline.search``) with the seconds they took: the factorization
    slowed by 0.2 s, the fixed costs passed are at least that, and every beam runs under a part of the deadline
    that share gave."""
    from qannealq._deadline import Deadline

    problem = random_layer(np.random.default_rng(13), 40, 16, samples=300).problem(3)
    own = baselines._pivot_live_cholesky

    def slow(*args, **kwargs):
        time.sleep(0.2)
        return own(*args, **kwargs)
    monkeypatch.setattr(baselines, "_pivot_live_cholesky", slow)
    monkeypatch.setattr(baselines, "_FASTEST", {})  # the first start of its kind: its own costs are the fastest
    asked, given, search = [], [], Deadline.search

    def spy_search(self, fixed, scale=None, rows=0.0):
        asked.append((fixed, scale, rows))
        given.append(search(self, fixed, scale, rows))
        return given[-1]
    monkeypatch.setattr(Deadline, "search", spy_search)
    parents = []
    beam = gptq_beam.beam_search

    def spy_beam(*args, deadline=None, **kwargs):
        parents.append(deadline.parent)
        return beam(*args, deadline=deadline, **kwargs)
    monkeypatch.setattr(gptq_beam, "beam_search", spy_beam)
    layer = Deadline(time.perf_counter() + 600, share=0.5)
    warm_start_integers(problem, beam=8, deadline=layer)
    assert len(asked) == 1 and asked[0][0] >= 0.2
    assert 0.2 <= asked[0][1] <= asked[0][0]  # what follows scales with the factorizations (GPTQ's starts after)
    assert parents and all(p is given[0] for p in parents) and given[0].parent is layer
    # keeping time for what follows (layer-sa's default before a single sweep): all of the limit but that, which
    # grows with the layer's rows per live input
    from qannealq._deadline import KEEP_ROWS, KEEP_SECONDS
    asked, given, parents = [], [], []
    layer = Deadline(time.perf_counter() + 600, keep=3.0)
    warm_start_integers(problem, beam=8, deadline=layer)
    rows = problem.num_neurons / np.count_nonzero(~problem.dead)
    assert len(asked) == 1 and 0.2 <= asked[0][1] and asked[0][2] == pytest.approx(rows)
    assert given[0].at == pytest.approx(layer.at - (3.0 + KEEP_ROWS * rows) * asked[0][1] - KEEP_SECONDS, abs=1e-3)
    assert parents and all(p is given[0] for p in parents)


def test_a_slow_start_s_fixed_costs_are_read_at_their_fastest(monkeypatch):
    """The deadline's split reads a warm start's fixed costs at the fastest this process has recorded for the same
    start on a layer of the same shape (``baselines._steady_costs``): after a start whose factorization was slowed
    by 0.2 s, an unslowed one passes its own, far lower costs; a slowed one after it passes those again, not its
    own 0.2 s, so that a slow moment neither keeps more of the limit for what follows the beam nor makes the
    time look tight; a layer of another shape records its own."""
    problem = random_layer(np.random.default_rng(13), 40, 16, samples=300).problem(3)
    own, slowed = baselines._pivot_live_cholesky, [True]

    def slow(*args, **kwargs):
        if slowed[0]:
            time.sleep(0.2)
        return own(*args, **kwargs)
    monkeypatch.setattr(baselines, "_pivot_live_cholesky", slow)
    monkeypatch.setattr(baselines, "_FASTEST", {})
    asked, search = [], Deadline.search

    def spy_search(self, fixed, scale=None, rows=0.0):
        asked.append((fixed, scale))
        return search(self, fixed, scale, rows)
    monkeypatch.setattr(Deadline, "search", spy_search)
    for slow_now in (True, False, True):
        slowed[0] = slow_now
        warm_start_integers(problem, beam=8, deadline=Deadline(time.perf_counter() + 600, keep=1.0))
    (fixed, scale), (fast_fixed, fast_scale), again = asked
    assert fixed >= 0.2 and scale >= 0.2  # the first of its kind: its own
    assert fast_fixed < 0.2 and fast_scale < 0.2 and fast_scale <= fast_fixed
    assert again == (fast_fixed, fast_scale)  # slowed again: the fastest recorded, not its own
    assert warm_start_integers(problem, beam=8) is not None and len(asked) == 3  # no deadline: no split, no record
    other = random_layer(np.random.default_rng(14), 30, 12, samples=300).problem(3)
    warm_start_integers(other, beam=8, deadline=Deadline(time.perf_counter() + 600, keep=1.0))
    assert asked[3][0] >= 0.2  # another shape: its own costs, slowed
    assert sum(key[0] == "fixed" for key in baselines._FASTEST) == 2
