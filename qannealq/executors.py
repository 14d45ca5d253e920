"""Scale-out on an existing engine: any ``concurrent.futures.Executor`` runs neuron solves, sweep cells or tasks.

``make_executor(spec)`` turns the ``--executor`` text into an executor (None means serial, in this process):

* ``serial`` (or None): no executor; the solve loop submits every neuron before resolving any, which is what
  cloud and QPU samplers want (their calls overlap without any pool).
* ``threads:N``: a :class:`~concurrent.futures.ThreadPoolExecutor` of N threads (useful for samplers that
  release the GIL or wait on the network).
* ``processes:N``: a :class:`ProcessExecutor`, N local worker processes (``forkserver`` start), each with its
  BLAS/OpenMP/torch threads limited to ``threads_per_worker`` (default ``max(1, cores // N)``).
* ``dask://HOST:PORT``: a :class:`DaskExecutor` on the user's running Dask scheduler
  (``dask.distributed.Client``, extra ``qannealq[dask]``; the workers need qannealq installed, same version).

Results equal the serial run's for a fixed seed: every neuron's seed is derived from the layer seed before
anything is sent, so neither the executor nor the number of workers changes a sample.

What is sent must pickle. ``map`` sends each call's arguments; both executors here group the calls into a
few chunks (about four per worker) so that an argument shared by every call (the layer's
:class:`~qannealq.formulation.LayerProblem`, whose ``H`` is ``m x m``) travels once per chunk, not once per
neuron; :class:`DaskExecutor` scatters such an argument to every worker once, and keeps it there for the
next ``map`` (a layer's next batch) where its content is the same. A sampler that does not pickle
(one holding a licence or cloud client) is sent by name, with its constructor options, by :func:`portable_sampler`
and built in the worker.

For commands that run independent units (sweep cells, compare tasks), :func:`run_tasks` maps a picklable
function over them with any executor, or serially, and yields each result as it finishes so that it can be
written to the results store at once.
"""

from __future__ import annotations

import atexit
import logging
import math
import multiprocessing
import os
import pickle
import re
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import dimod

from qannealq._dask import DaskExecutor, ExecutorConnectionError, StopOnError
from qannealq.errors import BackendError, InvalidArgumentError

__all__ = ["ExecutorSpec", "parse_executor", "make_executor", "ProcessExecutor", "DaskExecutor", "NamedSampler",
           "portable_sampler", "run_tasks", "describe_executor", "ExecutorConnectionError"]

logger = logging.getLogger(__name__)

_SPEC = re.compile(r"^(threads|processes):(\d+)$")
_DASK = re.compile(r"^dask://([^:/\s]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$")
_HELP = "use serial, threads:N, processes:N or dask://HOST:PORT"


@dataclass(frozen=True)
class ExecutorSpec:
    """A parsed ``--executor`` value.

    Attributes:
        kind: ``serial``, ``threads``, ``processes`` or ``dask``.
        workers: number of threads or processes (None for serial and dask).
        address: the scheduler's ``tcp://HOST:PORT`` (dask only).
    """

    kind: str
    workers: int | None = None
    address: str | None = None

    def __str__(self) -> str:
        if self.kind == "dask":
            return "dask://" + str(self.address).removeprefix("tcp://")
        return self.kind if self.workers is None else f"{self.kind}:{self.workers}"


def parse_executor(spec: str | None) -> ExecutorSpec:
    """Check the syntax of an ``--executor`` value (no connection, no process started).

    Raises:
        InvalidArgumentError: an unknown form or a worker count below 1, naming the value.
    """
    if spec is None or spec in ("", "serial", "none"):
        return ExecutorSpec("serial")
    if not isinstance(spec, str):
        raise InvalidArgumentError(f"--executor={spec!r} must be text: {_HELP}")
    match = _SPEC.match(spec.strip())
    if match:
        workers = int(match.group(2))
        if workers < 1:
            raise InvalidArgumentError(f"--executor={spec!r}: the number of workers must be >= 1")
        return ExecutorSpec(match.group(1), workers)
    match = _DASK.match(spec.strip())
    if match and 0 < int(match.group(2)) < 65536:
        return ExecutorSpec("dask", address=f"tcp://{match.group(1)}:{int(match.group(2))}")
    raise InvalidArgumentError(f"--executor={spec!r} is not understood: {_HELP} (e.g. processes:4 or "
                               "dask://scheduler.example:8786)")


def make_executor(spec: "str | ExecutorSpec | Executor | None", threads_per_worker: int | None = None,
                  connect_timeout: float = 10.0) -> Executor | None:
    """The executor named by ``spec`` (None for serial); use it in a ``with`` block to release it.

    Args:
        spec: ``serial``, ``threads:N``, ``processes:N``, ``dask://HOST:PORT``, a parsed
            :class:`ExecutorSpec`, or an executor (returned as is).
        threads_per_worker: ``processes:N`` only: BLAS/OpenMP/torch threads per worker process
            (default ``max(1, cores // N)``).
        connect_timeout: seconds to wait for a Dask scheduler.

    Raises:
        InvalidArgumentError: a bad ``spec``.
        BackendUnavailableError: ``dask://`` without the ``dask`` extra installed, or a Dask worker without qannealq.
        ExecutorConnectionError: the Dask scheduler does not answer.
    """
    if spec is None or isinstance(spec, Executor):
        return spec
    parsed = spec if isinstance(spec, ExecutorSpec) else parse_executor(spec)
    if parsed.kind == "threads":
        return ThreadExecutor(parsed.workers, thread_name_prefix="qannealq")
    if parsed.kind == "processes":
        return ProcessExecutor(parsed.workers, threads_per_worker)
    if parsed.kind == "dask":
        return DaskExecutor.connect(parsed.address, connect_timeout)
    return None


def describe_executor(executor: Executor | None) -> str:
    """The executor in words, for messages: ``serial``, ``threads:2``, ``processes:2 (1 thread each)``..."""
    if executor is None:
        return "serial (this process)"
    describe = getattr(executor, "describe", None)
    if callable(describe):
        return describe()
    if isinstance(executor, ThreadPoolExecutor):
        return f"threads:{executor._max_workers}"
    return type(executor).__name__


def _limit_threads(threads: int) -> None:
    """Worker initializer: at most ``threads`` BLAS/OpenMP/torch threads in this worker process."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _context() -> multiprocessing.context.BaseContext:
    """``forkserver`` (never ``fork``: torch and OpenMP threads do not survive it) with the solve loop
    imported once in the server, so each worker starts by a fork of it; ``spawn`` where there is no
    forkserver."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["qannealq.solve"])
    return context


class ThreadExecutor(StopOnError, ThreadPoolExecutor):
    """``threads:N``: a thread pool whose ``with`` block, left by an exception (Ctrl-C, SIGTERM), cancels the
    calls not started (the calls running finish: a thread cannot be stopped) instead of running them all."""


class ProcessExecutor(StopOnError, ProcessPoolExecutor):
    """``processes:N``: local worker processes whose ``map`` sends the calls in a few chunks.

    Within a chunk, pickle writes an argument shared by all its calls once, so a layer's ``H`` travels once
    per chunk (about four chunks per worker), not once per neuron. A ``with`` block left by an exception
    (Ctrl-C, SIGTERM) cancels the calls not started and stops the workers (``shutdown(wait=False,
    cancel_futures=True)``): the batch's results would be thrown away.
    """

    def __init__(self, workers: int, threads_per_worker: int | None = None) -> None:
        cores = os.cpu_count() or 1
        self.workers = workers
        self.threads_per_worker = threads_per_worker or max(1, cores // workers)
        super().__init__(workers, mp_context=_context(), initializer=_limit_threads,
                         initargs=(self.threads_per_worker,))

    def describe(self) -> str:
        return f"processes:{self.workers} ({self.threads_per_worker} thread(s) per worker)"

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """``ProcessPoolExecutor.shutdown``; with ``wait=False`` and ``cancel_futures`` the workers are also
        stopped (terminated), so the chunks they are running (whose results nobody will read) end now."""
        workers = list((self._processes or {}).values()) if cancel_futures and not wait else []
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
        for process in workers:
            if process.is_alive():
                process.terminate()

    def map(self, fn: Callable, *iterables: Iterable, timeout: float | None = None, chunksize: int = 0):
        """``ProcessPoolExecutor.map``; ``chunksize`` 0 (default) gives about four chunks per worker. An error
        that cannot travel back from a worker (:class:`_ErrorsThatTravel`) comes back as a ``BackendError``."""
        calls = list(zip(*iterables))
        if chunksize < 1:
            chunksize = max(1, math.ceil(len(calls) / (4 * self.workers)))
        return super().map(_ErrorsThatTravel(fn), *zip(*calls), timeout=timeout, chunksize=chunksize) \
            if calls else iter(())


class _ErrorsThatTravel:
    """``fn`` in a process worker, whose error is re-raised as a ``BackendError`` (its type and text) where it
    would not survive the way back: an exception whose class needs other arguments than its message (a vendor
    SDK's) failed to unpickle in the parent, which then reported "BrokenProcessPool: a process in the process
    pool was terminated abruptly" instead of the error."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn

    def __call__(self, *args: Any) -> Any:
        try:
            return self.fn(*args)
        except Exception as exc:
            try:
                pickle.loads(pickle.dumps(exc))
            except Exception:
                raise BackendError(f"{type(exc).__module__}.{type(exc).__name__} in a worker: {exc}") from None
            raise


class NamedSampler(dimod.Sampler):
    """A registry backend sent by name and built where it is used (in the worker), with constructor options.

    Pickles as ``(name, options, wrap)`` only, so a sampler holding a licence or a cloud client never travels.
    ``wrap(name, sampler)`` (a picklable callable, e.g. a ``functools.partial`` of a module-level function)
    rebuilds the composites the sender had around it (retries, decomposition) in the worker too.
    """

    def __init__(self, name: str, wrap: Callable[[str, dimod.Sampler], dimod.Sampler] | None = None,
                 **options: Any) -> None:
        self.name = name
        self.wrap = wrap
        self.options = options
        self._sampler: dimod.Sampler | None = None
        self._copy = False  # True in a worker: its retries draw their jitter from a generator of their own
        self._sender = os.getpid()  # a copy in another process shares that process's build (_BUILT)

    @property
    def sampler(self) -> dimod.Sampler:
        if self._sampler is None:
            key = _build_key(self) if self._copy and os.getpid() != self._sender else None
            self._sampler = _BUILT.get(key) if key is not None else None
            if self._sampler is None:
                self._sampler = self._build()
                if key is not None:
                    _remember(key, self._sampler)
        return self._sampler

    def _build(self) -> dimod.Sampler:
        from qannealq.backends import get_sampler

        sampler = get_sampler(self.name, **self.options)
        sampler = sampler if self.wrap is None else self.wrap(self.name, sampler)
        if self._copy:
            _fresh_jitter(sampler)
        return sampler

    @property
    def parameters(self) -> dict:
        return self.sampler.parameters

    @property
    def properties(self) -> dict:
        return self.sampler.properties

    def sample(self, bqm: dimod.BinaryQuadraticModel, **kwargs: Any) -> dimod.SampleSet:
        return self.sampler.sample(bqm, **kwargs)

    def __getstate__(self) -> dict:
        return {"name": self.name, "wrap": self.wrap, "options": self.options, "_sampler": None, "_copy": True,
                "_sender": self._sender}

    def __repr__(self) -> str:
        return f"NamedSampler({self.name!r})"


_BUILT: dict[bytes, dimod.Sampler] = {}
"""The samplers a worker process built by name, by ``(name, options, wrap)`` and thread: each chunk of a layer
arrives as a new copy of its :class:`NamedSampler`, and built each one anew (a cloud sampler: a solver lookup and
a client of its own per chunk, none of them closed). Closed when the worker exits (:func:`_close_built`)."""


def _build_key(named: NamedSampler) -> bytes | None:
    """The build's key in this worker: its name, options and wrap, and the thread (a Dask worker of several
    threads gives each its own, as before: a sampler is not assumed safe to share between threads)."""
    try:
        return pickle.dumps((named.name, sorted(named.options.items()), named.wrap, threading.get_ident()))
    except Exception:  # options that do not pickle the same way twice: build this copy's own
        return None


def _remember(key: bytes, sampler: dimod.Sampler) -> None:
    """Keep a worker's build for the next copies, and close them all when the worker exits: a process worker
    (multiprocessing's) ends without running ``atexit``, so its exit runs a finalizer registered in it."""
    if not _BUILT:
        import multiprocessing.util

        multiprocessing.util.Finalize(None, _close_built, exitpriority=10)
        atexit.register(_close_built)
    _BUILT[key] = sampler


def _close_built() -> None:
    for sampler in _BUILT.values():
        close = getattr(sampler, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # the process is ending: a client that fails to close is let go
                pass
    _BUILT.clear()


def _fresh_jitter(sampler: dimod.Sampler | None) -> None:
    """A worker's build by name: each composite that retries with jitter (``fresh_jitter``) gets a generator of
    its own, not the sender's seed's (workers would retry in step)."""
    while sampler is not None:
        fresh = getattr(sampler, "fresh_jitter", None)
        if callable(fresh):
            fresh()
        sampler = (getattr(sampler, "children", None) or [None])[0]


def portable_sampler(sampler: dimod.Sampler, name: str, executor: Executor | None,
                     wrap: Callable[[str, dimod.Sampler], dimod.Sampler] | None = None) -> dimod.Sampler:
    """``sampler`` itself when it can go to ``executor``'s workers, else a :class:`NamedSampler` of ``name``.

    Threads (and serial runs) share the instance; process and Dask workers get a pickled copy when the
    sampler pickles, else the sampler built by name in each worker, with the constructor options
    :func:`~qannealq.backends.get_sampler` built it with (less any secret), and wrapped there by ``wrap`` (which
    must rebuild the composites ``sampler`` has around the registry backend).

    Raises:
        InvalidArgumentError: ``sampler`` does not pickle and was not built by ``get_sampler(name, ...)``, so the
            workers could not build the same sampler.
    """
    if executor is None or isinstance(executor, ThreadPoolExecutor):
        return sampler
    try:
        pickle.dumps(sampler)
        return sampler
    except Exception as exc:  # noqa: BLE001 - any pickling failure: send the name instead
        from qannealq.backends import built_options

        options = built_options(sampler, name)
        if options is None:
            raise InvalidArgumentError(
                f"the {type(sampler).__name__} sampler (backend {name!r}) cannot be sent to the workers of "
                f"{describe_executor(executor)}: it does not pickle ({type(exc).__name__}: {exc}) and the options it "
                f"was built with are unknown; build it with qannealq.backends.get_sampler({name!r}, **options) so "
                "that each worker builds it with the same options, or use --executor threads:N or serial") from exc
        logger.info("sampler %r does not pickle: workers build it by name with options %s", name, sorted(options))
        return NamedSampler(name, wrap=wrap, **options)


def run_tasks(fn: Callable[[Any], Any], tasks: Iterable[Any],
              executor: Executor | None = None) -> Iterator[tuple[int, Any]]:
    """``(index, fn(task))`` for every task, each as soon as it finishes.

    With ``executor`` None the tasks run here, in order; otherwise all are submitted first and the results
    come back in completion order (so a command can store each finished unit at once). ``fn`` and the tasks
    must pickle for process and Dask executors (a module-level function and plain data).
    """
    tasks = list(tasks)
    if executor is None:
        for index, task in enumerate(tasks):
            yield index, fn(task)
        return
    futures = {executor.submit(fn, task): index for index, task in enumerate(tasks)}
    try:
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        for future in futures:
            future.cancel()
