"""The warm start's beams run on the whole-layer sampler's threads (``layer-sa``'s ``num_threads``): a run asked to
use one thread searches on one, beam included; the default is one per core, as before. And where the search
runs on one thread, the tight path before a population holds to more of the start's fixed costs left
(``ONE_THREAD_TIGHT``)."""

from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest

pytest.importorskip("numba")  # before the imports below: layer_sa loads the numba kernel

from helpers import layer_problem  # noqa: E402
from qannealq import _gptq_beam, _pool  # noqa: E402
from qannealq.backends import get_sampler  # noqa: E402
from qannealq.backends.layer_sa import ONE_THREAD_TIGHT, POPULATION_TIGHT, THOROUGH_TIGHT  # noqa: E402
from qannealq._deadline import TIGHT  # noqa: E402
from qannealq.contract import LayerComposite, warm_start_threads  # noqa: E402
from qannealq.errors import InvalidArgumentError  # noqa: E402
from qannealq.solve import quantize_layer  # noqa: E402


@pytest.fixture
def beam_pools(monkeypatch):
    """The worker counts of the beams' thread pools, as they are made (on a machine said to have 4 cores)."""
    made: list[int] = []

    class Recorded(concurrent.futures.ThreadPoolExecutor):
        def __init__(self, max_workers=None, *args, **kwargs):
            made.append(max_workers)
            super().__init__(max_workers, *args, **kwargs)

    monkeypatch.setattr(_gptq_beam, "ThreadPoolExecutor", Recorded)
    monkeypatch.setattr(_pool.os, "cpu_count", lambda: 4)
    return made


@pytest.mark.parametrize("threads, expected", [(None, 4), (1, 1), (3, 3)])
def test_the_warm_start_beam_runs_on_the_samplers_threads(beam_pools, threads, expected):
    _, problem = layer_problem(0, 24, 32, 4)  # 32 neurons: four groups of the beam, room for four threads
    sampler = get_sampler("layer-sa")
    done = quantize_layer(problem, "qubo", sampler, "layer-sa", seed=1, num_threads=threads, effort="default")
    assert beam_pools and set(beam_pools) == {expected}  # every beam of the solve loop's warm start
    beam_pools.clear()
    own = sampler.sample_layer(problem, seed=1, num_threads=threads)  # layer-sa's own warm start, no initial states
    assert beam_pools and set(beam_pools) == {expected}
    assert _pool.beam_thread_count() == 4  # the context ends with the start
    # the result does not depend on the threads (the beams' groups, the rows' generators are fixed)
    default = quantize_layer(problem, "qubo", sampler, "layer-sa", seed=1, effort="default")
    np.testing.assert_array_equal(done.integers, default.integers)
    np.testing.assert_array_equal(own.assignments, sampler.sample_layer(problem, seed=1).assignments)


def test_the_contract_asks_the_sampler_and_checks_its_answer():
    sampler = get_sampler("layer-sa")
    assert warm_start_threads(sampler, {"num_threads": 2}, 100) == 2
    assert warm_start_threads(sampler, {}, 100) is None  # one per core
    assert warm_start_threads(LayerComposite(sampler), {"num_threads": 1}, 100) == 1
    assert warm_start_threads(object(), {"num_threads": 1}, 100) is None  # a sampler without the hook

    class Odd:
        def warm_start_threads(self, inputs=None, **kwargs):
            return 0

    with pytest.raises(InvalidArgumentError, match="warm_start_threads"):
        warm_start_threads(Odd(), {}, 100)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_beam_threads_rejects_a_count_that_is_not_a_positive_integer(bad):
    with pytest.raises(InvalidArgumentError, match="beam_threads"):
        with _pool.beam_threads(bad):
            pass


@pytest.mark.parametrize("cores, threads, scaled", [(2, None, False), (2, 2, False), (8, 3, False), (2, 1, True),
                                                    (1, None, True), (1, 4, True)])
def test_one_search_thread_holds_the_tight_path_to_more_time_left(monkeypatch, cores, threads, scaled):
    monkeypatch.setattr(_pool.os, "cpu_count", lambda: cores)  # the os module's: layer_sa reads the same
    sampler = get_sampler("layer-sa")
    for effort, base in (("default", POPULATION_TIGHT), ("thorough", THOROUGH_TIGHT)):
        wide = sampler.warm_start_deadline(3073, effort=effort, num_threads=threads, time_limit=10.0)
        assert wide.tight == pytest.approx(base * ONE_THREAD_TIGHT if scaled else base)
        # a layer without a population keeps the rest's threshold, on any threads
        assert sampler.warm_start_deadline(785, effort="thorough", num_threads=threads, time_limit=10.0).tight == TIGHT
    assert ONE_THREAD_TIGHT > 1
    # the decision it moves: the same time left, 1.2 times the default's threshold in fixed costs, is tight on one
    # thread (the beam, then the polish and a descent) and not on two (the beam's share, then a population)
    wide = sampler.warm_start_deadline(3073, num_threads=threads, time_limit=1e6)
    fixed = wide.left() / (1.2 * POPULATION_TIGHT)
    assert wide.search(fixed).polish is scaled


@pytest.mark.parametrize("cores, requested, expected, capped", [(4, None, 4, 4), (4, 0, 4, 4), (4, 2, 2, 2),
                                                                 (4, 6, 6, 4), (None, None, 1, 1), (None, 3, 3, 1)])
def test_one_thread_count_serves_the_run_the_thresholds_and_the_beams(monkeypatch, cores, requested, expected,
                                                                      capped):
    from qannealq.backends._layer_dense import DenseQubos
    from qannealq.backends._layer_run import make_run
    from qannealq.backends.layer_sa import _search_threads

    monkeypatch.setattr(_pool.os, "cpu_count", lambda: cores)  # None: a platform that cannot tell
    assert _pool.thread_count(requested) == expected
    assert _pool.thread_count(requested, cap=True) == capped
    _, problem = layer_problem(0, 12, 4, 4)
    params = get_sampler("layer-sa")._params({"num_threads": requested or None})
    run, device = make_run(DenseQubos.from_problem(problem), params)
    assert device == "cpu" and run.threads == expected  # the run's threads: num_threads as given
    assert _search_threads(params) == capped  # the thresholds' threads: at most the cores
    with _pool.beam_threads(requested or None):
        assert _pool.beam_thread_count() == expected
