"""A layer's solve first loads its compiled code on a stand-in layer (``qannealq.solve.warm_up``), so that its
time, and a time limit, count the solve, not numba's first loading of the kernels in the process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("numba")

from helpers import layer_problem  # noqa: E402
from qannealq import solve  # noqa: E402
from qannealq.backends import get_sampler  # noqa: E402
from qannealq.backends.layer_sa import LayerSASampler  # noqa: E402
from qannealq.baselines import rank_deficient  # noqa: E402
from qannealq.formulation import LayerStats, build_problem  # noqa: E402
from qannealq.grid import make_grid  # noqa: E402

# Runs in a fresh process (nothing loaded yet): for each kind of layer, the warm-up, then the time-limited solve,
# whose compiled functions must all have been loaded by the warm-up (numba dispatchers' signatures unchanged).
FRESH = textwrap.dedent("""
    import sys
    import numba
    import numpy as np
    from qannealq.backends.layer_sa import LayerSASampler
    from qannealq.formulation import LayerStats, build_problem
    from qannealq.grid import make_grid
    from qannealq.solve import quantize_layer, warm_up

    def loaded():
        out = {}
        for name, module in list(sys.modules.items()):
            if name.startswith("qannealq"):
                for key, value in vars(module).items():
                    if isinstance(value, numba.core.registry.CPUDispatcher):
                        out[f"{name}.{key}"] = len(value.signatures)
        return out

    def layer(f, n, samples, dead, bits, seed):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((samples, f))
        x[:, :dead] = 0.0
        w, b = rng.standard_normal((n, f)) / np.sqrt(f), 0.1 * rng.standard_normal(n)
        return build_problem(LayerStats.from_arrays(x, x @ w.T + b), w, b, make_grid(w, b, bits))

    sampler = LayerSASampler()
    # first: a limit too short for the beam (qannealq.baselines.SKIP_BEAM), whose start is the baseline's own
    cases = [(199, 12, 800, 40, 4, 1e-6, {}), (299, 12, 800, 60, 4, 2.0, {}), (1029, 8, 300, 0, 2, 1.0, {}),
             (40, 9, 200, 0, 1, 1.0, {}),
             (299, 12, 800, 60, 4, 2.0, {"effort": "fast"}), (299, 12, 100, 0, 3, 2.0, {"effort": "thorough"})]
    if sys.argv[1:2] in (["empty-cache"], ["expired"]):  # every kernel compiles from scratch, or the warm-up's
        cases = [cases[int(i)] for i in sys.argv[2:]]  # solves are cut at once: the kinds given by their indices
    if sys.argv[1:2] == ["expired"]:  # a loaded machine: the stand-in's solves all cut before any later phase
        import qannealq.solve
        qannealq.solve.WARM_UP_LIMIT = 1e-9
    for f, n, samples, dead, bits, limit, options in cases:
        problem = layer(f, n, samples, dead, bits, f)
        first = warm_up(problem, "qubo", sampler, time_limit=limit, **options)
        assert first > 0, (f, options, first)
        before = loaded()
        result = quantize_layer(problem, "qubo", sampler, seed=0, time_limit=limit, **options)
        assert "warm_up_seconds" not in result.info, (f, result.info)
        after = loaded()
        new = {k: (before.get(k, 0), v) for k, v in after.items() if v != before.get(k, 0)}
        assert not new, f"loaded inside the limit on {f + 1} inputs ({options}): {new}"
        assert warm_up(problem, "qubo", sampler, time_limit=limit, **options) == 0.0
    if sys.argv[1:2] in (["empty-cache"], ["expired"]):
        print("ok")
        sys.exit(0)
    unbounded = layer(299, 12, 800, 60, 4, 7)  # the first case's kind: warmed under a limit, it runs without one
    before = loaded()
    result = quantize_layer(unbounded, "qubo", sampler, seed=0)
    assert loaded() == before and "warm_up_seconds" not in result.info
    other = layer(99, 8, 40, 0, 3, 5)  # a kind not warmed yet: the solve loop warms it itself
    result = quantize_layer(other, "qubo", sampler, seed=0, time_limit=1.0)
    assert result.info["warm_up_seconds"] > 0
    from qannealq.baselines import BASELINES
    for f, samples, dead in ((299, 800, 60), (1029, 300, 0)):  # every baseline: GPTQ's kernels in each order
        problem = layer(f, 10, samples, dead, 3, f + 1)
        for method in BASELINES:
            assert warm_up(problem, method) > 0, method
            before = loaded()
            result = quantize_layer(problem, method)
            after = loaded()
            new = {k: (before.get(k, 0), v) for k, v in after.items() if v != before.get(k, 0)}
            assert not new and "warm_up_seconds" not in result.info, (method, f, new)
    print("ok")
""")


def test_the_warm_up_loads_every_kernel_a_solve_runs():
    """In a fresh process, on a MNIST-like layer (dead inputs, chain moves; also under a limit too short for its
    beam, with ``fast`` and, singular,
    ``thorough``; and without a limit once warmed under one), a CIFAR-like one (singular ``H``, 1030 inputs: a
    population) and an int1 one, and for every baseline: after :func:`qannealq.solve.warm_up` the solve loads no
    compiled function (a kernel the stand-in layer does not run fails it), the warm-up runs once per kind of
    layer, and the solve loop warms a new kind before its clock (``info["warm_up_seconds"]``)."""
    done = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "ok"


def test_the_warm_up_loads_every_kernel_a_solve_runs_on_a_fresh_install(tmp_path):
    """The same with numba's on-disk cache empty, as on a fresh install (on the default MNIST-like layer and the
    singular one with ``thorough``): each kernel then compiles for seconds inside the warm-up's own limit, which
    cuts its solves short of their later phases, and the warm-up solves again until a solve loads nothing new
    (with two solves, ``thorough`` on MNIST's first layer compiled its anneal inside the layer's limit: 11.6 s
    under 0.1 s)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", FRESH, "empty-cache", "1", "5"], capture_output=True, text=True,
                          timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "ok"


def test_the_warm_up_loads_every_kernel_a_solve_runs_whatever_its_timing():
    """The same where the warm-up's own limit (``WARM_UP_LIMIT``) expires at once, as on a heavily loaded
    machine, so that its stand-in's solves are all cut before their beam, the chains' descent and the anneal
    (on the MNIST-like layer, the CIFAR-like one and ``thorough``): the layer's solve loads nothing either (it
    loaded ``polish_block``'s float32 signature, the chains', and ``anneal_block`` in a full run on a loaded
    machine), for the warm-up loads every kernel signature whatever its solves reach
    (``LayerSASampler.load_compiled``, the warm start's beam without a deadline)."""
    done = subprocess.run([sys.executable, "-c", FRESH, "expired", "1", "2", "5"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "ok"


def _layer(f: int, n: int, samples: int, dead: int, bits: int, bias: bool = True):
    rng = np.random.default_rng(f + samples)
    x = rng.standard_normal((samples, f))
    x[:, :dead] = 0.0
    w = rng.standard_normal((n, f)) / np.sqrt(f)
    b = 0.1 * rng.standard_normal(n) if bias else None
    stats = LayerStats.from_arrays(x, x @ w.T + (0.0 if b is None else b), bias=bias)
    return build_problem(stats, w, b, make_grid(w, b, bits, int1="paper" if bits == 1 else "sign"))


@pytest.mark.parametrize("f, samples, dead, bits, bias", [(60, 200, 10, 4, True), (60, 20, 0, 2, True),
                                                          (1500, 100, 0, 1, False), (30, 100, 29, 3, True)])
def test_the_stand_in_is_a_layer_of_the_same_kind(f, samples, dead, bits, bias):
    problem = _layer(f, 3, samples, dead, bits, bias)
    stand_in = solve._stand_in(problem)
    m = min(problem.num_coordinates, solve.WARM_UP_INPUTS)
    assert stand_in.num_coordinates == m and stand_in.num_neurons == solve.WARM_UP_NEURONS
    assert rank_deficient(stand_in) == rank_deficient(problem)
    assert stand_in.has_bias == problem.has_bias and stand_in.grid.bits == problem.grid.bits
    assert stand_in.grid.granularity == problem.grid.granularity and stand_in.grid.scheme == problem.grid.scheme
    share = np.count_nonzero(problem.dead) / problem.num_coordinates
    assert abs(np.count_nonzero(stand_in.dead) / m - share) <= 1.5 / m
    assert (np.count_nonzero(stand_in.dead) * 8 >= m) == (np.count_nonzero(problem.dead) * 8 >= problem.dead.size)


def test_the_solve_loop_warms_each_kind_once_before_the_clock(monkeypatch):
    """The first solve of a kind records its warm-up, which its ``seconds`` do not count, the next none (with
    or without a limit: the limit is not part of the kind); a baseline warms on its own, a per-neuron sampler
    its warm start's baseline alone (the same kind as that baseline's own solve). A sampler whose own defaults
    hold the limit warms too, and its warm-up's solve does not warm again (no recursion)."""
    monkeypatch.setattr(solve, "_warmed", set())
    calls = []
    stand_in = solve._stand_in

    def slow(problem):  # a warm-up the layer's seconds would show if they counted it
        calls.append(problem.name)
        time.sleep(2.0)
        return stand_in(problem)

    monkeypatch.setattr(solve, "_stand_in", slow)
    _, problem = layer_problem(20, 40, 5, 3)
    sampler = LayerSASampler()
    first = solve.quantize_layer(problem, "qubo", sampler, seed=1, time_limit=30)
    assert first.info["warm_up_seconds"] >= 2.0 and first.seconds < 2.0 and len(calls) == 1
    second = solve.quantize_layer(problem, "qubo", sampler, seed=1, time_limit=30)
    assert "warm_up_seconds" not in second.info and len(calls) == 1
    np.testing.assert_array_equal(first.integers, second.integers)  # the warm-up leaves the solve as it was
    solve.quantize_layer(problem, "qubo", sampler, seed=1)  # the same kind without a limit
    assert len(calls) == 1
    per_neuron = solve.quantize_layer(problem, "qubo", get_sampler("sa"), seed=1, num_reads=2)  # its warm start's
    assert per_neuron.info["warm_up_seconds"] >= 2.0 and len(calls) == 2
    assert "warm_up_seconds" not in solve.quantize_layer(problem, "gptq-restricted-pivot").info  # the same kind
    gptq = solve.quantize_layer(problem, "gptq")
    assert gptq.info["warm_up_seconds"] >= 2.0 and gptq.seconds < 2.0 and len(calls) == 3
    assert "warm_up_seconds" not in solve.quantize_layer(problem, "gptq").info and len(calls) == 3
    solve.quantize_layer(problem, "qubo", get_sampler("sa"), warm_start=None, seed=1, num_reads=2)
    assert len(calls) == 3  # no warm start, nothing of ours to load
    solve._warmed.clear()
    third = solve.quantize_layer(problem, "qubo", LayerSASampler(time_limit=30), seed=1)  # the limit in its defaults
    assert third.info["warm_up_seconds"] >= 2.0 and len(calls) == 4


def test_a_sampler_with_other_defaults_is_another_kind(monkeypatch):
    """Two ``layer-sa`` samplers whose constructor defaults differ (``effort``) are two kinds, each warmed before
    its first layer, though called with the same options; their time limits are not part of the kind."""
    monkeypatch.setattr(solve, "_warmed", set())
    calls = []
    stand_in = solve._stand_in
    monkeypatch.setattr(solve, "_stand_in", lambda problem: calls.append(problem.name) or stand_in(problem))
    _, problem = layer_problem(20, 30, 4, 2)
    solve.quantize_layer(problem, "qubo", LayerSASampler(), seed=0, time_limit=30)
    solve.quantize_layer(problem, "qubo", LayerSASampler(time_limit=20), seed=0)
    assert len(calls) == 1
    thorough = solve.quantize_layer(problem, "qubo", LayerSASampler(effort="thorough"), seed=0, time_limit=30)
    assert len(calls) == 2 and thorough.info["warm_up_seconds"] > 0
    assert "warm_up_seconds" not in solve.quantize_layer(problem, "qubo", LayerSASampler(effort="thorough"),
                                                         seed=0, time_limit=30).info


def test_a_failed_warm_up_warns_and_the_layer_goes_on(monkeypatch, caplog):
    """A stand-in whose solve fails does not stop the layer: a warning names the layer and the error (the
    layer's limit then counts the first loads), and the kind is not tried again."""
    monkeypatch.setattr(solve, "_warmed", set())

    def broken(problem):
        raise RuntimeError("no stand-in today")

    monkeypatch.setattr(solve, "_stand_in", broken)
    _, problem = layer_problem(20, 30, 4, 3)
    with caplog.at_level("WARNING", logger="qannealq.solve"):
        result = solve.quantize_layer(problem, "qubo", LayerSASampler(), seed=2, time_limit=30)
        again = solve.quantize_layer(problem, "qubo", LayerSASampler(), seed=2, time_limit=30)
    failed = [r for r in caplog.records if "warm-up" in r.getMessage()]
    assert len(failed) == 1 and "no stand-in today" in failed[0].getMessage() and problem.name in failed[0].getMessage()
    np.testing.assert_array_equal(result.integers, again.integers)
    assert "warm_up_seconds" not in again.info


def test_only_samplers_that_allow_it_are_warmed(monkeypatch):
    """``layer-sa`` and a composite of ours around it say ``properties["warm_up"]``; a whole-layer sampler that
    does not (a QPU's path, whose every call costs) is never warmed, nor a per-neuron one."""
    from qannealq.contract import LayerComposite, warms_up

    monkeypatch.setattr(solve, "_warmed", set())
    calls = []
    stand_in = solve._stand_in
    monkeypatch.setattr(solve, "_stand_in", lambda problem: calls.append(problem.name) or stand_in(problem))

    class Paid(LayerComposite):  # a whole-layer path that does not allow a warm-up
        @property
        def properties(self) -> dict:
            return {**super().properties, "warm_up": False}

    assert warms_up(LayerSASampler()) and warms_up(LayerComposite(LayerSASampler()))
    assert not warms_up(Paid(LayerSASampler())) and not warms_up(get_sampler("sa"))
    _, problem = layer_problem(20, 30, 4, 2)
    solve.quantize_layer(problem, "qubo", Paid(LayerSASampler()), seed=0, time_limit=30, warm_start=None)
    assert calls == []  # not the sampler; no warm start to warm either
    solve.quantize_layer(problem, "qubo", LayerComposite(LayerSASampler()), seed=0, time_limit=30)
    assert len(calls) == 1


def test_a_first_limited_layer_reads_its_start_s_fixed_costs_steady(monkeypatch):
    """Before a time-limited layer on a full-rank ``H``, the warm-up rehearses the warm start's first fixed costs
    at the layer's own shape (``qannealq.baselines.rehearse_start``): the fastest product and factorization are
    recorded for the rule that leaves the beam out (``SKIP_BEAM``), so that a first product that reads slow (fresh
    pages, cold BLAS buffers: here made to read 100 s) does not cost the first layer its beam, as it does
    without the rehearsal. The layer's own problem is left as it was (nothing formed, nothing timed on it), once
    per shape; none without a limit, nor on a rank-deficient ``H``."""
    from qannealq import baselines
    from qannealq._deadline import Deadline
    from qannealq.formulation import LayerProblem

    def fresh(rehearse=True):  # a fresh process's records
        monkeypatch.setattr(solve, "_warmed", set())
        monkeypatch.setattr(baselines, "_FASTEST", {})
        monkeypatch.setattr(baselines, "_REHEARSED", set())
        monkeypatch.setattr(solve, "rehearse_start", baselines.rehearse_start if rehearse else lambda problem: False)

    _, problem = layer_problem(31, 450, 12, 4, samples=1000)  # wider than its stand-in (WARM_UP_INPUTS)
    assert not rank_deficient(problem) and problem.num_coordinates > solve.WARM_UP_INPUTS
    live = int(np.count_nonzero(~problem.dead))
    fresh()
    own = {("cholesky", live), ("product", *problem.weights.shape)}  # the keys of the layer's shape
    assert solve.warm_up(problem, "qubo", LayerSASampler()) > 0  # the stand-in's own
    assert not baselines._REHEARSED and not own & set(baselines._FASTEST)  # no limit: no rehearsal
    assert solve.warm_up(problem, "qubo", LayerSASampler(), time_limit=2.0) > 0  # the kind warmed: the rehearsal
    assert own <= set(baselines._FASTEST) and baselines._REHEARSED == {(*problem.weights.shape, live)}
    assert "weight_products" not in vars(problem) and problem.product_seconds == 0.0
    assert solve.warm_up(problem, "qubo", LayerSASampler(), time_limit=2.0) == 0.0  # once per shape

    late = {}
    for rehearse in (True, False):
        fresh(rehearse)
        solve.warm_up(problem, "qubo", LayerSASampler(), time_limit=2.0)
        with monkeypatch.context() as cold:  # the layer's own first product read 100 s
            cold.setattr(LayerProblem, "product_seconds", property(lambda self: 100.0))
            deadline = Deadline(time.perf_counter() + 2.0)
            baselines.warm_start_integers(problem, "gptq-restricted-pivot", beam=64, deadline=deadline)
        late[rehearse] = deadline.late  # the beam left out (SKIP_BEAM)
    assert late == {True: False, False: True}

    fresh()
    _, singular = layer_problem(32, 300, 12, 4, samples=100)
    assert rank_deficient(singular)
    solve.warm_up(singular, "qubo", LayerSASampler(), time_limit=2.0)
    assert not baselines._REHEARSED
