"""``--executor dask://HOST:PORT``: the user's Dask scheduler behind the ``concurrent.futures.Executor`` interface.

Imported by :mod:`qannealq.executors`; ``dask.distributed`` itself is imported only when a client connects
(extra ``qannealq[dask]``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import pickle
import threading
import weakref
from concurrent.futures import BrokenExecutor, CancelledError, Executor, Future, InvalidStateError
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from qannealq.errors import BackendUnavailableError, QannealqError

__all__ = ["DaskExecutor", "ExecutorConnectionError", "StopOnError"]

logger = logging.getLogger(__name__)


class ExecutorConnectionError(QannealqError, ConnectionError):
    """The Dask scheduler named by ``--executor dask://HOST:PORT`` cannot be reached."""


def _chunks(calls: list, parts: int) -> list[list]:
    size = max(1, math.ceil(len(calls) / max(1, parts)))
    return [calls[k:k + size] for k in range(0, len(calls), size)]


def _call_chunk(fn: Callable, calls: list[tuple], *shared: Any) -> list:
    """Run ``fn`` on each call of a chunk; ``_Shared(k)`` placeholders take the k-th shared value."""
    return [fn(*(shared[a.index] if isinstance(a, _Shared) else a for a in args)) for args in calls]


@dataclass(frozen=True)
class _Shared:
    index: int


class StopOnError:
    """An executor's ``with`` block that stops at once when it ends in an exception (Ctrl-C, SIGTERM, a failed
    neuron): ``shutdown(wait=False, cancel_futures=True)``, so the rest of the submitted batch, which would be
    thrown away, is neither solved nor waited for (``Executor.__exit__`` waited for all of it)."""

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> bool:
        if exc_type is None:
            self.shutdown(wait=True)
        else:
            self.shutdown(wait=False, cancel_futures=True)
        return False


class DaskExecutor(StopOnError, Executor):
    """``dask://HOST:PORT``: the user's Dask scheduler behind the ``Executor`` interface.

    ``submit`` is ``Client.submit`` (``pure=False``); ``map`` scatters an argument that every call shares
    (the same object) to every worker once, and sends the calls in chunks of about four per worker thread. The
    shared arguments stay on the workers until the next ``map`` (or ``shutdown``), which sends again only those
    whose content changed (a digest of their pickle, taken once per object: the same object is taken as
    unchanged, as the solve loop's problem of a layer is): the solve loop maps a layer batch by batch (checkpoints),
    and each batch sent the layer's problem again (its ``H`` ``m x m``; 16 times on a layer of 128 neurons in
    batches of 8).
    ``shutdown`` closes the client (the cluster is the user's and keeps running); with ``cancel_futures`` (or
    ``wait=False``, and a ``with`` block left by an exception) it first cancels every task not finished.

    A worker that dies (killed, out of memory) costs only its tasks, which the scheduler runs again elsewhere:
    the shared arguments are on every worker (scattered to one, a chunk's were lost with it, and every chunk
    after it was cancelled). A task Dask gives up on (``KilledWorker``, lost data, a scheduler gone) comes back
    as a :class:`~concurrent.futures.BrokenExecutor`, as a process pool's dead worker does, never as a wait:
    ``Client.get_executor``'s futures were left pending for ever when a finished task's worker died before its
    result was fetched.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.address = client.scheduler.address
        self._tasks: weakref.WeakSet = weakref.WeakSet()  # the Dask futures behind ours, cancelled by shutdown
        # the last map's shared arguments on the workers, by digest: each one's future and the object sent (kept
        # alive, so that its id is not another object's)
        self._scattered: dict[bytes, tuple[Any, Any]] = {}
        self._scattering = threading.Lock()

    @classmethod
    def connect(cls, address: str, timeout: float = 10.0) -> "DaskExecutor":
        """Connect to the scheduler at ``address`` (``tcp://HOST:PORT``) and check that its workers import qannealq.

        Raises:
            BackendUnavailableError: ``dask.distributed`` is not installed here, or a worker cannot import qannealq.
            ExecutorConnectionError: no scheduler answers at ``address`` within ``timeout`` seconds.
        """
        try:
            from distributed import Client
        except ImportError as exc:
            raise BackendUnavailableError("--executor dask://... needs dask.distributed, which is not installed: "
                                          "pip install 'qannealq[dask]'") from exc
        outcome: dict[str, Any] = {}

        def start() -> None:
            try:
                outcome["client"] = Client(address, timeout=f"{timeout}s", set_as_default=False)
            except Exception as exc:  # noqa: BLE001 - reported below, whatever answered (or did not)
                outcome["error"] = exc.with_traceback(None)  # its frames hold the half-built Client
            if outcome.pop("abandoned", False) and "client" in outcome:
                outcome["client"].close()

        # Client's own timeout does not bound a server that accepts the connection and never answers (it waited
        # forever), and a server of another protocol (the dashboard's HTTP port) raised numpy's MemoryError
        thread = threading.Thread(target=start, name="qannealq-dask-connect", daemon=True)
        thread.start()
        thread.join(timeout + 1)
        shown = "dask://" + address.removeprefix("tcp://")
        if "client" in outcome:
            _check_workers(outcome["client"], shown, timeout)
            return cls(outcome["client"])
        outcome["abandoned"] = True
        exc = outcome.get("error")
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "no answer"
        raise ExecutorConnectionError(f"--executor={shown}: no Dask scheduler answered at {address} within "
                                      f"{timeout:g} s ({reason}); start one (dask scheduler; dask worker "
                                      f"{address}) or check the host and port (the scheduler's, 8786 by default, "
                                      "not its dashboard's)") from exc

    def describe(self) -> str:
        threads = self.client.nthreads()
        return f"dask {self.address} ({len(threads)} worker(s), {sum(threads.values())} thread(s))"

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        task = self.client.submit(fn, *args, pure=False, **kwargs)
        self._tasks.add(task)
        future: Future = Future()
        future.add_done_callback(lambda done: task.cancel() if done.cancelled() and not task.done() else None)
        task.add_done_callback(lambda task: _settle(task, future))
        return future

    def map(self, fn: Callable, *iterables: Iterable, timeout: float | None = None, chunksize: int = 0):
        calls = list(zip(*iterables))
        if not calls:
            return iter(())
        try:
            chunks = self._send(fn, calls, chunksize)
        except OSError as exc:  # Dask's CommClosedError, a timeout: the scheduler went away, not a call's error
            raise BrokenExecutor(f"the Dask scheduler {self.address} did not take the tasks ({type(exc).__name__}: "
                                 f"{exc})") from exc

        def results() -> Iterator:
            for chunk in chunks:
                yield from chunk.result(timeout)

        return results()

    def _send(self, fn: Callable, calls: list[tuple], chunksize: int) -> list[Future]:
        """``map``'s calls sent in chunks, each argument they all share scattered first."""
        shared_positions = [k for k in range(len(calls[0])) if _is_shared(calls, k)]
        futures = self._scatter([calls[0][k] for k in shared_positions])
        slots = {k: _Shared(j) for j, k in enumerate(shared_positions)}
        stripped = [tuple(slots.get(k, a) for k, a in enumerate(args)) for args in calls]
        parts = len(calls) if chunksize < 1 else math.ceil(len(calls) / chunksize)
        if chunksize < 1:
            parts = min(parts, 4 * max(1, sum(self.client.nthreads().values())))
        return [self.submit(_call_chunk, fn, chunk, *futures) for chunk in _chunks(stripped, parts)]

    def _scatter(self, values: list) -> list:
        """Each value's Dask future on every worker: the future of the previous ``map`` where the content is the
        same and the workers still hold it, else the value scattered now. Only these are kept for the next map."""
        if not values:
            return []
        with self._scattering:
            # the same object as the last map's: its digest is not taken again (0.3 s a batch on a 3073-input layer)
            seen = {id(value): digest for digest, (_, value) in self._scattered.items()}
            digests = [seen.get(id(value)) or _digest(value) for value in values]
            kept = {d: entry for d, entry in self._scattered.items() if d in digests and entry[0].status == "finished"}
            missing = [k for k, d in enumerate(digests) if d is None or d not in kept]
            # one object per shared argument (a list around it: scatter would split a dict or a list)
            sent = self.client.scatter([values[k] for k in missing], hash=False, broadcast=True) if missing else []
            futures = [kept[d][0] if d in kept else None for d in digests]
            for k, future in zip(missing, sent):
                futures[k] = future
                if digests[k] is not None:
                    kept[digests[k]] = (future, values[k])
            self._scattered = kept
            return futures

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._scattering:
            self._scattered = {}
        tasks = [task for task in list(self._tasks) if not task.done()]
        if wait and not cancel_futures:
            self.client.gather(tasks, errors="skip")
        elif tasks:
            self.client.cancel(tasks)
        self.client.close()


def _settle(task: Any, future: Future) -> None:
    """Give ``future`` the outcome of the Dask future ``task`` (in Dask's callback thread, once ``task`` is done).

    ``task.result()`` fetches a finished result, and has Dask compute it again where its worker died since; a
    task Dask gave up on is a :class:`BrokenExecutor` naming Dask's reason, the task's own error is its own.
    """
    try:
        outcome, failed = task.result(), False
    except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
        outcome, failed = exc, True
        if isinstance(exc, CancelledError) or type(exc).__module__.split(".")[0] == "distributed":
            outcome = BrokenExecutor(f"Dask lost task {task.key} ({type(exc).__name__}: {exc})")
            outcome.__cause__ = exc
    try:
        future.set_exception(outcome) if failed else future.set_result(outcome)
    except InvalidStateError:  # cancelled by its caller meanwhile
        pass


def _check_workers(client: Any, shown: str, timeout: float = 10.0) -> None:
    """Refuse (closing ``client``) a cluster without workers or whose workers cannot import qannealq, and warn of
    another version.

    A worker without qannealq failed the layer's first task with a traceback ending in Dask's ``Exception:
    ModuleNotFoundError("No module named 'qannealq'")``, after the training. The probe is a builtin (``eval`` of a
    fixed expression), so that it reaches a worker without qannealq. A scheduler without workers was accepted
    too: the first layer, after the training, waited 10 s and stopped with "the executor stopped abruptly (...
    No valid workers found)"; workers still starting are waited for ``timeout`` seconds.

    Raises:
        ExecutorConnectionError: no worker joined the scheduler within ``timeout`` seconds.
        BackendUnavailableError: naming the workers, the error and what to install.
    """
    from qannealq import __version__

    if not client.nthreads():
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, OSError) as exc:
            address = client.scheduler.address
            client.close()
            raise ExecutorConnectionError(
                f"--executor={shown}: the Dask scheduler has no workers (none joined within {timeout:g} s); start "
                f"some (dask worker {address} --nthreads 1) and run again") from exc
    found = client.run(eval, "__import__('qannealq').__version__", on_error="return")
    missing = {worker: error for worker, error in found.items() if isinstance(error, BaseException)}
    if missing:
        client.close()
        worker, error = next(iter(missing.items()))
        raise BackendUnavailableError(
            f"--executor={shown}: {len(missing)} of the {len(found)} Dask worker(s) cannot import qannealq ({worker}: "
            f"{type(error).__name__}: {error}); install it in every worker's environment (pip install "
            f"'qannealq[dask]=={__version__}', this client's version) and restart the workers")
    other = sorted({str(version) for version in found.values()} - {__version__})
    if other:
        logger.warning("%s: Dask workers run qannealq %s, this client %s: install the same version everywhere",
                       shown, ", ".join(other), __version__)


def _digest(value: Any) -> bytes | None:
    """A digest of ``value``'s pickle (arrays hashed in place, not copied), or None where it does not pickle."""
    buffers: list = []
    try:
        stream = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception:  # noqa: BLE001 - Dask may still send it (cloudpickle): sent each time, not kept
        return None
    digest = hashlib.blake2b(stream, digest_size=32)
    for buffer in buffers:
        try:
            digest.update(buffer.raw())
        except BufferError:  # not contiguous
            digest.update(bytes(buffer))
    return digest.digest()


def _is_shared(calls: list[tuple], k: int) -> bool:
    """Whether argument ``k`` is the same non-trivial object in every call (worth scattering once)."""
    first = calls[0][k]
    if first is None or isinstance(first, (int, float, str, bool, bytes)):
        return False
    return len(calls) > 1 and all(args[k] is first for args in calls)
