"""Worker threads started once per process and kept, for compiled kernels that release the GIL.

Starting a thread took about a millisecond on the 2-core machine this was measured on (the new thread waits for
the GIL before it reports itself started): ``layer-sa`` started four per solve (the partner ranking's and its
kernel calls' pools), about 4 ms of a ``fast`` solve of 40-50 ms on MNIST's first layer. :func:`shared_pool`
keeps one pool per size for the whole process.

:func:`blas_threads` limits the BLAS libraries' threads for a block of code through one threadpoolctl controller
kept for the process: ``threadpool_limits`` looks up the loaded libraries afresh on every call, 1.2 ms each, and
the warm start of ``layer-sa``'s default took four or five of them (its factorizations, GPTQ starts, energies
and beam side by side), about 5 ms of the 0.1 s a limit of 5 GPTQ times gives it on MNIST's first layer.

:func:`beam_threads` sets, for a block of code, the threads the warm start's beams run on (default: one per core):
the solve loop runs a whole-layer sampler's warm start in its sampler's threads.

A task given to a shared pool must not wait for another task of the same pool (a kernel call, not a caller of
pools): with every worker waiting, nothing would run the tasks waited for. A forked child gets fresh pools (the
parent's threads do not exist in it).
"""

from __future__ import annotations

import contextvars
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache
from typing import Any, Iterator

from qannealq.checks import is_count
from qannealq.errors import InvalidArgumentError

__all__ = ["shared_pool", "helper_pool", "blas_threads", "beam_threads", "beam_thread_count", "thread_count",
           "scratch", "kept_copy", "prefault"]

_POOLS: dict[int | str, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def shared_pool(workers: int) -> ThreadPoolExecutor:
    """The process's pool of ``workers`` threads (started on first use, kept until the process ends)."""
    workers = max(1, int(workers))
    with _LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix=f"qannealq-pool{workers}")
        return pool


def helper_pool() -> ThreadPoolExecutor:
    """The process's one-thread pool for a leaf task run beside its caller's own work (a task that uses no pool
    itself and waits for nothing), e.g. a BLAS product while the caller factors a matrix: it never waits on a pool
    its caller may be a task of, as a shared pool's task may not (started on first use, kept)."""
    with _LOCK:
        pool = _POOLS.get("helper")
        if pool is None:
            pool = _POOLS["helper"] = ThreadPoolExecutor(1, thread_name_prefix="qannealq-helper")
        return pool


@lru_cache(maxsize=1)
def _controller() -> Any:
    """The process's threadpoolctl controller, made once numpy's and scipy's BLAS (each its own OpenBLAS) are
    loaded: the libraries whose threads :func:`blas_threads` limits."""
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def blas_threads(limit: int | None) -> AbstractContextManager:
    """``with blas_threads(k):`` runs its block with at most ``k`` threads in each BLAS library (numpy's, scipy's),
    then restores their counts, as ``threadpool_limits(k, user_api="blas")`` does, without its lookup of the
    loaded libraries; None: no limit (the caller's threads)."""
    if limit is None:
        return nullcontext()
    return _controller().limit(limits=int(limit), user_api="blas")


#: The threads of the beams run in this context (:func:`beam_threads`; None: one per core).
_THREADS: contextvars.ContextVar[int | None] = contextvars.ContextVar("beam_threads", default=None)


@contextmanager
def beam_threads(threads: int | None) -> Iterator[None]:
    """``with beam_threads(k):`` the beams begun in its block (:func:`qannealq._gptq_beam.beam_search` without
    ``threads``, and a per-neuron beam start's pool, :func:`qannealq.baselines.warm_start_integers`) run on at most
    ``k`` threads; None: one per core, as outside it. The solve loop runs a whole-layer sampler's warm start in its
    sampler's threads (:func:`qannealq.contract.warm_start_threads`: ``layer-sa``'s ``num_threads``), so that a run
    on one thread searches on one, beam included (its factorizations keep their BLAS threads)."""
    if threads is not None and not is_count(threads):
        raise InvalidArgumentError(f"beam_threads({threads!r}): the beams' threads must be an integer >= 1, or "
                                   "None (one per core)")
    token = _THREADS.set(None if threads is None else int(threads))
    try:
        yield
    finally:
        _THREADS.reset(token)


def thread_count(requested: int | None = None, cap: bool = False) -> int:
    """The threads of a run asked for ``requested`` (None or 0: one per core), at least one; with ``cap``, at
    most the cores. The one resolution of a thread count that the solvers share: ``layer-sa``'s run and its
    per-neuron runs (:class:`qannealq.backends._layer_run._Run`, ``num_threads`` as given), its tight thresholds
    (capped: more threads than cores search no faster) and the beams (:func:`beam_thread_count`)."""
    cores = os.cpu_count() or 1
    threads = int(requested or cores)
    return max(1, min(threads, cores) if cap else threads)


def beam_thread_count() -> int:
    """The threads a beam begun here runs on (:func:`beam_threads`'s, else one per core)."""
    return thread_count(_THREADS.get())


#: Work arrays of at least this many bytes come from :func:`scratch`'s kept buffers; smaller ones are new. glibc
#: serves blocks above 32 MiB by fresh mappings and returns them on free; touching such pages again took 20-500 ms
#: now and then on this machine (one 75 MB copy in about fifteen, more after a pause), and a factorization's copy
#: of CIFAR-10's ``H`` is one (docs/layer-sa.md, "Fresh pages for the factorizations' copies").
SCRATCH_BYTES = 2 ** 24
#: The most bytes :func:`scratch` keeps for reuse (the oldest free buffers are dropped beyond it).
SCRATCH_KEEP = 2 ** 30
_SCRATCH: list[Any] = []  # kept buffers, the most recently handed out last
_SCRATCH_LOCK = threading.Lock()


def scratch(shape: tuple[int, ...], dtype: Any = None) -> Any:
    """A C-contiguous work array of ``shape`` and ``dtype`` (default float64), its contents undefined: a kept
    buffer that nothing else references any more where one of that shape and dtype is free, else a new one,
    kept (from :data:`SCRATCH_BYTES` bytes on; smaller arrays are simply new). The caller may keep it, or views
    of it, as long as it likes: a buffer is handed out again only once no reference but the pool's is left."""
    import sys

    import numpy as np

    dtype = np.dtype(np.float64 if dtype is None else dtype)
    shape = tuple(int(k) for k in shape)
    if not kept(shape, dtype):
        return np.empty(shape, dtype)
    with _SCRATCH_LOCK:
        for k in range(len(_SCRATCH)):
            # free: referenced by the pool's list and getrefcount's argument alone (a view references its base)
            if _SCRATCH[k].shape == shape and _SCRATCH[k].dtype == dtype and sys.getrefcount(_SCRATCH[k]) <= 2:
                _SCRATCH.append(_SCRATCH.pop(k))
                return _SCRATCH[-1]
        _SCRATCH.append(np.empty(shape, dtype))
        total = sum(b.nbytes for b in _SCRATCH)
        k = 0
        while total > SCRATCH_KEEP and k < len(_SCRATCH) - 1:  # the oldest free ones beyond what is kept
            if sys.getrefcount(_SCRATCH[k]) <= 2:
                total -= _SCRATCH.pop(k).nbytes
            else:
                k += 1
        return _SCRATCH[-1]


def kept(shape: tuple[int, ...], dtype: Any = None) -> bool:
    """Whether :func:`scratch` keeps arrays of ``shape`` and ``dtype`` (default float64): from
    :data:`SCRATCH_BYTES` bytes on."""
    import numpy as np

    return int(np.prod(shape, dtype=np.int64)) * np.dtype(np.float64 if dtype is None else dtype).itemsize \
        >= SCRATCH_BYTES


def kept_copy(array: Any, dtype: Any = None) -> Any:
    """A C-contiguous copy of ``array`` (cast to ``dtype``, default its own) in a :func:`scratch` work array."""
    import numpy as np

    out = scratch(array.shape, array.dtype if dtype is None else dtype)
    np.copyto(out, array, casting="same_kind")
    return out


def prefault(shape: tuple[int, ...], dtype: Any = None, count: int = 1) -> None:
    """Make sure :func:`scratch` keeps at least ``count`` buffers of ``shape`` and ``dtype`` whose pages are touched
    (a warm-up before a time-limited solve, whose clock does not count it): the first solve of a shape in a process
    then takes its work arrays from them instead of from fresh pages. Arrays below :data:`SCRATCH_BYTES`: nothing."""
    if not kept(shape, dtype):
        return
    held = [scratch(shape, dtype) for _ in range(int(count))]  # distinct: each is held while the next is asked for
    for buffer in held:
        buffer.fill(0)


def _forget() -> None:  # in a forked child: the pools' threads were the parent's
    global _LOCK, _SCRATCH_LOCK
    _POOLS.clear()
    _LOCK = threading.Lock()
    _SCRATCH_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)
