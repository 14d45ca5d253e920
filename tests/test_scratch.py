"""The process's kept work arrays (``qannealq._pool.scratch``): a wide layer's copies of ``H`` and the beam's and
chain moves' float32 arrays come from buffers kept between solves instead of from fresh pages."""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from helpers import layer_problem  # noqa: E402
from qannealq import _pool, baselines, solve  # noqa: E402
from qannealq.backends.layer_sa import LayerSASampler  # noqa: E402
from qannealq.baselines import rank_deficient  # noqa: E402


def released(pool: list) -> None:
    """Wait (at most 2 s) until nothing but the pool holds its buffers: a solve's last kernel calls return before
    the worker threads have dropped their tasks' arguments. Fails where a buffer stays held (kept by a solve)."""
    deadline = time.perf_counter() + 2.0
    while any(sys.getrefcount(pool[k]) > 2 for k in range(len(pool))):
        assert time.perf_counter() < deadline, "a solve keeps a work array after it returned"
        time.sleep(0.01)


@pytest.fixture
def pool(monkeypatch):
    """An empty pool that keeps arrays from 64 KiB on (the tests' layers are small)."""
    monkeypatch.setattr(_pool, "_SCRATCH", [])
    monkeypatch.setattr(_pool, "SCRATCH_BYTES", 2 ** 16)
    monkeypatch.setattr(baselines, "_PREPARED", set())
    return _pool._SCRATCH


def test_a_kept_buffer_is_handed_out_again_only_once_nothing_else_holds_it(pool, monkeypatch):
    a = _pool.scratch((200, 200))
    b = _pool.scratch((200, 200))
    assert a is not b and a.dtype == np.float64 and a.flags.c_contiguous  # both held: two buffers
    ids = {id(a), id(b)}
    del a
    c = _pool.scratch((200, 200))
    assert id(c) in ids and len(pool) == 2  # the released one, no new one
    view = c[::2]
    del c
    d = _pool.scratch((200, 200))
    assert d is not view.base and len(pool) == 3  # a view holds its buffer
    assert _pool.scratch((200, 200), np.float32).dtype == np.float32 and len(pool) == 4  # another dtype: its own
    small = _pool.scratch((10, 10))
    assert small.shape == (10, 10) and len(pool) == 4  # below SCRATCH_BYTES: new, not kept
    del d, view
    monkeypatch.setattr(_pool, "SCRATCH_KEEP", 3 * 200 * 200 * 8)
    e = _pool.scratch((300, 300))  # beyond what is kept: the oldest free buffers go, the held and newest stay
    assert any(x is e for x in pool) and sum(x.nbytes for x in pool) <= 3 * 200 * 200 * 8 + e.nbytes
    assert len(pool) < 5


def test_prefault_keeps_touched_free_buffers(pool):
    _pool.prefault((150, 150), np.float32, 2)
    assert [(x.shape, x.dtype) for x in pool] == [((150, 150), np.float32)] * 2
    assert all(not x.any() for x in pool)  # touched (zeros), and free: handed out again without a new one
    held = [_pool.scratch((150, 150), np.float32) for _ in range(2)]
    assert len(pool) == 2 and held[0] is not held[1]
    _pool.prefault((10, 10), np.float64, 3)  # below SCRATCH_BYTES: nothing kept
    assert len(pool) == 2
    del held
    source = np.arange(150 * 150, dtype=np.float64).reshape(150, 150)
    copy = _pool.kept_copy(source, np.float32)  # cast into a free kept buffer, no new one
    assert copy.dtype == np.float32 and len(pool) == 2 and any(x is copy for x in pool)
    np.testing.assert_array_equal(copy, source.astype(np.float32))


@pytest.mark.parametrize("time_limit", [None, 60.0])
def test_a_layer_s_second_solve_takes_its_work_arrays_from_the_kept_buffers(pool, monkeypatch, time_limit):
    """A rank-deficient layer of chain moves: its two dampings' copies of ``H`` among the live inputs (side by side),
    the beam's float32 factor and block columns and the chain moves' float32 ``M`` come from the pool, and a second
    solve of the layer takes the same buffers (none new); the states are those of a solve without the pool. Without
    a limit the beams read GPTQ's factor, under one (here never reached) the Cholesky factor."""
    _, problem = layer_problem(41, 300, 10, 4, samples=120)
    assert rank_deficient(problem)
    m = int(np.count_nonzero(~problem.dead))
    sampler = LayerSASampler(chain=4, num_reads=2, num_sweeps=4, time_limit=time_limit)

    second_info = []

    def run():
        result = solve.quantize_layer(problem, "qubo", sampler=sampler, seed=3)
        second_info[:] = [result.info]
        return result.integers

    first = run()
    released(pool)
    kept = [(x.shape, x.dtype) for x in pool]
    assert kept.count(((m, m), np.float64)) >= 2  # the factorizations' copies, side by side
    assert kept.count(((m, m), np.float32)) >= 2  # the beam's factor and block columns (the chain moves' M after)
    buffers = sorted(id(x) for x in pool if x.shape == (m, m))
    asked: list = []
    plain = _pool.scratch

    def spy(shape, dtype=None):
        asked.append((tuple(shape), np.dtype(np.float64 if dtype is None else dtype)))
        return plain(shape, dtype)

    monkeypatch.setattr(_pool, "scratch", spy)  # every work array goes through it, the row gathers' included
    second = run()
    assert not time_limit or not second_info[0].get("time_limited")
    assert asked.count(((m, m), np.float64)) == 2  # each damping's copy
    # each beam's factor and columns, then the chains' M: the damping pilot's two beams (here every neuron), the
    # V-BLAST order's, and under a limit one more, since its pilot's beams are narrow and only choose the damping
    beams = 4 if time_limit else 3
    assert asked.count(((m, m), np.float32)) == 2 * beams + 1
    # the same buffers, no new one (the row gathers' work arrays, (m, inputs), are one or two: as many as the two
    # copies happened to take at once)
    assert sorted(id(x) for x in pool if x.shape == (m, m)) == buffers
    np.testing.assert_array_equal(first, second)
    monkeypatch.setattr(_pool, "SCRATCH_BYTES", 2 ** 62)  # no pool
    np.testing.assert_array_equal(run(), first)


def test_the_warm_up_touches_a_limited_layer_s_work_arrays_once(pool, monkeypatch):
    """Before a time-limited layer's clock the warm-up touches the work arrays of its shape
    (``qannealq.baselines.prepare_start``): two float64 and two float32 arrays of its live inputs, free, once per
    shape; none without a limit."""
    _, problem = layer_problem(42, 450, 10, 4, samples=120)  # wider than its stand-in (WARM_UP_INPUTS)
    m = int(np.count_nonzero(~problem.dead))
    assert problem.num_coordinates > solve.WARM_UP_INPUTS
    monkeypatch.setattr(solve, "_warmed", set())
    solve.warm_up(problem, "qubo", LayerSASampler())
    assert not any(x.shape == (m, m) for x in pool)  # no limit: nothing prepared
    solve.warm_up(problem, "qubo", LayerSASampler(), time_limit=5.0)
    mine = sorted(str(x.dtype) for x in pool if x.shape == (m, m))
    assert mine == ["float32", "float32", "float64", "float64"] and baselines._PREPARED == {m}
    count = len(pool)
    assert not baselines.prepare_start(problem) and len(pool) == count  # once per shape
