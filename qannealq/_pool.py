"""Worker threads started once per process and kept, for compiled kernels that release the GIL.

Starting a thread took about a millisecond on the 2-core machine this was measured on (the new thread waits for
the GIL before it reports itself started): ``layer-sa`` started four per solve (the partner ranking's and its
kernel calls' pools), about 4 ms of a ``fast`` solve of 40-50 ms on MNIST's first layer. :func:`shared_pool`
keeps one pool per size for the whole process.

A task given to a shared pool must not wait for another task of the same pool (a kernel call, not a caller of
pools): with every worker waiting, nothing would run the tasks waited for. A forked child gets fresh pools (the
parent's threads do not exist in it).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["shared_pool"]

_POOLS: dict[int, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def shared_pool(workers: int) -> ThreadPoolExecutor:
    """The process's pool of ``workers`` threads (started on first use, kept until the process ends)."""
    workers = max(1, int(workers))
    with _LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix=f"qannealq-pool{workers}")
        return pool


def _forget() -> None:  # in a forked child: the pools' threads were the parent's
    global _LOCK
    _POOLS.clear()
    _LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)
