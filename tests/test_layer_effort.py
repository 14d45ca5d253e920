"""``layer-sa``'s effort presets, time limit and energy trace: every preset keeps the solver's guarantees
(exact optimum on 17-variable neurons, never worse than the warm start, deterministic per seed), a time limit
stops a long run cleanly with valid states, and the trace records the energy reached over time."""

from __future__ import annotations

import dataclasses
import time
from unittest import mock

import dimod
import numpy as np
import pytest

pytest.importorskip("numba")  # before the imports below: layer_sa loads the numba kernel

from helpers import (check_layer_energies, check_reported_energies, layer_problem, random_layer,  # noqa: E402
                     smooth_layer)
from qannealq import gptq_restricted  # noqa: E402
from qannealq.backends import get_sampler  # noqa: E402
from qannealq.backends import _layer_dense  # noqa: E402
from qannealq.backends._layer_dense import (DenseQubos, _row_nanquantile, chain_hops, chain_partners,  # noqa: E402
                                             continuous_floor, coupling_strength, pair_partners, ranked_partners)
from qannealq.backends._layer_kernel import anneal_block, anneal_rows, polish_block, up_fields  # noqa: E402
from qannealq.backends._layer_run import _NO_HOPS, _row_seeds, make_run  # noqa: E402
from qannealq.backends._layer_schedule import (EFFORTS, POPULATION_INPUTS, anneal_plan, cycles,  # noqa: E402
                                               effort, hot_ladder, recombination)
from qannealq.backends.layer_sa import LayerSASampler, time_to_target  # noqa: E402
from qannealq.contract import check_parameters  # noqa: E402
from qannealq.errors import InvalidArgumentError  # noqa: E402

PRESETS = list(EFFORTS)


def _optimum(problem) -> np.ndarray:
    exact = get_sampler("exact")
    return np.array([exact.sample(problem.neuron_bqm(i)).first.energy for i in range(problem.num_neurons)])


def _check_wide(layer, problem, sample) -> None:
    """check_layer_energies without its per-neuron BQMs (slow to build on wide layers)."""
    assert np.all(sample.assignments[~problem.free] == 0), "a fixed coordinate was flipped"
    _, values = problem.decode_layer(sample.assignments)
    check_reported_energies(problem, sample, values)
    np.testing.assert_allclose(sample.energies, layer.direct_errors(values), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("level", PRESETS)
def test_every_preset_reaches_the_exact_optimum_on_17_variable_neurons(level):
    layer, problem = layer_problem(21, 16, 6, 3)
    sample = LayerSASampler(effort=level).sample_layer(problem, seed=4)
    check_layer_energies(layer, problem, sample)
    np.testing.assert_allclose(sample.energies, _optimum(problem), rtol=1e-9, atol=1e-12)
    assert sample.info["effort"] == level


def test_recombination_only_adds_to_what_the_population_found():
    """Forced on a layer whose reads disagree (short anneals from the floor rounding): rounds run, each on fewer
    coordinates, and each neuron ends no higher than the same seed's population without them (its reads stay
    candidates), lower in sum. Eight reads, so that they still disagree after the first round whatever the random
    stream (with four, 2 of 12 seeds on numba's stream and 2 of 6 on torch's ended after one round, as this test did
    on CUDA; with eight, every seed tried on both ran two)."""
    layer, problem = layer_problem(25, 200, 5, 2)
    zeros = np.zeros(problem.free.shape, np.uint8)
    options = {"num_reads": 8, "num_sweeps": 3}
    plain = LayerSASampler(recombine=0, **options).sample_layer(problem, initial_states=zeros, seed=6)
    mixed = LayerSASampler(recombine=2, recombine_sweeps=6, **options).sample_layer(problem, initial_states=zeros,
                                                                                     seed=6)
    rounds = mixed.info["recombination"]
    assert len(rounds) == 2 and 0 < rounds[1]["movable"] < rounds[0]["movable"] < 1
    assert np.all(mixed.energies <= plain.energies + 1e-12) and mixed.energies.sum() < plain.energies.sum()
    check_layer_energies(layer, problem, mixed)



@pytest.mark.parametrize("device", ["cpu", "torch-cpu"])
def test_a_second_cycle_only_adds_to_the_first(device):
    """A second population, reheated from every neuron's best after the first cycle's recombination, starts
    where the first cycle ended (same seed: the same first cycle): each neuron ends no higher, the layer lower,
    the rounds of both cycles recorded; deterministic."""
    if device == "torch-cpu":
        pytest.importorskip("torch")
    layer, problem = layer_problem(25, 200, 5, 2)
    zeros = np.zeros(problem.free.shape, np.uint8)
    # eight reads, as above: with four, cycle 0 ran one round on 1 of 10 seeds on numba's stream, 2 of 6 on
    # torch's, and on CUDA; with eight, two rounds on every seed tried
    options = {"num_reads": 8, "num_sweeps": 3, "recombine": 2, "recombine_sweeps": 6, "device": device}
    one = LayerSASampler(**options).sample_layer(problem, initial_states=zeros, seed=6)
    two, again = (LayerSASampler(cycles=2, **options).sample_layer(problem, initial_states=zeros, seed=6)
                  for _ in range(2))
    np.testing.assert_array_equal(two.assignments, again.assignments)
    assert one.info["cycles"] == 1 and two.info["cycles"] == 2
    labels = [r["cycle"] for r in two.info["recombination"]]
    assert labels[:2] == [0, 0] and labels[2:] and set(labels[2:]) == {1}  # a round stops once the reads agree
    assert two.info["recombination"][:2] == one.info["recombination"]
    assert np.all(two.energies <= one.energies * (1 + 1e-9) + 1e-12) and two.energies.sum() < one.energies.sum()
    check_layer_energies(layer, problem, two)

@pytest.mark.parametrize("level", PRESETS)
def test_every_preset_is_deterministic_and_never_worse_than_the_warm_start(level):
    """A wide layer (500 variables per neuron: one read, the preset's sweeps; fast only polishes)."""
    layer, problem = layer_problem(22, 499, 4, 2, samples=600)
    warm = problem.encode(gptq_restricted(problem))
    a, b = (LayerSASampler(effort=level).sample_layer(problem, initial_states=warm, seed=7) for _ in range(2))
    np.testing.assert_array_equal(a.assignments, b.assignments)
    one = LayerSASampler(effort=level, num_threads=1).sample_layer(problem, initial_states=warm, seed=7)
    np.testing.assert_array_equal(a.assignments, one.assignments)  # whatever the thread split
    _check_wide(layer, problem, a)
    warm_e = problem.qubo_energies(warm)
    assert np.all(a.energies <= warm_e + 1e-15) and a.energies.sum() < warm_e.sum()


def test_presets_order_the_work():
    params = LayerSASampler().defaults
    work = {level: np.prod(effort({**params, "effort": level}, 785)) for level in PRESETS}
    assert work["fast"] < work["default"] < work["thorough"]
    assert effort({**params, "effort": "fast"}, 3073) == (1, 0)  # wide layers: polish only
    assert effort({**params, "num_reads": 3, "num_sweeps": 5}, 785) == (3, 5)  # explicit values win


def test_small_layers_anneal_at_least_the_presets_layer_flips():
    """A layer of few neurons or inputs is offered the preset's layer flips (reads x sweeps x neurons x inputs),
    up to its sweep ceiling; layers of chain moves (the frontier's first layers) keep their sweeps; one BQM (not a
    layer) has no floor; a layer's solve and the per-neuron (relu-aware) path floor by the layer's neuron count."""
    from helpers import random_layer
    from qannealq.backends._layer_weighted import neuron_qubo
    from qannealq.grid import make_grid
    from qannealq.weighted import WeightedLayerStats, build_weighted_problem

    params = LayerSASampler().defaults
    reads, sweeps = effort(params, 247, 26)  # EMNIST's output layer, 247 live inputs: 2 reads
    assert reads * sweeps * 26 * 247 >= 2**20 > reads * (sweeps - 1) * 26 * 247
    assert effort(params, 247) == (2, 12)  # the same problems outside a layer: the size scaling alone
    assert effort(params, 599, 128) == (1, 4)  # MNIST's first layer; CIFAR-10's: a population
    assert effort(params, 599, 128, beamed=True) == (1, 1)  # ... from the default's beam: one sweep polishes it
    assert effort(params, 599, beamed=True) == (1, 4)  # one BQM: no beam's start
    assert effort({**params, "effort": "thorough"}, 599, 128, beamed=True) == effort(
        {**params, "effort": "thorough"}, 599, 128)  # thorough: its own sweeps
    assert effort(params, 3073, 512, beamed=True) == (6, 4)  # a population: its own reads and sweeps
    assert effort(params, 3073, 512) == (6, 4) and effort(params, 3073) == (1, 16)
    assert effort(params, 599, 2) == (1, 4)  # chain layers have no floor: they are not small
    assert effort({**params, "effort": "thorough"}, 247, 1)[1] == 4096  # the preset's ceiling
    assert effort({**params, "effort": "fast"}, 599, 2) == (1, 0)  # fast: no anneal on wide layers
    assert effort({**params, "num_sweeps": 5}, 247, 26) == (2, 5)  # explicit values win
    _, problem = layer_problem(3, 120, 3, 2)
    sample = LayerSASampler().sample_layer(problem, seed=0)
    live = int(problem.free.any(axis=0).sum())
    assert sample.info["reads_sweeps"] == effort(params, live, 3) != effort(params, live)
    layer = random_layer(np.random.default_rng(4), 30, 5)
    stats = WeightedLayerStats.from_arrays(layer.x, layer.y, np.where(layer.y > 0, 1.0, 0.0))
    weighted = build_weighted_problem(stats, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, 2))
    assert weighted.per_neuron and neuron_qubo(weighted, 0)[0].layer_neurons == 5


def test_a_layer_from_the_default_beam_anneals_one_sweep():
    """The default's start on a layer of chain moves is its beam, and one sweep polishes it (``beam_sweeps``):
    the same states as an explicit ``num_sweeps=1``; without the beam (``warm_start_beam=0``) the layer keeps the
    chain sweeps, the same states as an explicit ``num_sweeps=4``."""
    _, problem = layer_problem(7, 300, 3, 3)
    sampler = LayerSASampler()
    beamed = sampler.sample_layer(problem, seed=2)
    assert beamed.info["reads_sweeps"] == (1, 1)
    np.testing.assert_array_equal(beamed.assignments, sampler.sample_layer(problem, seed=2, num_sweeps=1).assignments)
    plain = sampler.sample_layer(problem, seed=2, warm_start_beam=0)
    assert plain.info["reads_sweeps"] == (1, 4)
    np.testing.assert_array_equal(plain.assignments, sampler.sample_layer(problem, seed=2, warm_start_beam=0,
                                                                          num_sweeps=4).assignments)
    assert not np.array_equal(plain.assignments, sampler.sample_layer(problem, seed=2, warm_start_beam=0,
                                                                      num_sweeps=1).assignments)
    from qannealq import quantize_layer  # the solve loop: a beam's start, or RTN's (no beam: the sampler is told)
    assert quantize_layer(problem, "qubo", sampler, "layer-sa", seed=2).info["reads_sweeps"] == (1, 1)
    rtn_start = quantize_layer(problem, "qubo", sampler, "layer-sa", seed=2, warm_start="rtn")
    assert rtn_start.info["reads_sweeps"] == (1, 4)


def test_the_search_keeps_time_for_the_products_that_follow_it():
    """Under a limit, a run's start that forms fields by a product keeps ``TAIL_PRODUCTS`` such products of the
    layer's rows from the search's time (``Clock.reserve``, scaled from the rows it formed to the layer's; the
    latest such estimate; none from fewer rows than ``TAIL_SAMPLE_ROWS``): the clock's time left is the limit less
    what was spent and that, and an anneal whose time left is all reserved stops at once (cut) though the limit
    itself has not passed; fields the caller gives keep nothing."""
    from qannealq.backends import _layer_run
    from qannealq.backends._layer_schedule import Clock

    _, problem = layer_problem(31, 300, 40, 3, samples=400)
    dense = DenseQubos.from_problem(problem)
    sampler = LayerSASampler()
    params = {**sampler.defaults, "num_threads": 1}
    warm = problem.encode(gptq_restricted(problem))
    run, _ = make_run(dense, params, Clock(60.0))
    given = run.start(warm)
    assert run.clock.reserve > 0.0  # fields formed by a product
    free = make_run(dense, params, Clock(60.0))[0]
    free.start(warm[:2], np.arange(2), fields=given.h[:2], energies=given.energy[:2])
    assert free.clock.reserve == 0.0
    clock = Clock(60.0)
    run, _ = make_run(dense, params, clock)
    times = []
    fields = _layer_run.up_fields

    def timed(*args):
        begun = time.perf_counter()
        out = fields(*args)
        times.append(time.perf_counter() - begun)
        return out

    with mock.patch.object(_layer_run, "up_fields", timed):
        run.start(warm[:3], np.arange(3))  # too few rows to tell (a product of a few runs far slower a row)
        assert clock.reserve == 0.0
        run.start(warm[:16], np.arange(16))
    assert clock.reserve >= _layer_run.TAIL_PRODUCTS * times[1] * problem.num_neurons / 16 * (1 - 1e-9)
    elapsed = clock.elapsed()  # before remaining(), whose own elapsed time is then the later: no race
    assert clock.remaining() <= 60.0 - elapsed - clock.reserve + 1e-9
    rows = run.start(warm)
    clock.keep(1e9)  # all of the limit reserved: the anneal has no time, though the limit is a minute away
    run.anneal(rows, seed=0)
    assert clock.cut and clock.elapsed() < 30.0


def test_rows_near_known_rows_take_their_fields_and_energies_from_them():
    """``_Run.start_near``: rows that differ from known rows (with fields) in at most ``NEAR_FIELDS_SHARE`` of the
    coordinates take their fields and energies from them, no product; the others take a product of those rows
    alone. Either way the fields and energies are those of :meth:`_Run.start` (to rounding), so a population's
    reads start where a product would put them."""
    from qannealq.backends import _layer_run

    _, problem = layer_problem(5, 300, 24, 3)
    dense = DenseQubos.from_problem(problem)
    run, _ = make_run(dense, {**LayerSASampler().defaults, "num_threads": 2})
    base = run.polish(problem.encode(gptq_restricted(problem)))
    rng = np.random.default_rng(3)
    states, m = base.v.copy(), base.v.shape[1]
    near = int(_layer_run.NEAR_FIELDS_SHARE * m)
    for r in range(18):  # rows 0-17 near (1 to `near` flips, the bound itself included), 18-20 far, 21-23 equal
        flips = rng.choice(np.flatnonzero(problem.free[r]), size=near if r == 0 else rng.integers(1, near))
        states[r, flips] ^= 1
    states[18:21] = rng.integers(0, 2, (3, m))
    products = []
    fields = _layer_run.up_fields

    def counted(mat, diag, lin, steps, v):
        products.append(v.shape[0])
        return fields(mat, diag, lin, steps, v)

    with mock.patch.object(_layer_run, "up_fields", counted):
        got = run.start_near(base, states)
    assert products == [3]  # the far rows alone
    want = run.start(states, base.owner)
    np.testing.assert_array_equal(got.v, want.v)
    np.testing.assert_array_equal(got.owner, base.owner)
    free = problem.free
    scale = np.abs(want.h[free]).max()
    np.testing.assert_allclose(got.h[free], want.h[free], rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(got.energy, want.energy, rtol=1e-10, atol=1e-12 * np.abs(want.energy).max())
    np.testing.assert_array_equal(got.h[21:], base.h[21:])  # unchanged rows: their base's fields
    assert not np.allclose(got.energy[:18], base.energy[:18])  # the flips moved them
    unknown = dataclasses.replace(base, h=None)  # no fields to start from: all by the product
    products.clear()
    with mock.patch.object(_layer_run, "up_fields", counted):
        run.start_near(unknown, states)
    assert products == [24]


def test_a_layers_rows_take_their_fields_from_its_own_product():
    """``layer-sa``'s run takes the fields and energies of one row per neuron from the layer's own product of their
    values with ``H`` and the errors it gives (``layer_fields``), not from a product of its own and ``lin``: the
    same fields and energies to rounding, and the problem then finds those rows' errors without another product.
    Rows that are not one per neuron in order keep the run's product."""
    from qannealq.backends import _layer_run, layer_sa

    _, problem = layer_problem(9, 300, 12, 3)
    dense, live = DenseQubos.from_problem(problem).live(problem.live_block)
    params = {**LayerSASampler().defaults, "num_threads": 1}
    plain, _ = make_run(dense, params)
    run, _ = make_run(dense, params, layer_fields=layer_sa._layer_fields(problem, dense, live))
    full = problem.encode(gptq_restricted(problem))
    full[:, live[::3]] ^= problem.free[:, live[::3]]  # not a state the problem has seen
    products = []
    fields = _layer_run.up_fields

    def counted(mat, diag, lin, steps, v):
        products.append(v.shape[0])
        return fields(mat, diag, lin, steps, v)

    v = np.ascontiguousarray(full[:, live])
    with mock.patch.object(_layer_run, "up_fields", counted):
        got = run.start(v)
        assert products == [] and run.product_seconds > 0.0
        run.start(v[:5], np.arange(5))
        run.start(v[::-1].copy(), np.arange(12)[::-1].copy())  # one per neuron, but not in order
        assert products == [5, 12]
    want = plain.start(v)
    np.testing.assert_allclose(got.h, want.h, rtol=0, atol=1e-11 * np.abs(want.h).max())
    np.testing.assert_allclose(got.energy, want.energy, rtol=1e-9, atol=1e-12 * np.abs(want.energy).max())
    with mock.patch.object(type(problem), "products", side_effect=AssertionError("a product")):
        np.testing.assert_array_equal(problem.errors(problem.decode_layer(full)[1]), got.energy)


def test_a_short_search_without_room_for_its_sweep_is_the_polish_alone():
    """Where one sweep follows the default's beam, a limit that leaves the search fewer than
    ``SHORT_SEARCH_PRODUCTS`` products of the layer's rows (the problem's timed product) makes it late: the polish
    alone, as ``late=True``, though the time left is more than ``LATE_SHARE`` of the time spent; with room for
    the products the sweep runs. Presets whose search is not that single sweep keep their own rules."""
    from qannealq.backends import layer_sa

    _, problem = layer_problem(7, 300, 3, 3)
    sampler = LayerSASampler()
    warm = problem.encode(gptq_restricted(problem))
    assert layer_sa._short_search(sampler.defaults, problem.num_coordinates)
    problem.errors(problem.decode_layer(warm)[1])  # the warm start's errors, as the solve loop asks: timed
    assert problem.product_seconds > 0.0
    polished = sampler.sample_layer(problem, initial_states=warm, seed=2, late=True)
    for seconds, late in ((1.0, True), (1e-9, False)):  # 1 s a product: 20 s wanted, 5 s left
        problem._product_timing[:] = [seconds]
        out = sampler.sample_layer(problem, initial_states=warm, seed=2, time_limit=5.0, time_spent=0.0)
        assert out.info["late"] is late and out.info["time_limited"] is late
        assert out.info["reads_sweeps"] == ((1, 0) if late else (1, 1))
        if late:
            np.testing.assert_array_equal(out.assignments, polished.assignments)
    problem._product_timing[:] = [1.0]
    assert not layer_sa._short_search({**sampler.defaults, "effort": "thorough"}, problem.num_coordinates)
    assert not LayerSASampler(effort="thorough").sample_layer(problem, initial_states=warm, seed=2, time_limit=5.0,
                                                              time_spent=0.0).info["late"]


def test_a_problem_times_its_products_of_every_row():
    """``product_seconds``: 0 before any product; the fastest product of all the rows after (a product of fewer
    rows is not one); not carried by a pickled copy."""
    import pickle

    _, problem = layer_problem(3, 40, 4, 3)
    assert problem.product_seconds == 0.0
    problem.products(problem.weights[:2])
    assert problem.product_seconds == 0.0
    problem.errors(problem.weights)
    first = problem.product_seconds
    assert first > 0.0
    problem._product_timing[:] = [first / 1e6]
    problem.products(problem.weights)
    assert problem.product_seconds == first / 1e6  # the fastest is kept
    assert pickle.loads(pickle.dumps(problem)).product_seconds == 0.0


def test_an_anneal_without_time_for_its_set_up_runs_nothing():
    """Under a limit, an anneal whose time left before the reserve would not hold its set-up (``ANNEAL_SETUP``
    products of the layer's rows per read, at the latest timed product) returns no rows and marks the run cut,
    whatever the limit itself leaves; with the time, the same anneal returns the effort's reads."""
    from qannealq.backends import _layer_run
    from qannealq.backends._layer_schedule import Clock

    _, problem = layer_problem(38, 300, 12, 3, samples=400)
    dense = DenseQubos.from_problem(problem)
    params = {**LayerSASampler().defaults, "num_threads": 1, "num_reads": 3, "num_sweeps": 4}
    warm = problem.encode(gptq_restricted(problem))
    out = {}
    for product in (0.0, 10.0):  # 0: nothing timed; 10 s a product: 3 reads' set-up 7.5 s, the limit 5 s away
        run, _ = make_run(dense, params, Clock(5.0))
        rows = run.start(warm)
        run.product_seconds, run.clock.reserve = product, 0.0
        assert 3 * _layer_run.ANNEAL_SETUP * 10.0 > 5.0
        with run:
            out[product] = run.anneal(rows, seed=2)
        assert run.clock.cut is (product > 0)
    assert out[0.0].owner.size == 3 * problem.num_neurons and out[10.0].owner.size == 0


def test_an_anneal_from_given_fields_keeps_time_for_what_follows_it():
    """Where no product was timed before an anneal under a limit (its start's fields given), the anneal times one
    of ``TAIL_SAMPLE_ROWS`` rows (``TAIL_SAMPLE_SHARE`` of the layer's where more) and keeps ``TAIL_SAMPLED``
    products of the layer's rows at that rate; an anneal without a limit times nothing, and one whose limit leaves
    room returns the same states as without one."""
    from qannealq.backends import _layer_run
    from qannealq.backends._layer_schedule import Clock

    _, problem = layer_problem(37, 300, 24, 3, samples=400)
    dense = DenseQubos.from_problem(problem)
    params = {**LayerSASampler().defaults, "num_threads": 1, "chain": 4, "num_sweeps": 4}
    warm = problem.encode(gptq_restricted(problem))
    given = make_run(dense, params)[0].start(warm)
    products = []
    dot = np.dot

    def timed(a, b):
        begun = time.perf_counter()
        result = dot(a, b)
        products.append((a.shape[0], time.perf_counter() - begun))
        return result

    out = {}
    with mock.patch.object(_layer_run.np, "dot", timed):
        for limit in (None, 600.0):
            products.clear()
            run, _ = make_run(dense, params, Clock(limit))
            with run:
                out[limit] = run.anneal(run.start(warm, fields=given.h, energies=given.energy), seed=5)
            assert [k for k, _ in products] == ([] if limit is None else [_layer_run.TAIL_SAMPLE_ROWS])
            assert not run.clock.cut
        products.clear()
        run, _ = make_run(dense, params, Clock(600.0))
        rows = run.start(warm, fields=given.h, energies=given.energy)
        assert run.clock.reserve == 0.0  # nothing timed yet
        run._keep_tail(rows)
        run._keep_tail(rows)  # a reserve kept: no second product
    assert len(products) == 1 and products[0][0] == _layer_run.TAIL_SAMPLE_ROWS
    expected = _layer_run.TAIL_SAMPLED * products[0][1] * problem.num_neurons / _layer_run.TAIL_SAMPLE_ROWS
    assert run.clock.reserve >= expected * (1 - 1e-9)
    np.testing.assert_array_equal(out[None].v, out[600.0].v)
    np.testing.assert_array_equal(out[None].energy, out[600.0].energy)
    _, many = layer_problem(38, 40, 200, 3)  # more neurons: an eighth of them (a product of a few runs slower a row)
    dense = DenseQubos.from_problem(many)
    warm = many.encode(gptq_restricted(many))
    given = make_run(dense, params)[0].start(warm)
    run, _ = make_run(dense, params, Clock(600.0))
    rows = run.start(warm, fields=given.h, energies=given.energy)
    products.clear()
    with mock.patch.object(_layer_run.np, "dot", timed):
        run._keep_tail(rows)
    assert [k for k, _ in products] == [int(_layer_run.TAIL_SAMPLE_SHARE * 200)] == [25]


def _limited_thorough(problem, warm, sweeps: int, limit: float):
    """``thorough`` with ``sweeps`` (minutes unlimited) under ``limit`` seconds: it stopped near the limit. The
    margin is for a 2-core machine shared by many processes (~0.3 s idle); the kernels' first load is not timed."""
    solver = LayerSASampler(effort="thorough", num_sweeps=sweeps)
    solver.sample_layer(layer_problem(1, 8, 2, 2)[1], seed=0, num_sweeps=2)
    t0 = time.perf_counter()
    sample = solver.sample_layer(problem, initial_states=warm, seed=1, time_limit=limit)
    elapsed = time.perf_counter() - t0
    assert sample.info["time_limited"] is True
    assert elapsed < limit + 3.0, f"took {elapsed:.2f} s for a {limit} s limit"
    return sample


def test_time_limit_stops_a_long_run_cleanly():
    """A wide layer whose thorough run takes far longer than the limit: stops near it, states valid."""
    layer, problem = layer_problem(23, 500, 24, 4, samples=600)
    warm = problem.encode(gptq_restricted(problem))
    sample = _limited_thorough(problem, warm, 100_000, limit := 1.0)
    _check_wide(layer, problem, sample)
    warm_e = problem.qubo_energies(warm)
    assert np.all(sample.energies <= warm_e + 1e-15)
    # the schedule was taken in strides to cool before the limit: the anneal beat the polished start
    assert sample.energies.sum() < min(sample.info["polished_start_energies"]) * (1 - 1e-6)
    assert sample.info["trace"]["seconds"][-2] < limit + 3.0  # the anneal's last point


def test_time_limit_bounds_a_layer_of_per_neuron_hessians_and_traces_it():
    """A relu-aware layer (one ``H_i`` per neuron) ran each neuron's search with no clock: ``time_limit`` was
    ignored (a limit of 0.5 s took 2.6-4.4 s under load) and ``info`` had no trace and no ``time_limited``."""
    from qannealq.weighted import WeightedLayerStats, build_weighted_problem

    from qannealq import make_grid

    layer = random_layer(np.random.default_rng(40), 160, 12, samples=400)
    stats = WeightedLayerStats.from_arrays(layer.x, layer.y, np.where(layer.y > 0, 1.0, 0.1), True)
    problem = build_weighted_problem(stats, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, 3))
    assert problem.per_neuron
    warm = problem.encode(gptq_restricted(problem))
    sample = _limited_thorough(problem, warm, 200_000, 1.0)
    assert sample.info["per_neuron"]
    assert np.all(sample.energies <= problem.qubo_energies(warm) + 1e-15)
    seconds, energy = (np.array(sample.info["trace"][k]) for k in ("seconds", "energy"))
    # the warm start, each neuron, each neuron run again in the time the others left, the final energies
    assert seconds.size == problem.num_neurons + 2 + sample.info["retried"]
    assert np.all(np.diff(seconds) >= 0) and np.all(np.diff(energy) <= 0)
    assert energy[0] == pytest.approx(problem.qubo_energies(warm).sum(), rel=1e-12)
    assert energy[-1] == sample.energies.sum()
    free = LayerSASampler(effort="thorough").sample_layer(problem, initial_states=warm, seed=1, num_sweeps=64)
    assert free.info["time_limited"] is False and len(free.info["trace"]["energy"]) == problem.num_neurons + 2


def test_a_layer_of_per_neuron_hessians_reports_whether_it_descended():
    """``info["descended"]`` (README: the tight path's greedy descent ran) was missing on a relu-aware layer (one
    ``H_i`` per neuron): ``sample.info["descended"]`` raised KeyError, also where each neuron's search, late on
    1100 inputs (a population's width), was the polish and the descent by chains."""
    from qannealq.weighted import WeightedLayerStats, build_weighted_problem

    from qannealq import make_grid

    for inputs, late in ((1100, True), (160, False)):
        layer = random_layer(np.random.default_rng(41), inputs, 2, samples=600)
        stats = WeightedLayerStats.from_arrays(layer.x, layer.y, np.where(layer.y > 0, 1.0, 0.1), True)
        problem = build_weighted_problem(stats, layer.weight, layer.bias, make_grid(layer.weight, layer.bias, 3))
        sample = LayerSASampler().sample_layer(problem, seed=3, late=late, warm_start_beam=0)
        assert sample.info["per_neuron"] and sample.info["late"] is late
        assert sample.info["descended"] is late


def test_the_trace_ends_at_the_returned_energy_and_never_rises():
    """A run the limit cut keeps the energies its kernels tracked (float32 couplings on chains); the returned
    states' float64 energy could lie above them, the trace's last point rising by 1e-10 relative."""
    from qannealq.backends._layer_schedule import Clock

    clock = Clock()
    for energy in (10.0, 5.0, 4.9999999):
        clock.record(energy)
    clock.finish(5.0)
    assert [e for _, e in clock.trace] == [10.0, 5.0, 5.0, 5.0]
    assert time_to_target({"seconds": [t for t, _ in clock.trace], "energy": [e for _, e in clock.trace]},
                          4.99999995) is None


def test_the_trace_never_rises_within_a_population():
    """The population's anneal records the energies its kernel tracked (float32 couplings on chains), its
    recombination energies read again a little higher: on this 1100-input layer the default's trace rose by
    2.7e-8 (5e-5 relative) between the two, so a target between them read as reached before it was."""
    from qannealq.backends._layer_schedule import Clock

    clock = Clock()
    for energy in (10.0, 5.0, 4.9999, 5.0001, 4.0):
        clock.record(energy)
    assert [e for _, e in clock.trace] == [10.0, 5.0001, 5.0001, 5.0001, 4.0]
    _, problem = smooth_layer(6, 1100, 8, 4)
    sample = LayerSASampler().sample_layer(problem, seed=3)
    assert sample.info["cycles"] == 2 and sample.info["recombination"]  # the population's path
    seconds, energy = (np.array(sample.info["trace"][k]) for k in ("seconds", "energy"))
    assert np.all(np.diff(seconds) >= 0) and np.all(np.diff(energy) <= 0)
    assert energy[-1] == sample.energies.sum()


def test_the_solve_loops_trace_counts_the_warm_start_with_or_without_a_limit(no_warm_up):
    """``quantize_layer`` passed ``time_spent`` (the warm start's seconds) only under a time limit: without one
    the trace began after the beam. On a 600-input layer the same states read a time to within 1 % of their
    energy of 0.067 s unlimited and 0.270 s under a limit of 600 s that changed nothing (the layer: 0.26 s)."""
    from qannealq import quantize_layer

    _, problem = smooth_layer(7, 600, 8, 4)
    sampler = LayerSASampler()
    spent = []
    original = sampler.sample_layer

    def spy(*args, **kwargs):
        spent.append(kwargs.get("time_spent"))
        return original(*args, **kwargs)
    with mock.patch.object(sampler, "sample_layer", spy):
        free, limited = (quantize_layer(problem, "qubo", sampler, "layer-sa", seed=2, time_limit=limit)
                         for limit in (None, 600))
    np.testing.assert_array_equal(free.integers, limited.integers)
    assert all(s is not None and s > 0 for s in spent), spent
    for result, before in zip((free, limited), spent):
        seconds = result.info["trace"]["seconds"]
        assert before <= seconds[0] <= seconds[-1] <= result.seconds
    # a sampler without time_spent (the per-neuron sa) is not given it
    assert quantize_layer(layer_problem(1, 8, 2, 2)[1], "qubo", get_sampler("sa"), "sa", seed=0).errors.size == 2


def test_an_infinite_time_limit_is_refused_naming_it():
    """``time_limit=inf`` (``--sampler-option time_limit=1e999``) passed the check and failed in the run with
    an OverflowError, after training; a numpy float32 limit was refused as not a number."""
    _, problem = layer_problem(24, 30, 3, 3)
    for bad in (float("inf"), 1e999, float("nan"), 0, -1.0, True, "1"):
        with pytest.raises(InvalidArgumentError, match=r"time_limit=.* must be a finite number of seconds > 0"):
            LayerSASampler().sample_layer(problem, seed=0, time_limit=bad)
    assert LayerSASampler().sample_layer(problem, seed=0, time_limit=np.float32(600)).info["time_limited"] is False


def test_an_infinite_temperature_is_refused_naming_it():
    """``hot_temperature=inf`` (``--sampler-option hot_temperature=1e999``) passed the check and ended a wide
    layer's anneal in a ZeroDivisionError from the kernel; ``cold_temperature=inf`` ran an anneal that ends at
    infinite temperature. Both refused before any work, the check each command runs before training."""
    _, problem = layer_problem(24, 150, 8, 3)  # wide: the schedule scales with hot_temperature
    for name in ("hot_temperature", "cold_temperature"):
        for bad in (float("inf"), float("nan"), 0.0, -1.0, True, "1"):
            with pytest.raises(InvalidArgumentError, match=rf"{name}=.* must be a finite number > 0"):
                LayerSASampler().sample_layer(problem, seed=0, **{name: bad})
            with pytest.raises(InvalidArgumentError, match=name):
                check_parameters("layer-sa", LayerSASampler(), {name: bad})
    sample = LayerSASampler(hot_temperature=np.float32(0.1)).sample_layer(problem, seed=0)
    assert np.all(np.isfinite(sample.energies))


def test_rtn_start_takes_true_false_or_none_only():
    """``rtn_start`` was never checked: ``--sampler-option rtn_start=false`` (the string "false", not a Python
    literal) or ``rtn_start="no"`` read as true and polished an RTN start that ``fast`` leaves out."""
    _, problem = layer_problem(24, 40, 4, 3)
    for bad in ("false", "no", 0, 1, float("nan"), [1]):
        with pytest.raises(InvalidArgumentError, match=r"rtn_start=.* must be True, False or None"):
            LayerSASampler(effort="fast").sample_layer(problem, seed=0, rtn_start=bad)
        with pytest.raises(InvalidArgumentError, match="rtn_start"):
            check_parameters("layer-sa", LayerSASampler(), {"rtn_start": bad})
    for given, starts in ((None, 1), (False, 1), (True, 2), (np.True_, 2)):
        sample = LayerSASampler(effort="fast", rtn_start=given).sample_layer(problem, seed=0)
        assert len(sample.info["polished_start_energies"]) == starts


def test_a_limit_beyond_what_a_timer_can_wait_runs_without_a_watchdog(monkeypatch):
    """A finite ``time_limit`` of 1e10 s (``--time-limit 1e10``) is legal, but the kernel's watchdog timer cannot
    wait that long: its thread died in an OverflowError, printing a traceback on every layer."""
    import threading

    died = []
    monkeypatch.setattr(threading, "excepthook", died.append)
    _, problem = layer_problem(24, 40, 4, 3)
    solver = LayerSASampler(num_sweeps=8)
    free = solver.sample_layer(problem, seed=1)
    for limit in (1e10, 1e12, threading.TIMEOUT_MAX):
        limited = solver.sample_layer(problem, seed=1, time_limit=limit)
        np.testing.assert_array_equal(limited.assignments, free.assignments)
        assert limited.info["time_limited"] is False
    assert not died, [str(d.exc_value) for d in died]


def test_a_generous_time_limit_changes_nothing():
    _, problem = layer_problem(24, 100, 6, 3)
    solver = LayerSASampler(num_sweeps=64)
    free, limited = solver.sample_layer(problem, seed=3), solver.sample_layer(problem, seed=3, time_limit=600)
    np.testing.assert_array_equal(free.assignments, limited.assignments)
    assert limited.info["time_limited"] is False


def test_a_tiny_time_limit_still_returns_the_warm_start_or_better():
    _, problem = layer_problem(25, 200, 4, 2)
    warm = problem.encode(gptq_restricted(problem))
    sample = LayerSASampler(effort="thorough").sample_layer(problem, initial_states=warm, seed=0, time_limit=1e-6)
    assert sample.info["time_limited"] is True
    assert np.all(sample.energies <= problem.errors(problem.decode_layer(warm)[1]))  # the same measure: exact


def test_trace_records_the_energy_over_time():
    _, problem = layer_problem(26, 150, 8, 4)
    warm = problem.encode(gptq_restricted(problem))
    sample = LayerSASampler(num_sweeps=64).sample_layer(problem, initial_states=warm, seed=2)
    seconds, energy = (np.array(sample.info["trace"][k]) for k in ("seconds", "energy"))
    assert seconds.size == energy.size >= 18  # warm, polished starts, 16 chunks, final polish, final
    assert np.all(np.diff(seconds) >= 0)
    assert np.all(np.diff(energy) <= 1e-12 * abs(energy[0]))  # the best so far never rises
    assert energy[0] == pytest.approx(problem.qubo_energies(warm).sum(), rel=1e-12)
    assert energy[-1] == pytest.approx(sample.energies.sum(), rel=1e-12)
    trace = sample.info["trace"]
    assert time_to_target(trace, energy[0]) == seconds[0] and time_to_target(trace, energy[-1] - 1.0) is None
    middle = energy[len(energy) // 2]
    assert time_to_target(trace, middle) == seconds[np.argmax(energy <= middle)]


@pytest.mark.parametrize("chain", [0, 4])
def test_schedule_in_chunks_equals_one_call(chain):
    """The anneal is cut into chunks (for the trace and the time limit): the cut must not change a row; the
    energies the kernel tracks (pair flips or chain moves) equal those recomputed from the states.

    Chain moves read the float32 copy of ``M``: from a start ``u0 = d ∘ v0`` (fields exact in float64) the
    kernel tracks ``E(v) − Σ_{j≠l} (M − M32)_jl w_j w_l`` with ``w = d ∘ (v − v0)``, to float64 accuracy."""
    _, problem = layer_problem(27, 80, 5, 3)
    dense = DenseQubos.from_problem(problem)
    params = {**LayerSASampler().defaults, "num_reads": 2, "num_sweeps": 20, "chain": chain}
    run, _ = make_run(dense, params)
    mat, moves = ((run.chain_mat, (*run.chains, chain)) if chain
                   else (dense.mat, (run.partners, run.couplings, *_NO_HOPS, 0)))
    assert mat.dtype == (np.float32 if chain else np.float64)
    polished = run.polish(problem.encode(gptq_restricted(problem)))
    results = []
    for cuts in ([0, 20], [0, 3, 11, 12, 20]):
        start, hot, cold, sweeps = anneal_plan(dense, params, polished)
        v0 = start.v.copy()
        best_e, best_v, seeds = start.energy.copy(), start.v.copy(), _row_seeds(5, start.owner.size)
        for a, b in zip(cuts, cuts[1:]):
            anneal_block(mat, dense.steps, dense.free, *moves, run.indptr, run.indices,
                         start.owner, start.v, start.h, start.energy, best_e, best_v, run.tol[start.owner], hot,
                         cold, sweeps, a, b - a, 1, seeds, np.zeros(1, np.int64), np.arange(start.owner.size))
        results.append((best_v, best_e))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    best_v, best_e = results[0]  # the tracked energies agree with energies recomputed from the states
    assert np.any(best_v != v0)  # the anneal moved
    w = dense.steps[start.owner] * (best_v.astype(float) - v0)
    gap = dense.mat - mat.astype(np.float64)
    np.fill_diagonal(gap, 0.0)
    assert np.any(gap != 0) == bool(chain)
    expected = dense.energies(best_v, start.owner) - np.einsum("rj,jl,rl->r", w, gap, w)
    np.testing.assert_allclose(best_e, expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(polished.energy, dense.energies(polished.v), rtol=1e-9, atol=1e-12)


def test_wide_layers_anneal_a_population_and_recombine_it_deterministically():
    """From :data:`POPULATION_INPUTS` inputs the default anneals a population of cold reads and recombines it,
    twice (cycles and rounds recorded in ``info``); the guarantees hold: deterministic for a seed whatever the
    threads, never worse than the warm start, valid states, energies exact."""
    layer, problem = smooth_layer(23, POPULATION_INPUTS, 3, 3)  # 1025 coordinates, 400 samples: H singular
    warm = problem.encode(gptq_restricted(problem))
    sampler = LayerSASampler()
    assert sampler.warm_start_beam(problem.num_coordinates) == 768
    assert sampler.warm_start_growth(problem.num_coordinates) == 8.0  # widening from 96
    a, b = (sampler.sample_layer(problem, initial_states=warm, seed=5) for _ in range(2))
    one = sampler.sample_layer(problem, initial_states=warm, seed=5, num_threads=1)
    for other in (b, one):
        np.testing.assert_array_equal(a.assignments, other.assignments)
    assert a.info["reads_sweeps"] == (6, 4) and a.info["cycles"] == 2
    rounds = a.info["recombination"]
    assert [r["cycle"] for r in rounds] == [0, 1] and all(0 < r["movable"] < 1 for r in rounds)
    assert rounds[1]["energy"] <= rounds[0]["energy"]
    _check_wide(layer, problem, a)
    warm_e = problem.qubo_energies(warm)
    assert np.all(a.energies <= warm_e + 1e-15) and a.energies.sum() < warm_e.sum()
    # the rounds report the kernel's tracked energies, of the float32 couplings the chains read (within about 1e-5
    # relative of float64 here); the result's are float64
    assert a.energies.sum() <= rounds[-1]["energy"] * (1 + 1e-4)
    plain = sampler.sample_layer(problem, initial_states=warm, seed=5, recombine=0)
    assert plain.info["recombination"] == [] and plain.info["reads_sweeps"] == (6, 4)
    assert plain.info["cycles"] == 2  # two populations, each from the best so far, without recombination


def test_a_populations_reads_start_from_the_beams_survivors():
    """Where a population follows the beam (1024 inputs or more), ``layer-sa`` asks for one start per read
    (``warm_start_paths``: the population's reads; 1 on narrower layers, with ``fast`` or without a beam) and
    takes ``initial_states`` ``(n, k, m)``: the warm start, then the beam's other survivors, one read from each.
    The result differs from reads all from the warm start (copies of it count as none) and keeps the guarantees
    (deterministic, never worse than the warm start, energies exact); the sampler alone and the solve loop pass
    the same starts; a bad shape is refused."""
    from qannealq import quantize_layer
    from qannealq.baselines import warm_start_integers

    layer, problem = smooth_layer(23, POPULATION_INPUTS, 3, 3)
    sampler, m = LayerSASampler(), problem.num_coordinates
    assert sampler.warm_start_paths(m) == 6 and sampler.warm_start_paths(785) == 1
    assert sampler.warm_start_paths(m, effort="thorough") == 8 and sampler.warm_start_paths(m, num_reads=3) == 3
    assert sampler.warm_start_paths(m, effort="fast") == 1 and sampler.warm_start_paths(m, warm_start_beam=0) == 1
    assert sampler.warm_start_paths(m, warm_start_paths=2) == 2
    assert sampler.warm_start_paths(785, warm_start_paths=2) == 1  # no population there
    for bad in (0, 1.5, True):
        with pytest.raises(InvalidArgumentError, match="warm_start_paths"):
            LayerSASampler(warm_start_paths=bad)
    k = sampler.warm_start_paths(m)
    ints = warm_start_integers(problem, beam=sampler.warm_start_beam(m), paths=k, growth=sampler.warm_start_growth(m))
    states = np.stack([problem.encode(ints[:, t]) for t in range(k)], axis=1)
    a, b = (sampler.sample_layer(problem, initial_states=states, seed=5) for _ in range(2))
    np.testing.assert_array_equal(a.assignments, b.assignments)
    same = sampler.sample_layer(problem, initial_states=states[:, 0], seed=5)
    assert not np.array_equal(a.assignments, same.assignments)
    copies = sampler.sample_layer(problem, initial_states=np.repeat(states[:, :1], k, axis=1), seed=5)
    np.testing.assert_array_equal(copies.assignments, same.assignments)  # copies: reads from the polished start
    _check_wide(layer, problem, a)
    assert np.all(a.energies <= problem.qubo_energies(states[:, 0]) + 1e-15)
    np.testing.assert_array_equal(sampler.sample_layer(problem, seed=5).assignments, a.assignments)
    looped = quantize_layer(problem, "qubo", sampler, "layer-sa", seed=5)
    np.testing.assert_array_equal(problem.encode(looped.integers), a.assignments)
    for bad in (states[:, :, :-1], states[:1], 2 * states, states[:, :0]):
        with pytest.raises(InvalidArgumentError, match="initial_states"):
            sampler.sample_layer(problem, initial_states=bad, seed=5)


def test_recombination_rule_and_overrides():
    """Rounds only where the preset's population applies (wide layers of chain moves) or when asked, and never
    with a single read; the population's reads all reheat cold."""
    params = LayerSASampler().defaults
    assert recombination(params, 3073, 4) == (1, 8)
    assert recombination(params, 599, 1) == (0, 8) and recombination(params, 599, 4) == (0, 8)  # MNIST's: none
    assert recombination({**params, "recombine": 3}, 599, 4) == (3, 8)
    assert recombination({**params, "recombine": 3, "recombine_sweeps": 5}, 599, 4) == (3, 5)
    assert recombination({**params, "recombine": 3}, 599, 1) == (0, 8)  # nothing to recombine
    assert recombination({**params, "effort": "fast"}, 3073, 6) == (0, 8)
    assert recombination({**params, "chain": 0}, 3073, 6) == (0, 8)  # pair flips: no population
    assert effort({**params, "effort": "fast"}, 3073, 512)[0] == 1
    # the threshold counts the layer's coordinates, dead ones included, as the beam's width does: 900 live of 1101
    assert effort(params, 900, 8, inputs=1101) == (6, 4) and recombination(params, 900, 6, inputs=1101) == (1, 8)
    assert effort(params, 900, 8)[0] == 1 and recombination(params, 900, 6) == (0, 8)
    assert LayerSASampler().warm_start_beam(1101) == 768
    assert cycles(params, 3073) == EFFORTS["default"].population.cycles and cycles(params, 599) == 1
    assert cycles({**params, "cycles": 3}, 599) == 3 and cycles({**params, "effort": "fast"}, 3073) == 1
    _, problem = layer_problem(26, 40, 2, 3)
    dense, _ = DenseQubos.from_problem(problem).live()
    assert dense.layer_inputs == problem.num_coordinates
    np.testing.assert_array_equal(hot_ladder(params, 4, flat=True), np.full(4, params["hot_acceptance"]))
    assert hot_ladder(params, 4)[-1] > params["hot_acceptance"]
    for bad in (-1, 1.5, True):
        with pytest.raises(InvalidArgumentError, match="recombine"):
            LayerSASampler(recombine=bad)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(InvalidArgumentError, match="cycles"):
            LayerSASampler(cycles=bad)


def test_the_warm_starts_beam_widens_where_a_population_follows(no_warm_up):
    """``warm_start_growth``: 8 by default where a population follows (a beam widening from 96 to 768), else 1
    (MNIST-sized layers, ``fast``, ``thorough``'s constant 1536); the option overrides it, bad values are refused
    by name; the solve loop and the sampler's own warm start both run the beam of that shape (the same start as
    ``warm_start_integers`` with that growth, and not the constant beam's)."""
    from qannealq.baselines import warm_start_integers
    from qannealq.contract import warm_start_growth

    sampler = LayerSASampler()
    assert sampler.warm_start_growth(3073) == 8.0 and sampler.warm_start_growth(785) == 1.0
    assert sampler.warm_start_growth(3073, effort="thorough") == 1.0
    assert sampler.warm_start_growth(3073, effort="fast") == 1.0
    assert sampler.warm_start_growth(785, warm_start_growth=2) == 2.0
    assert warm_start_growth(sampler, {"warm_start_growth": 3.0}, 785) == 3.0
    assert warm_start_growth(object(), {}, 3073) == 1.0  # a sampler that does not say: a constant width
    for bad in (0, -1.0, float("inf"), True, "8"):
        with pytest.raises(InvalidArgumentError, match="warm_start_growth"):
            LayerSASampler(warm_start_growth=bad)
    _, problem = smooth_layer(24, POPULATION_INPUTS, 2, 3)
    m = problem.num_coordinates
    for bad in (0, float("nan"), True):
        with pytest.raises(InvalidArgumentError, match="growth"):
            warm_start_integers(problem, beam=8, growth=bad)
    small = LayerSASampler(warm_start_beam=16, num_reads=2, num_sweeps=1, cycles=1, recombine=0)
    widening = warm_start_integers(problem, beam=16, paths=2, growth=8.0)
    assert not np.array_equal(widening, warm_start_integers(problem, beam=16, paths=2))
    from qannealq import quantize_layer

    seen = []
    for where, run in (("qannealq.solve", lambda: quantize_layer(problem, "qubo", small, "layer-sa", seed=2)),
                       ("qannealq.backends.layer_sa", lambda: small.sample_layer(problem, seed=2))):
        with mock.patch(f"{where}.warm_start_integers", wraps=warm_start_integers) as spy:
            run()
        seen += [call.kwargs.get("growth") for call in spy.call_args_list]
    assert seen == [8.0, 8.0]


@pytest.mark.parametrize("device", ["cpu", "torch-cpu"])
def test_a_restricted_anneal_moves_only_the_movable_coordinates(device):
    """``anneal(..., movable=...)`` flips nothing outside the mask (values of 1 there stay 1), and its energies
    are the full problems' (``exact``; the tracked ones agree closely)."""
    _, problem = smooth_layer(24, 300, 4, 3)
    dense = DenseQubos.from_problem(problem, floors=True)
    params = {**LayerSASampler().defaults, "num_reads": 3, "num_sweeps": 6, "device": device}
    run, _ = make_run(dense, params)
    start = run.start(problem.encode(gptq_restricted(problem)))
    assert np.any(start.v[dense.free] == 1)
    movable = dense.free & (np.random.default_rng(0).random(dense.free.shape) < 0.3)
    with run:
        moved = run.anneal(start, 11, movable=movable, reads=2, sweeps=12)
        tracked = run.anneal(start, 11, movable=movable, reads=2, sweeps=12, exact=False)
    assert moved.owner.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    fixed = ~movable[moved.owner]
    np.testing.assert_array_equal(moved.v[fixed], start.v[moved.owner][fixed])
    assert np.any(moved.v[~fixed] != start.v[moved.owner][~fixed])
    np.testing.assert_allclose(moved.energy, dense.energies(moved.v, moved.owner), rtol=1e-9)
    np.testing.assert_allclose(tracked.energy, dense.energies(tracked.v, tracked.owner), rtol=1e-4)


def test_former_kernel_entry_point_still_works():
    """``anneal_rows`` (the former signature, kept for other callers): valid states, never worse than the start."""
    _, problem = layer_problem(28, 60, 4, 2)
    dense = DenseQubos.from_problem(problem)
    run, _ = make_run(dense, {**LayerSASampler().defaults})
    v = problem.encode(gptq_restricted(problem))
    u = dense.steps * v
    g = u @ dense.mat
    owner = np.arange(4)
    betas = np.tile(np.geomspace(1.0, 100.0, 10) / np.abs(dense.lin).mean(), (4, 1))
    best = np.zeros_like(v)
    anneal_rows(dense.mat, dense.diag, dense.lin, dense.steps, dense.free, run.partners, run.couplings, run.indptr,
                run.indices, owner, v.copy(), u, g, betas, run.tol, _row_seeds(0, 4), 50, best, 0, 4)
    assert np.all(best[~problem.free] == 0)
    assert np.all(dense.energies(best) <= dense.energies(v) + 1e-12)


def test_options_checked_and_listed_for_the_cli():
    assert {"effort", "time_limit"} <= set(LayerSASampler().parameters)
    check_parameters("layer-sa", LayerSASampler(), {"effort": "fast", "time_limit": 2.5})  # what the CLI checks
    with pytest.raises(InvalidArgumentError, match="effort"):
        LayerSASampler(effort="slow")
    for bad in (0, -1, "soon", True):
        with pytest.raises(InvalidArgumentError, match="time_limit"):
            LayerSASampler(time_limit=bad)


def test_single_bqm_path_takes_effort_and_time_limit():
    _, problem = layer_problem(29, 16, 2, 2)
    bqm = problem.neuron_bqm(0)
    best = get_sampler("exact").sample(bqm).first.energy
    for level in PRESETS:
        ss = LayerSASampler(effort=level).sample(bqm, seed=1, time_limit=60)
        assert ss.first.energy == pytest.approx(best, rel=1e-9, abs=1e-12)
        assert ss.info["time_limited"] is False


def test_continuous_floor_is_the_least_squares_error():
    """The floor that scales wide layers' temperatures: the real-valued optimum, recomputed from the data."""
    layer, problem = layer_problem(30, 40, 5, 3, samples=200)
    floor = continuous_floor(problem)
    x = layer.x_aug
    live = np.any(x != 0, axis=0)
    coef, *_ = np.linalg.lstsq(x[:, live], layer.y, rcond=None)
    direct = np.mean((layer.y - x[:, live] @ coef) ** 2, axis=0)
    np.testing.assert_allclose(floor, direct, rtol=1e-3)  # c − gᵀH⁻¹g cancels digits; a scale needs few
    rtn_e = problem.qubo_energies(problem.encode(problem.restrict(problem.grid.nearest(problem.weights,
                                                                                        problem.steps))))
    assert np.all(floor <= rtn_e)


def test_continuous_floor_of_float_calibration_is_the_float_weights_error():
    """Where the targets are the float weights' own outputs (float calibration), every neuron's error at its float
    weights is at most ``FLOAT_FLOOR`` of its targets' mean square: those errors, clipped at 0, are the floors
    (the least error lies between 0 and them), and no factorization of ``H`` runs. Where the targets carry an
    error (noise here, earlier quantized layers in sequential calibration), the solve runs, as above."""
    from scipy import linalg

    layer = random_layer(np.random.default_rng(30), 40, 5, samples=200, noise=0.0)
    problem = layer.problem(3)
    own = problem.neuron_errors(np.where(problem.dead, 0.0, problem.weights), np.arange(5))
    assert np.all(own <= _layer_dense.FLOAT_FLOOR * problem.stats.target_sq)
    with mock.patch.object(linalg, "cho_factor", side_effect=AssertionError("no factorization")):
        floor = continuous_floor(problem)
    np.testing.assert_array_equal(floor, np.maximum(own, 0.0))
    assert np.all(floor <= 1e-9 * problem.stats.target_sq)
    _, noisy = layer_problem(30, 40, 5, 3, samples=200)
    with mock.patch.object(linalg, "cho_factor", side_effect=AssertionError("factorized")):
        with pytest.raises(AssertionError, match="factorized"):
            continuous_floor(noisy)


def test_the_beam_and_the_floors_share_one_product_of_the_float_weights(monkeypatch):
    """The warm start's beam (its gradient ``H w − c``) and the anneal's floors (the float weights' own errors)
    read one product of the float weights, :attr:`LayerProblem.weight_products`, formed once per problem; the
    floors are those errors, as from a product of their own."""
    layer = random_layer(np.random.default_rng(30), 40, 5, samples=200, noise=0.0)
    problem = layer.problem(3)
    w0 = np.where(problem.dead, 0.0, problem.weights)
    products, of_weights = type(problem).products, []

    def counted(self, values):
        of_weights.append(values.shape == w0.shape and np.array_equal(values, w0))
        return products(self, values)

    monkeypatch.setattr(type(problem), "products", counted)
    sampler = LayerSASampler()
    assert sampler.warm_start_beam(problem.num_coordinates) > 0  # a beam, then an anneal with its floors
    floors = []
    monkeypatch.setattr(_layer_dense, "continuous_floor",
                        lambda p: floors.append(continuous_floor(p)) or floors[-1])
    sampler.sample_layer(problem, seed=0)
    assert len(floors) == 1 and sum(of_weights) == 1
    monkeypatch.setattr(type(problem), "products", products)
    own = problem.neuron_errors(w0, np.arange(problem.num_neurons))  # a product of its own
    np.testing.assert_array_equal(floors[0], np.maximum(own, 0.0))
    with pytest.raises(ValueError):
        problem.weight_products[0, 0] = 1.0  # shared: read-only


def test_live_coordinates_keep_the_energies():
    """Coordinates fixed in every neuron are dropped before the anneal; energies are unchanged."""
    _, problem = layer_problem(31, 50, 6, 2)
    full = DenseQubos.from_problem(problem)
    dense, keep = full.live()
    assert keep.size < problem.num_coordinates  # random_layer has dead inputs
    v = np.random.default_rng(0).integers(0, 2, problem.free.shape).astype(np.uint8) * problem.free
    np.testing.assert_allclose(dense.energies(v[:, keep]), full.energies(v), rtol=1e-12)
    np.testing.assert_allclose(full.energies(v), problem.qubo_energies(v), rtol=1e-9)


def test_the_anneal_reads_the_problems_block_of_live_inputs():
    """Where the coordinates left are the live inputs whose block of ``H`` the problem keeps for its products (an
    eighth or more dead, as on MNIST's first layer), the anneal reads that block, not a block taken again; where
    they are not (a live input fixed in every neuron), it takes its own. The same values either way."""
    from qannealq.formulation import submatrix

    problem = random_layer(np.random.default_rng(37), 50, 6, dead=8).problem(3)
    live = np.flatnonzero(~problem.dead)
    assert np.count_nonzero(problem.dead) * 8 >= problem.dead.size
    dense, keep = DenseQubos.from_problem(problem).live(problem.live_block)
    assert np.array_equal(keep, live) and dense.mat is problem.live_block(live)
    assert DenseQubos.from_problem(problem).live()[0].mat is not dense.mat  # no block given: its own
    np.testing.assert_array_equal(dense.mat, submatrix(problem.hessian, keep))
    assert problem.live_block(live[1:]) is None  # another set: not the kept block
    fixed = dataclasses.replace(problem, free=problem.free & (np.arange(problem.free.shape[1]) != live[0]))
    other, kept = DenseQubos.from_problem(fixed).live(fixed.live_block)
    assert np.array_equal(kept, live[1:]) and other.mat is not fixed.live_block(live)
    np.testing.assert_array_equal(other.mat, submatrix(problem.hessian, kept))
    v = np.random.default_rng(1).integers(0, 2, problem.free.shape).astype(np.uint8) * problem.free
    np.testing.assert_allclose(dense.energies(v[:, keep]), problem.qubo_energies(v), rtol=1e-9)
    for precision in ("float64", "float32"):  # the solves only read the shared block (float64 chains read it itself)
        with mock.patch.object(DenseQubos, "live", autospec=True, side_effect=DenseQubos.live) as lives:
            LayerSASampler(chain=4, num_sweeps=4, chain_precision=precision).sample_layer(problem, seed=0)
        assert lives.call_args.args[1] == problem.live_block  # the sampler hands the problem's block on
        np.testing.assert_array_equal(problem.live_block(live), submatrix(problem.hessian, live))


@pytest.mark.parametrize("chain", [4, 6])
def test_chain_moves_reach_the_exact_optimum_on_17_variable_neurons(chain):
    layer, problem = layer_problem(21, 16, 6, 3)
    sample = LayerSASampler(chain=chain).sample_layer(problem, seed=4)
    assert sample.info["chain"] == chain
    check_layer_energies(layer, problem, sample)
    np.testing.assert_allclose(sample.energies, _optimum(problem), rtol=1e-9, atol=1e-12)


def test_a_chain_longer_than_the_layer_is_one_of_the_layer_s_length():
    """A chain's members are distinct coordinates: ``chain`` above the layer's runs as the layer's (numba allocated
    ``chain`` slots per row and sweep, and the torch path built every step: ``chain=210`` on 21 coordinates took
    186 s against 25 s for 21, with the same result)."""
    layer, problem = layer_problem(21, 16, 6, 3)
    live = int(problem.free.any(axis=0).sum())
    exact = LayerSASampler(chain=live, num_sweeps=4).sample_layer(problem, seed=4)
    longer = LayerSASampler(chain=live + 5, num_sweeps=4).sample_layer(problem, seed=4)
    assert exact.info["chain"] == longer.info["chain"] == live
    np.testing.assert_array_equal(longer.assignments, exact.assignments)
    assert LayerSASampler(chain=10 ** 9, num_sweeps=1).sample_layer(problem, seed=4).info["chain"] == live
    assert LayerSASampler(chain=3).sample_layer(layer_problem(21, 1, 2, 3)[1], seed=4).info["chain"] == 3


def test_wide_layers_anneal_with_chains_except_fast():
    _, wide = layer_problem(32, 300, 2, 2)
    _, narrow = layer_problem(32, 100, 2, 2)
    assert LayerSASampler().sample_layer(wide, seed=0).info["chain"] == 4
    assert LayerSASampler(effort="fast").sample_layer(wide, seed=0).info["chain"] == 0
    assert LayerSASampler().sample_layer(narrow, seed=0).info["chain"] == 0
    pairs = {**LayerSASampler().defaults, "chain": 0}
    live = int(wide.free.any(axis=0).sum())
    assert effort(pairs, live) == (1, 14)  # 300 / 20 pair sweeps
    # a layer of two neurons: the layer floor, up to the ceiling
    assert LayerSASampler(chain=0).sample_layer(wide, seed=0).info["reads_sweeps"] == effort(pairs, live, 2) == (1, 256)
    for bad in (-1, 2.5, "long"):
        with pytest.raises(InvalidArgumentError, match="chain"):
            LayerSASampler(chain=bad)


def test_chain_descent_escapes_pair_flip_minima():
    """On correlated inputs, a greedy descent by chain moves lowers states no single or pair flip improves; the
    energies the kernel tracks are those of the float32 couplings it reads, to float64 accuracy (see
    ``test_schedule_in_chunks_equals_one_call``)."""
    layer, problem = smooth_layer(33, 300, 6, 3)
    dense = DenseQubos.from_problem(problem)
    run, _ = make_run(dense, {**LayerSASampler().defaults, "chain": 4})
    pairs_min = run.polish(problem.encode(gptq_restricted(problem)))
    rows = pairs_min.take(np.arange(problem.num_neurons))
    args, _, best_v = run._args(rows, chains=True)
    polish_block(*args, 200, np.zeros(1, np.int64), np.arange(problem.num_neurons))
    w = dense.steps * (rows.v.astype(float) - pairs_min.v)
    gap = dense.mat - run.chain_mat.astype(np.float64)
    np.fill_diagonal(gap, 0.0)
    exact = dense.energies(rows.v)
    np.testing.assert_allclose(rows.energy, exact - np.einsum("rj,jl,rl->r", w, gap, w), rtol=1e-8, atol=1e-14)
    assert np.all(exact <= pairs_min.energy * (1 + 1e-6))
    assert exact.sum() < pairs_min.energy.sum() * (1 - 1e-3)
    again = run.polish(rows.v)  # and the chain minimum is still a pair-flip minimum (up to float32 couplings)
    np.testing.assert_allclose(again.energy, exact, rtol=1e-6)


def test_chain_tables_formed_only_when_an_anneal_moves_chains():
    """A run whose search is the polish alone (``layer-sa`` late under a time limit) never forms the chain moves'
    copy of ``M`` and hop tables; the first chain anneal forms them, once."""
    layer, problem = smooth_layer(35, 300, 6, 3)
    dense = DenseQubos.from_problem(problem, floors=True)
    run, _ = make_run(dense, {**LayerSASampler().defaults, "chain": 4, "num_sweeps": 4})
    with run:
        rows = run.polish(problem.encode(gptq_restricted(problem)))
        assert run._chains is None and run._chain_mat is None
        run.anneal(rows, seed=1)
        tables, copy = run._chains, run._chain_mat
        assert tables is not None and copy is not None and copy.dtype == np.float32
        run.anneal(rows, seed=2)
        assert run._chains is tables and run._chain_mat is copy
    flat, _ = make_run(dense, {**LayerSASampler().defaults, "chain": 0})
    assert flat.chains is None and flat.chain_mat is None  # no chain moves: nothing to form


def test_an_anneal_the_limit_cut_keeps_the_energies_it_tracked():
    """With float32 chain couplings an anneal returns its rows' energies recomputed in float64 (one product of
    every read's rows), unless the time limit cut the run: that product then ran past the limit, and the result
    depends on timing anyway; its energies are then the kernel's, those of the float32 couplings."""
    from qannealq.backends._layer_schedule import Clock

    layer, problem = smooth_layer(36, 300, 6, 3)
    dense = DenseQubos.from_problem(problem, floors=True)
    params = {**LayerSASampler().defaults, "chain": 4, "num_sweeps": 8, "num_reads": 3}
    for cut in (False, True):
        clock = Clock(600.0)
        run, _ = make_run(dense, params, clock)
        with run:
            rows = run.polish(problem.encode(gptq_restricted(problem)))
            clock.cut = cut
            with mock.patch.object(run, "start", wraps=run.start) as starts:
                out = run.anneal(rows, seed=1)
        assert run.chain_mat.dtype == np.float32 and out.owner.size == 3 * problem.num_neurons
        exact = dense.energies(out.v, out.owner)
        assert starts.call_count == (0 if cut else 1)
        np.testing.assert_allclose(out.energy, exact, rtol=1e-3 if cut else 1e-9)  # cut: 1e-4 on this smooth layer


def test_chain_precision_float32_copy_and_float64_energies():
    """Chain moves read a float32 copy of ``H`` by default (``chain_precision="float64"``: ``H`` itself); the
    anneal returns energies recomputed in float64 either way, the two precisions reach energies within a few
    tenths of a percent, and a bad value is refused by name."""
    layer, problem = smooth_layer(34, 300, 6, 3)
    dense = DenseQubos.from_problem(problem, floors=True)
    totals = {}
    for precision in ("float32", "float64"):
        params = {**LayerSASampler().defaults, "chain": 4, "num_sweeps": 12, "chain_precision": precision}
        run, _ = make_run(dense, params)
        assert run.chain_mat.dtype == np.dtype(precision)
        assert (run.chain_mat is dense.mat) == (precision == "float64")
        np.testing.assert_array_equal(run.chains[1], np.where(run.chains[0] >= 0, np.take_along_axis(
            run.chain_mat, np.maximum(run.chains[0], 0), axis=1), 0.0))  # couplings from the copy read
        with run:
            annealed = run.anneal(run.polish(problem.encode(gptq_restricted(problem))), seed=3)
        np.testing.assert_allclose(annealed.energy, dense.energies(annealed.v, annealed.owner), rtol=1e-8)
        sample = LayerSASampler(chain=4, num_sweeps=12, chain_precision=precision).sample_layer(problem, seed=3)
        check_layer_energies(layer, problem, sample)
        totals[precision] = sample.energies.sum()
    assert totals["float32"] == pytest.approx(totals["float64"], rel=5e-3)
    with pytest.raises(InvalidArgumentError, match="chain_precision='float16' must be one of"):
        LayerSASampler(chain_precision="float16")


def test_chain_hops_read_the_couplings_along_the_partner_lists(monkeypatch):
    """``hop2[a, s, t] = M[a, nbr[nbr[a, s], t]]`` and ``hop3[a, s, t, u] = M[a, nbr[nbr[nbr[a, s], t], u]]``,
    0 wherever a partner on the way is missing, in ``M``'s dtype; empty tables beyond ``HOP_BYTES``."""
    rng = np.random.default_rng(4)
    m, k = 23, 4
    mat = rng.standard_normal((m, m)).astype(np.float32)
    nbr = rng.integers(0, m, (m, k))
    nbr[rng.random((m, k)) < 0.2] = -1
    hop2, hop3 = chain_hops(mat, nbr)
    assert hop2.shape == (m, k, k) and hop3.shape == (m, k, k, k) and hop2.dtype == hop3.dtype == np.float32
    for a in range(m):
        for s_ in range(k):
            b = nbr[a, s_]
            for t in range(k):
                c = nbr[b, t] if b >= 0 else -1
                assert hop2[a, s_, t] == (mat[a, c] if c >= 0 else 0.0)
                for u in range(k):
                    e = nbr[c, u] if c >= 0 else -1
                    assert hop3[a, s_, t, u] == (mat[a, e] if e >= 0 else 0.0)
    monkeypatch.setattr(_layer_dense, "HOP_BYTES", m * k ** 3 * 4 - 1)
    assert [h.size for h in chain_hops(mat, nbr)] == [0, 0]


@pytest.mark.parametrize("threads", [1, 3])
def test_ranked_partners_are_the_strongest_couplings_in_order(threads):
    """Each coordinate's ``k`` largest ``|M_jl| / sqrt(M_jj M_ll)`` (:func:`coupling_strength`), strongest first,
    ties to the lower index, whatever the thread count; ``k`` capped at ``m − 1``; the pair and chain lists
    take the first of them (each unordered pair once for pairs, from both ends for chains)."""
    rng = np.random.default_rng(7)
    m = 900  # three spans of rows with three threads
    mat = rng.standard_normal((m, m))
    mat = np.round(mat + mat.T, 1)  # many exact ties
    mat[np.diag_indices(m)] = np.abs(np.diag(mat)) + 1.0
    mat[5, :] = mat[:, 5] = 0.0  # a coordinate coupled to nothing (and an empty diagonal)
    strength = coupling_strength(mat)
    part, value = ranked_partners(mat, 6, threads)
    for j in range(m):
        others = np.array([col for col in range(m) if col != j])
        order = others[np.lexsort((others, -strength[j, others]))][:6]  # strongest first, then lower index
        assert np.array_equal(part[j], order), j
        assert np.allclose(value[j], strength[j, order], rtol=1e-12, atol=0)
    assert ranked_partners(mat[:4, :4], 9)[0].shape == (4, 3)
    pairs, _ = pair_partners(mat, 3, (part, value))
    chains, coup = chain_partners(mat, 4, (part, value))
    assert np.array_equal(chains[chains[:, 0] >= 0], part[chains[:, 0] >= 0, :4])
    assert np.all(chains[5] == -1) and np.all(coup[5] == 0.0)
    assert np.array_equal(coup[chains >= 0], mat[np.nonzero(chains >= 0)[0], chains[chains >= 0]])
    listed = {(j, int(col)) for j in range(m) for col in pairs[j] if col >= 0}
    assert all((col, j) not in listed for j, col in listed)  # each unordered pair once
    assert all(set(part[j, :3]) <= {int(c) for c in pairs[j]} | {c for c in range(m) if (c, j) in listed}
               for j in range(m) if j != 5)
    with pytest.raises(ValueError, match="fewer than the 7 asked for"):
        pair_partners(mat, 7, (part, value))


@pytest.mark.parametrize("chain, partners", [(3, 8), (4, 8), (6, 8), (4, 5)])
def test_chain_moves_from_the_hop_tables_equal_those_from_the_matrix(chain, partners):
    """Chain moves reading the hop tables make the same moves as reading ``M`` (empty tables), bit for bit:
    the same states, tracked energies and best states after an anneal and a greedy descent, for chains of 3
    (one table), 4 (both) and 6 (both, and ``M`` for the older members), with 8 partners (the least of them by
    a tree of selects) and 5 (by a scan); and the moves do move."""
    _, problem = smooth_layer(35, 200, 5, 3)
    dense = DenseQubos.from_problem(problem, floors=True)
    params = {**LayerSASampler().defaults, "num_reads": 2, "num_sweeps": 6, "chain": chain,
              "chain_partners": partners}
    run, _ = make_run(dense, params)
    assert run.chains[2].shape[1:] == (partners, partners) and run.chains[3].size  # the tables are in use
    polished = run.polish(problem.encode(gptq_restricted(problem)))
    start, hot, cold, sweeps = anneal_plan(dense, params, polished)
    outcomes = []
    for hops in (run.chains[2:], (np.zeros((0, 0, 0), np.float32), np.zeros((0, 0, 0, 0), np.float32))):
        rows = start.take(np.arange(start.owner.size))
        best_e, best_v = rows.energy.copy(), rows.v.copy()
        moves = (*run.chains[:2], *hops, chain)
        common = (run.chain_mat, dense.steps, dense.free, *moves, run.indptr, run.indices, rows.owner, rows.v, rows.h,
                  rows.energy, best_e, best_v, run.tol[rows.owner])
        stop, everyone = np.zeros(1, np.int64), np.arange(rows.owner.size)
        anneal_block(*common, hot, cold, sweeps, 0, sweeps, 1, _row_seeds(9, rows.owner.size), stop, everyone)
        polish_block(*common, 200, stop, everyone)
        outcomes.append((rows.v, rows.h, rows.energy, best_v, best_e))
    for tabled, read in zip(*outcomes):
        np.testing.assert_array_equal(tabled, read)
    assert np.any(outcomes[0][3] != start.v)


def test_row_quantiles_equal_numpys_bit_for_bit():
    """The schedule's per-row quantiles of the flip costs (one sort for all rows) equal ``np.nanquantile``
    exactly, NaNs (fixed coordinates), ties and single-number rows included."""
    rng = np.random.default_rng(11)
    for _ in range(300):
        rows, cols = rng.integers(1, 40), rng.integers(1, 120)
        a = np.abs(rng.standard_normal((rows, cols))) * 10.0 ** rng.integers(-9, 3)
        if rng.random() < 0.3:
            a = np.round(a, 1)
        a[rng.random((rows, cols)) < rng.random()] = np.nan
        a[np.all(np.isnan(a), axis=1), rng.integers(cols)] = 1.0
        for q in (0.5, 0.05, 0.0, 1.0):
            np.testing.assert_array_equal(_row_nanquantile(a, q), np.nanquantile(a, q, axis=1))


def test_the_solve_loop_gives_layer_sa_the_warm_start_beam_its_effort_asks_for():
    """``layer-sa`` asks for a beam search of its warm start (by default ``max(128, inputs / 5)``, 768 in its
    last block from 1024 inputs on, where a population follows, thorough ``max(512, inputs / 2)``, none fast;
    ``warm_start_beam`` overrides) and the solve loop's warm start is then each neuron's best of the beam and
    GPTQ's start; samplers that do not ask (and a composite around them) get GPTQ's start alone."""
    from qannealq import quantize_layer
    from qannealq.backends.retry import RetryComposite
    from qannealq.baselines import warm_start_integers
    from qannealq.contract import warm_start_beam, warm_start_growth

    _, problem = layer_problem(41, 60, 6, 3)
    sampler = LayerSASampler()
    assert [sampler.warm_start_beam(effort=level) for level in PRESETS] == [0, 128, 512]
    assert [sampler.warm_start_beam(785, effort=level) for level in PRESETS] == [0, 196, 512]  # MNIST's first
    assert [sampler.warm_start_beam(3073, effort=level) for level in PRESETS] == [0, 768, 1536]  # CIFAR-10's:
    # the default's population (from 1024 inputs) with a beam widening from 128 (warm_start_growth)
    assert sampler.warm_start_beam(3073, warm_start_beam=4) == 4
    assert warm_start_beam(RetryComposite(sampler, retries=0), {"effort": "thorough"}, 3073) == 1536
    assert warm_start_growth(RetryComposite(sampler, retries=0), {}, 3073) == 8.0
    assert warm_start_beam(get_sampler("sa"), {}, 3073) == 0

    def errors(ints):
        return problem.errors(problem.grid.dequantize(ints, problem.steps))
    plain = errors(warm_start_integers(problem))
    result = quantize_layer(problem, "qubo", sampler, "layer-sa", seed=3)
    np.testing.assert_array_equal(result.warm_start_errors, errors(warm_start_integers(problem, beam=128)))
    assert np.all(result.warm_start_errors <= plain) and np.any(result.warm_start_errors < plain)
    assert np.all(result.errors <= result.warm_start_errors + 1e-15)
    for options in ({"warm_start_beam": 0}, {"effort": "fast"}):
        np.testing.assert_array_equal(
            quantize_layer(problem, "qubo", sampler, "layer-sa", seed=3, **options).warm_start_errors, plain)
    wrapped = quantize_layer(problem, "qubo", RetryComposite(sampler, retries=0), "layer-sa", seed=3)
    np.testing.assert_array_equal(wrapped.warm_start_errors, result.warm_start_errors)
    for bad in (-1, 2.5, True):
        with pytest.raises(InvalidArgumentError, match="warm_start_beam"):
            LayerSASampler(warm_start_beam=bad)


def test_the_solve_loop_passes_the_layers_coordinates_for_the_beam_width(monkeypatch, no_warm_up):
    """On a layer of 701 coordinates the width is the layer's (``max(128, 701 / 4)`` = 175, thorough 350 < 512),
    so the solve loop must pass its size; a sampler written to the old contract (``warm_start_beam(**kw)``, no
    size) is still asked, with its keyword arguments."""
    import qannealq.solve as solve_module
    from qannealq import quantize_layer

    class Stop(Exception):
        pass

    asked, deadlines = [], []

    def spy(problem, warm_start=None, beam=0, paths=1, growth=1.0, pilot=False, deadline=None):
        asked.append(beam)
        deadlines.append(deadline if deadline is None else (deadline.left(), deadline.share, deadline.tight_share,
                                                             deadline.keep))
        assert paths == 1 and growth == 1.0  # no population on 701 inputs: one start per neuron, a constant beam
        assert pilot is True  # layer-sa takes a rank-deficient layer's damping from a pilot
        raise Stop
    monkeypatch.setattr(solve_module, "warm_start_integers", spy)
    _, problem = layer_problem(5, 700, 2, 3, samples=40)
    for options in ({}, {"effort": "thorough"}, {"warm_start_beam": 9}, {"time_limit": 100}):
        with pytest.raises(Stop):
            quantize_layer(problem, "qubo", LayerSASampler(), "layer-sa", seed=0, **options)
    assert asked == [175, 512, 9, 175]
    from qannealq.backends.layer_sa import SHORT_SEARCH_KEEP, SHORT_SEARCH_SHARE
    # a time limit: the layer's end, and the beam's share of what the start's fixed costs leave (one sweep after
    # the default's beam: all of it but the time kept for what follows)
    assert deadlines[:3] == [None] * 3 and 90 < deadlines[3][0] <= 100
    assert deadlines[3][1:] == (SHORT_SEARCH_SHARE, None, SHORT_SEARCH_KEEP)

    class OldContract(dimod.ExactSolver):
        def warm_start_beam(self, **kwargs):
            return 3 + kwargs.get("extra", 0)
    from qannealq.contract import warm_start_beam
    assert warm_start_beam(OldContract(), {"extra": 2}, 701) == 5


def test_the_warm_starts_fields_come_from_the_product_its_errors_took(monkeypatch):
    """The up-fields of the warm start, formed from ``q H`` (which its errors needed) instead of their own
    product, equal :func:`up_fields` to rounding on a layer with dead and fixed inputs; the solve loop's
    ``layer-sa`` run then gives the integers it gives without them."""
    from qannealq import quantize_layer
    from qannealq.backends._layer_dense import DenseQubos
    from qannealq.backends._layer_kernel import fields_from_products, up_fields
    from qannealq.baselines import warm_start_integers
    from qannealq.formulation import LayerProblem

    layer = random_layer(np.random.default_rng(31), 120, 9, samples=300, dead=5)
    problem = layer.problem(2)
    warm = problem.encode(warm_start_integers(problem))
    values = problem.decode_layer(warm)[1]
    problem.errors(values)
    dense, live = DenseQubos.from_problem(problem).live()
    assert live.size < problem.num_coordinates
    v = warm[:, live]
    want = up_fields(dense.mat, dense.diag, dense.lin, dense.steps, np.where(dense.free, v, 0))
    got = fields_from_products(problem.remembered_products(values), problem.stats.cross, dense.diag, dense.steps,
                               v, live)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
    for effort in ("fast", "default"):
        with_fields = quantize_layer(layer.problem(2), "qubo", LayerSASampler(), "layer-sa", seed=2, effort=effort)
        with monkeypatch.context() as patch:
            patch.setattr(LayerProblem, "remembered_products", lambda self, values: None)
            without = quantize_layer(layer.problem(2), "qubo", LayerSASampler(), "layer-sa", seed=2, effort=effort)
        np.testing.assert_array_equal(with_fields.integers, without.integers)


def test_the_qubos_linear_terms_are_formed_once_and_only_where_a_solve_needs_them(monkeypatch, no_warm_up):
    """A layer's ``DenseQubos`` forms ``a`` and ``e`` (from a product of ``H`` with the base values) on first
    use, once for the live copy and its restrictions, equal to the problem's; ``fast`` on a layer too wide to
    anneal (its start's fields and errors known, its tolerance from their gains) never forms that product and
    gives the integers of a run that does (fields by a product, energies from ``a`` and ``e``, tolerance from
    ``a``); nor does ``default``, which anneals: its later rows, one per neuron, take their fields from the
    layer's own product of their values (``layer_fields``)."""
    import dataclasses
    from functools import cached_property

    from qannealq import quantize_layer
    from qannealq.formulation import LayerProblem

    layer = random_layer(np.random.default_rng(41), 300, 6, samples=400, dead=4)
    problem = layer.problem(2)
    assert effort(LayerSASampler()._params({"effort": "fast"}), problem.num_coordinates, problem.num_neurons)[1] == 0
    formed = []
    base_products = LayerProblem._base_products.func

    def counted(self):
        formed.append(1)
        return base_products(self)

    counting = cached_property(counted)
    counting.__set_name__(LayerProblem, "_base_products")
    monkeypatch.setattr(LayerProblem, "_base_products", counting)
    dense, live = DenseQubos.from_problem(problem).live()
    narrow = dataclasses.replace(dense, free=dense.free & (np.arange(live.size) % 2 == 0))
    assert not formed and live.size < problem.num_coordinates
    np.testing.assert_array_equal(narrow.lin, problem.linear[:, live])
    np.testing.assert_array_equal(dense.offsets, problem.offsets)
    assert dense.lin is narrow.lin and len(formed) == 1
    for name, times in (("fast", 0), ("default", 0)):
        formed.clear()
        quiet = quantize_layer(layer.problem(2), "qubo", LayerSASampler(), "layer-sa", seed=3, effort=name)
        assert len(formed) == times, name
        with monkeypatch.context() as patch:
            patch.setattr(LayerProblem, "remembered_products", lambda self, values: None)
            formed.clear()
            eager = quantize_layer(layer.problem(2), "qubo", LayerSASampler(), "layer-sa", seed=3, effort=name)
            assert formed, name
        np.testing.assert_array_equal(quiet.integers, eager.integers)


def test_the_beams_start_is_each_neurons_lowest_candidate_and_its_errors_take_no_product_of_their_own(monkeypatch, no_warm_up):
    """On a rank-deficient layer the beam's start is, per neuron, at or below GPTQ's own starts at both dampings
    (its other candidates; the beam's best is not exposed); the problem remembers its errors and their product
    (equal to ``values @ H``), so that ``fast`` with a beam through the solve loop forms no product of ``H`` for
    the start's errors nor the QUBO's base values: one product of ``errors`` in all, the solution's."""
    import dataclasses
    from functools import cached_property

    from qannealq import quantize_layer
    from qannealq.baselines import BASELINES, DEFAULT_WARM_START, GPTQ_PERCDAMP, RANK_DEFICIENT_PERCDAMP, \
        rank_deficient, warm_start_integers
    from qannealq.formulation import LayerProblem

    layer = random_layer(np.random.default_rng(43), 120, 6, samples=60, dead=4)
    problem = layer.problem(2)
    assert rank_deficient(problem)
    start = warm_start_integers(problem, beam=8)
    values = problem.grid.dequantize(start, problem.steps)
    products = problem.remembered_products(values)
    assert products is not None
    np.testing.assert_allclose(products, values @ problem.hessian, rtol=1e-12, atol=1e-12)
    fresh = dataclasses.replace(problem)
    errors = problem.errors(values)
    np.testing.assert_allclose(errors, fresh.errors(values), rtol=1e-9, atol=1e-12)
    for damping in (GPTQ_PERCDAMP, RANK_DEFICIENT_PERCDAMP):
        own = BASELINES[DEFAULT_WARM_START](fresh, percdamp=damping)
        assert np.all(errors <= fresh.errors(fresh.grid.dequantize(own, fresh.steps)) + 1e-12)
    formed, missed = [], []
    base_products, errors_of = LayerProblem._base_products.func, LayerProblem.errors

    def counted(self):
        formed.append(1)
        return base_products(self)

    def counted_errors(self, values):
        missed.append(self.remembered_products(values) is None)
        return errors_of(self, values)

    counting = cached_property(counted)
    counting.__set_name__(LayerProblem, "_base_products")
    monkeypatch.setattr(LayerProblem, "_base_products", counting)
    monkeypatch.setattr(LayerProblem, "errors", counted_errors)
    result = quantize_layer(layer.problem(2), "qubo", LayerSASampler(), "layer-sa", seed=3, effort="fast",
                            warm_start_beam=8)
    assert not formed and sum(missed) == 1 and len(missed) >= 3, missed
    np.testing.assert_allclose(result.warm_start_errors, errors, rtol=1e-9, atol=1e-12)


def test_time_limit_bounds_the_layer_warm_start_included():
    """Through the solve loop, ``time_limit`` covers the layer: the warm start's beam gets its share of the time
    the start's fixed costs leave (``warm_start_deadline``) and narrows to it, the sampler the rest
    (``time_spent``: the start's seconds). A beam
    of 4096 on 64 neurons of 1000 inputs takes several times the limit unbounded; limited, the layer ends near the
    limit, marked time-limited, its trace counted from the layer's start, never worse than GPTQ-restricted."""
    from qannealq import quantize_layer
    from qannealq.backends.layer_sa import (DESCENT_SHARE, POPULATION_SHARE, SHORT_SEARCH_KEEP, SHORT_SEARCH_SHARE,
                                            WARM_START_SHARE)

    _, problem = layer_problem(31, 1000, 64, 4, samples=1100)
    sampler = LayerSASampler(effort="thorough", warm_start_beam=4096, num_sweeps=100_000)
    assert sampler.warm_start_deadline(1001) is None
    limited = sampler.warm_start_deadline(1001, start=10.0, time_limit=2.0)
    assert (limited.at, limited.share, limited.tight_share) == (12.0, WARM_START_SHARE, SHORT_SEARCH_SHARE)
    # one sweep after the default's beam (MNIST's 785 inputs): the time to the beam but what is kept for what
    # follows, however tight; thorough's long anneal after it: half; a population (CIFAR-10's 3073): less, unless
    # the time left is tight
    default = LayerSASampler(time_limit=2.0)
    short = default.warm_start_deadline(785)
    assert (short.share, short.tight_share, short.keep) == (SHORT_SEARCH_SHARE, None, SHORT_SEARCH_KEEP)
    assert SHORT_SEARCH_KEEP > 0 and SHORT_SEARCH_SHARE > WARM_START_SHARE > POPULATION_SHARE and limited.keep == 0
    assert default.warm_start_deadline(785, effort="thorough").share == WARM_START_SHARE
    from qannealq._deadline import TIGHT
    from qannealq.backends.layer_sa import POPULATION_TIGHT, THOROUGH_TIGHT

    for effort_ in ("default", "thorough"):
        with mock.patch("os.cpu_count", return_value=2):  # the thresholds' own two threads (one: ONE_THREAD_TIGHT)
            wide = default.warm_start_deadline(3073, effort=effort_)
        assert (wide.share, wide.tight_share) == (POPULATION_SHARE, DESCENT_SHARE)  # tight: a descent follows
        assert wide.tight == (THOROUGH_TIGHT if effort_ == "thorough" else POPULATION_TIGHT)  # a population: later
    assert default.warm_start_deadline(785, effort="thorough").tight == TIGHT
    assert THOROUGH_TIGHT > POPULATION_TIGHT > TIGHT
    assert 1.9 < default.warm_start_deadline(3073).left() <= 2.0  # from now, without a start
    # the kernels' first load (the beam's too: without a limit, so that it runs) is not timed
    quantize_layer(layer_problem(1, 200, 9, 4)[1], "qubo", LayerSASampler(effort="thorough", num_sweeps=2), "layer-sa",
                   seed=0)
    limit = 1.0
    t0 = time.perf_counter()
    result = quantize_layer(problem, "qubo", sampler, "layer-sa", seed=0, time_limit=limit)
    elapsed = time.perf_counter() - t0 - result.info.get("warm_up_seconds", 0.0)  # not counted by the limit
    assert result.info["time_limited"] is True
    # the margin is for a 2-core machine shared by many processes; unbounded, the beam alone takes ~8 s here
    assert elapsed < limit + 3.0, f"took {elapsed:.2f} s for a {limit} s limit"
    spent = result.info["params"]["time_spent"]
    assert 0 < spent < elapsed and result.info["trace"]["seconds"][0] >= spent
    gptq = problem.qubo_energies(problem.encode(gptq_restricted(problem)))
    assert np.all(result.errors <= result.warm_start_errors + 1e-12) and result.errors.sum() < gptq.sum()


def test_a_limited_run_ends_at_least_where_fast_does_from_its_start():
    """The polish of the starts is not bounded by the limit (a greedy descent of at most ``polish_sweeps``):
    under a limit that has passed before the search, each neuron still ends at or below ``fast``'s state from
    the same start."""
    _, problem = layer_problem(25, 300, 6, 2)
    warm = problem.encode(gptq_restricted(problem))
    fast = LayerSASampler(effort="fast").sample_layer(problem, initial_states=warm, seed=0)
    tiny = LayerSASampler(effort="thorough").sample_layer(problem, initial_states=warm, seed=0, time_limit=1e-9)
    assert tiny.info["time_limited"] is True
    assert np.all(tiny.energies <= fast.energies * (1 + 1e-12) + 1e-15)


def test_a_search_left_too_little_of_the_limit_is_the_polish_alone():
    """Where the time a limit leaves the search is under ``LATE_SHARE`` of the time the layer took before it (the
    warm start's ``time_spent``), the search is ``fast``'s, the polish of its start alone: the same assignments
    as ``fast`` from that start, marked late and time-limited, no sweeps. With time left, the search anneals."""
    from qannealq.backends.layer_sa import LATE_SHARE

    _, problem = layer_problem(26, 300, 6, 2)  # 301 coordinates: no RTN start in either preset
    warm = problem.encode(gptq_restricted(problem))
    fast = LayerSASampler(effort="fast").sample_layer(problem, initial_states=warm, seed=0)
    spent, left = 4.0, 1.0
    assert left < LATE_SHARE * spent
    late = LayerSASampler().sample_layer(problem, initial_states=warm, seed=0, time_spent=spent,
                                         time_limit=spent + left)
    assert late.info["late"] is True and late.info["time_limited"] is True
    assert tuple(late.info["reads_sweeps"])[1] == 0 and late.info["cycles"] == 1
    np.testing.assert_array_equal(late.assignments, fast.assignments)
    roomy = LayerSASampler().sample_layer(problem, initial_states=warm, seed=0, time_spent=spent, time_limit=100.0)
    assert roomy.info["late"] is False and tuple(roomy.info["reads_sweeps"])[1] > 0


def test_a_limit_too_short_for_the_beam_leaves_it_out_and_the_search_to_the_polish(no_warm_up):
    """Where a deadline leaves under ``SKIP_BEAM`` times the beam's Cholesky factorization (its fastest time in the
    process), a full-rank layer's warm start runs no beam: it is GPTQ-restricted in pivot order on that
    factorization, ``fast``'s start (at int2 the beam's damping is GPTQ's), and the deadline is marked late and
    cut. Through the solve loop the search after it is then the polish alone: the same integers as ``fast``,
    marked late and time-limited. With time, the beam runs and starts lower; a bad ``late`` is refused naming
    it."""
    from qannealq import baselines, quantize_layer
    from qannealq._deadline import Deadline

    _, problem = layer_problem(27, 300, 12, 2)
    assert not baselines.rank_deficient(problem) and baselines._beam_damping(problem) == baselines.GPTQ_PERCDAMP
    name, own = "gptq-restricted-pivot", baselines.BASELINES["gptq-restricted-pivot"](problem)
    passed = Deadline(time.perf_counter())  # no time left at all
    start = baselines.warm_start_integers(problem, name, beam=64, deadline=passed)
    assert passed.late and passed.cut
    np.testing.assert_array_equal(start, own)
    paths = baselines.warm_start_integers(problem, name, beam=64, paths=3, deadline=Deadline(time.perf_counter()))
    np.testing.assert_array_equal(paths, np.repeat(own[:, None], 3, axis=1))
    roomy = Deadline(time.perf_counter() + 100.0)
    beamed = baselines.warm_start_integers(problem, name, beam=64, deadline=roomy)
    assert not roomy.late and not roomy.cut
    lower, before = (problem.qubo_energies(problem.encode(ints)) for ints in (beamed, start))
    assert np.all(lower <= before + 1e-12) and lower.sum() < before.sum()
    # the solve loop passes the start's verdict on: with the rule made to skip under a roomy limit (which alone
    # would leave the search its anneal), the search is the polish alone
    fast = quantize_layer(problem, "qubo", LayerSASampler(effort="fast"), "layer-sa", seed=0)
    fastest = {}
    with mock.patch.object(baselines, "SKIP_BEAM", 1e9), mock.patch.object(baselines, "_FASTEST", fastest):
        tight = quantize_layer(problem, "qubo", LayerSASampler(), "layer-sa", seed=0, time_limit=100.0)
    live = int(np.count_nonzero(~problem.dead))  # the fastest times the rule read, by size
    assert set(fastest) == {("cholesky", live), ("product", *problem.weights.shape)}
    assert all(0 < t < 1.0 for t in fastest.values())
    assert tight.info["late"] is True and tight.info["time_limited"] is True and tight.info["params"]["late"]
    assert tight.info["params"]["time_spent"] < 50.0  # not late by the limit's own rule
    np.testing.assert_array_equal(tight.integers, fast.integers)
    roomy = quantize_layer(problem, "qubo", LayerSASampler(), "layer-sa", seed=0, time_limit=100.0)
    assert not roomy.info["late"] and not roomy.info.get("time_limited")
    assert roomy.errors.sum() < tight.errors.sum()
    with pytest.raises(InvalidArgumentError, match="late"):
        LayerSASampler().sample_layer(problem, seed=0, late="yes")


def test_a_limit_that_narrows_the_start_plans_a_population_of_fewer_reads(no_warm_up):
    """Where the time limit narrowed the warm start's beam (``start_cut``: the limit binds), a population runs at
    most ``LIMITED_READS`` reads a cycle and cycles while the time lasts (``LIMITED_CYCLES``); a limit the start
    meets, or none, keeps the preset's plan; ``num_reads`` and ``cycles`` override it. The solve loop passes the
    start's verdict on, and the sampler's own warm start sets it; a bad value is refused naming it."""
    from qannealq import quantize_layer, solve
    from qannealq.backends import _layer_schedule

    params, m = LayerSASampler().defaults, 3073
    preset = EFFORTS["default"].population
    limited = {**params, "time_limit": 5.0, "start_cut": True}
    assert _layer_schedule.population({**params, "time_limit": 5.0}, m) == preset
    assert _layer_schedule.population({**params, "start_cut": True}, m) == preset  # no limit: nothing binds
    assert effort(limited, m, 512)[0] == _layer_schedule.LIMITED_READS < preset.reads
    assert cycles(limited, m) == _layer_schedule.LIMITED_CYCLES > preset.cycles
    assert effort({**limited, "num_reads": 5}, m, 512)[0] == 5 and cycles({**limited, "cycles": 2}, m) == 2
    assert effort({**limited, "effort": "thorough"}, m, 512)[0] == _layer_schedule.LIMITED_READS
    assert LayerSASampler().warm_start_paths(m, time_limit=5.0, start_cut=True) == _layer_schedule.LIMITED_READS
    assert LayerSASampler().warm_start_paths(m, time_limit=5.0) == preset.reads

    _, problem = smooth_layer(23, POPULATION_INPUTS, 3, 3)
    start = solve.warm_start_integers

    def narrowed(*args, deadline=None, **kwargs):
        out = start(*args, deadline=deadline, **kwargs)
        deadline.mark_cut()  # as a beam the limit narrowed
        return out

    roomy = quantize_layer(problem, "qubo", LayerSASampler(), "layer-sa", seed=0, time_limit=600.0)
    assert roomy.info["params"]["start_cut"] is False and roomy.info["reads_sweeps"][0] == preset.reads
    with mock.patch.object(solve, "warm_start_integers", narrowed):
        cut = quantize_layer(problem, "qubo", LayerSASampler(), "layer-sa", seed=0, time_limit=600.0)
    assert cut.info["params"]["start_cut"] is True and cut.info["time_limited"] is True
    assert cut.info["reads_sweeps"][0] == _layer_schedule.LIMITED_READS
    assert cut.info["cycles"] > preset.cycles  # cycles while the time lasts (a roomy limit: all of them)
    with pytest.raises(InvalidArgumentError, match="start_cut"):
        LayerSASampler().sample_layer(problem, seed=0, start_cut="yes")


def test_a_tight_start_on_a_wide_layer_searches_by_a_descent_of_chains(no_warm_up):
    """Where the time left after the warm start's fixed costs was tight (``Deadline.searched_tight``, on the
    deadline searched and every one it is a part of; ``start_tight``, which the solve loop passes), a layer of a
    population searches by the polish of its start and a greedy descent by chains (``_Run.descend``), not by a
    population cut short: each row ends where no chain move lowers it, never above its start, at the energies of
    the couplings it read. A narrower layer, a limit that is not tight, or a run without chains keeps its search;
    a bad value is refused naming it."""
    from qannealq import quantize_layer, solve
    from qannealq._deadline import Deadline

    outer = Deadline(time.perf_counter() + 10.0, share=0.3, tight_share=0.7, tight=4.5)
    assert not outer.search(0.01).polish and not outer.searched_tight
    part = Deadline(outer.at, parent=outer, share=0.3, tight_share=0.7, tight=4.5)
    assert part.search(5.0).polish and part.searched_tight and outer.searched_tight  # 10 s < 4.5 x 5 s

    _, problem = smooth_layer(23, POPULATION_INPUTS, 3, 3)
    dense = DenseQubos.from_problem(problem)
    run, _ = make_run(dense, LayerSASampler().defaults)
    polished = run.polish(problem.encode(gptq_restricted(problem)))
    down = run.descend(polished.take(np.arange(problem.num_neurons)))
    assert down.owner.tolist() == list(range(problem.num_neurons))
    assert np.all(down.energy <= polished.energy) and down.energy.sum() < polished.energy.sum() * (1 - 1e-3)
    w = dense.steps * (down.v.astype(float) - polished.v)
    gap = dense.mat - run.chain_mat.astype(np.float64)
    np.fill_diagonal(gap, 0.0)
    np.testing.assert_allclose(down.energy, dense.energies(down.v) - np.einsum("rj,jl,rl->r", w, gap, w), rtol=1e-8)
    again = run.descend(run.start(down.v))  # from exact fields: chain moves lower it no further (to float32 ties)
    np.testing.assert_allclose(dense.energies(again.v), dense.energies(down.v), rtol=1e-6)
    assert make_run(dense, {**LayerSASampler().defaults, "chain": 0})[0].descend(polished).owner.size == 0

    start = solve.warm_start_integers

    def tight(*args, deadline=None, **kwargs):
        out = start(*args, deadline=deadline, **kwargs)
        deadline.searched_tight = True  # as a start whose time left was tight
        return out

    with mock.patch.object(solve, "warm_start_integers", tight):
        searched = quantize_layer(problem, "qubo", LayerSASampler(), "layer-sa", seed=0, time_limit=600.0)
        _, narrow = smooth_layer(23, 300, 3, 3)
        kept = quantize_layer(narrow, "qubo", LayerSASampler(), "layer-sa", seed=0, time_limit=600.0)
    assert searched.info["params"]["start_tight"] is True and searched.info["late"] and searched.info["descended"]
    assert kept.info["params"]["start_tight"] is True and not kept.info["late"] and not kept.info["descended"]
    def late_start(*args, deadline=None, **kwargs):
        out = start(*args, deadline=deadline, **kwargs)
        deadline.late = True  # as a start that left its beam out for lack of time (the loop then passes late)
        return out

    with mock.patch.object(solve, "warm_start_integers", late_start):
        late = quantize_layer(problem, "qubo", LayerSASampler(), "layer-sa", seed=0, time_limit=600.0)
    assert late.info["params"]["start_tight"] is False and late.info["descended"]  # late for any reason: the same
    np.testing.assert_array_equal(late.integers, searched.integers)
    polish_alone = quantize_layer(problem, "qubo", LayerSASampler(), "layer-sa", seed=0, num_sweeps=0)
    assert not polish_alone.info["late"] and not polish_alone.info["descended"]
    assert searched.errors.sum() < polish_alone.errors.sum() * (1 - 1e-3)
    assert np.all(searched.errors <= polish_alone.errors * (1 + 1e-9))
    free = quantize_layer(problem, "qubo", LayerSASampler(), "layer-sa", seed=0, time_limit=600.0)
    assert free.info["params"]["start_tight"] is False and not free.info["late"] and not free.info["descended"]
    with pytest.raises(InvalidArgumentError, match="start_tight"):
        LayerSASampler().sample_layer(problem, seed=0, start_tight="yes")


def test_time_spent_counts_against_the_limit_and_is_checked():
    """``time_spent`` (the solve loop's warm start) shifts the clock: spent beyond the limit, the search is cut at
    once and the trace starts after it; a bad value is refused naming it; a composite passes
    ``warm_start_deadline`` on from its child; a sampler without it gets no deadline, and one that returns
    something else is refused naming it."""
    from qannealq.contract import LayerComposite, warm_start_deadline

    _, problem = layer_problem(24, 100, 6, 3)
    solver = LayerSASampler(num_sweeps=64)
    sample = solver.sample_layer(problem, seed=3, time_limit=5.0, time_spent=6.0)
    assert sample.info["time_limited"] is True and sample.info["trace"]["seconds"][0] >= 6.0
    np.testing.assert_array_equal(solver.sample_layer(problem, seed=3, time_spent=6.0).assignments,
                                  solver.sample_layer(problem, seed=3).assignments)  # no limit: nothing changes
    for bad in (-1.0, "1", True, float("nan")):
        with pytest.raises(InvalidArgumentError, match="time_spent"):
            solver.sample_layer(problem, seed=3, time_spent=bad)
    assert warm_start_deadline(LayerComposite(LayerSASampler(time_limit=4.0)), {}, 101, start=1.0).at == 5.0
    assert warm_start_deadline(dimod.ExactSolver(), {"time_limit": 4.0}, 101) is None

    class Odd(dimod.ExactSolver):
        def warm_start_deadline(self, inputs=None, start=None, **kwargs):
            return 3.0
    with pytest.raises(InvalidArgumentError, match="warm_start_deadline"):
        warm_start_deadline(Odd(), {}, 101)


def test_a_populations_reads_under_a_limit_start_one_read_at_a_time():
    """Under a time limit the first population forms its reads' fields one read at a time (the reads left once it
    expires start from the polished start): a generous limit gives the integers of no limit; an expired one
    starts every read from the polished start."""
    from qannealq.backends import layer_sa
    from qannealq.backends._layer_schedule import Clock
    from qannealq.baselines import warm_start_integers

    _, problem = smooth_layer(23, POPULATION_INPUTS, 3, 3)
    sampler, m = LayerSASampler(), problem.num_coordinates
    k = sampler.warm_start_paths(m)
    ints = warm_start_integers(problem, beam=sampler.warm_start_beam(m), paths=k, growth=sampler.warm_start_growth(m))
    states = np.stack([problem.encode(ints[:, t]) for t in range(k)], axis=1)
    free = sampler.sample_layer(problem, initial_states=states, seed=5)
    limited = sampler.sample_layer(problem, initial_states=states, seed=5, time_limit=600)
    assert limited.info["time_limited"] is False
    np.testing.assert_array_equal(limited.assignments, free.assignments)

    dense = DenseQubos.from_problem(problem)
    run, _ = make_run(dense, {**sampler.defaults, "num_threads": 1}, Clock(1e-9, start=time.perf_counter() - 1))
    chosen = run.polish(states[:, 0])
    given = []
    with mock.patch.object(run, "anneal", lambda rows, *a, **kw: given.append(rows) or rows):
        layer_sa._first_population(run, chosen, states[:, 1:], k, 4, 0, True)
    rows = given[0]
    np.testing.assert_array_equal(rows.v, np.repeat(chosen.v, k, axis=0))
    np.testing.assert_array_equal(rows.owner, np.repeat(np.arange(3), k))
    np.testing.assert_allclose(rows.h, np.repeat(chosen.h, k, axis=0))

    # a read's product starts only where the time left before the reserve still holds one (the latest timed
    # product of the layer's rows): with a minute left but a product timed at two, no read is formed, and the run
    # is cut; with a product timed at a millisecond, every read is
    for product, formed in ((120.0, 0), (1e-3, k - 1)):
        clock = Clock(60.0)
        run, _ = make_run(dense, {**sampler.defaults, "num_threads": 1}, clock)
        chosen = run.polish(states[:, 0])
        run.product_seconds = product
        given = []
        with mock.patch.object(run, "anneal", lambda rows, *a, **kw: given.append(rows) or rows), \
                mock.patch.object(run, "start", wraps=run.start) as starts:
            layer_sa._first_population(run, chosen, states[:, 1:], k, 4, 0, True)
        assert starts.call_count == formed and clock.cut == (formed == 0)
        same = np.all(given[0].v.reshape(3, k, -1) == chosen.v[:, None], axis=2)
        assert same[:, 1:].all() == (formed == 0)
