"""Retries of transient backend failures: a composite with exponential backoff and seeded jitter.

A cloud backend fails now and then for reasons that a later try does not share: a dropped connection, a
timeout, a solver-side failure or a rate limit. :class:`RetryComposite` wraps any sampler (``qannealq run``
wraps the cloud backends itself, ``--retries`` times) and tries a failed call again after
``backoff * 2**k`` seconds (capped at ``max_backoff``), each delay scaled by a jitter factor in [0.5, 1) drawn
from its own seeded generator, so that many clients do not retry in step: each copy sent to a worker (pickled,
or built there by name) draws from a generator of its own (:meth:`RetryComposite.fresh_jitter`).

A QPU SampleSet (``SampleSet.from_future``) raises when it is *resolved*, not when it is submitted: so
``sample`` submits at once (a layer's calls still overlap) and the retries run in the resolve hook, which
resubmits and resolves until one try succeeds. An error raised at submission is kept and handled there too.

What is retried (:func:`classify`): ``TimeoutError``, ``ConnectionError``, an ``OSError`` with a network
``errno``, requests' connection and timeout errors, and dwave-cloud-client's retryable failures (solver
failure or offline, polling and request timeouts, server errors, rate limits, upload failures, a bad API
response, and any SAPI error whose HTTP code is 408, 429 or 5xx). Other backend errors (a rejected token, an
unknown solver, a bad request, any other ``OSError``) fail at once, without retrying. After the last try, a
:class:`~qannealq.errors.BackendError` names the backend, the number of tries and the cause (the solve loop
adds the layer and the neuron). Errors that are not backend failures (a bad input, a bug, a
``QannealqError``) pass through unchanged.

A failed try may have spent device time: a QPU layer's calls answered before another call failed
(:func:`qannealq.contract.note_spent`). The successful try's ``info["timing"]`` keeps its own figures and gets
that time beside them as ``failed_<key>`` (``failed_qpu_access_time``, microseconds), and a QPU layer's ``qpu``
figures ``failed_qpu_access_time_us``; the last try's error says how much was spent.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import threading
import time
from typing import Any, Callable, TypeVar

import dimod
import numpy as np

from qannealq.contract import LayerComposite, LayerSample, draw_seed, spent_timing
from qannealq.errors import BackendError, InvalidArgumentError, QannealqError

__all__ = ["RetryComposite", "classify", "TRANSIENT", "FATAL", "NETWORK_ERRNOS", "is_cloud", "with_retries"]

logger = logging.getLogger(__name__)

TRANSIENT = "transient"
FATAL = "fatal"
NETWORK_ERRNOS = frozenset({errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ETIMEDOUT,
                            errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETUNREACH, errno.ENETDOWN,
                            errno.ENETRESET, errno.EPIPE, errno.EAGAIN})
"""``errno`` values of an ``OSError`` that a later try may not meet."""
_RETRYABLE_HTTP = frozenset({408, 429, 500, 502, 503, 504})
T = TypeVar("T")
_COPIES = itertools.count()  # copies of a RetryComposite made in this process (RetryComposite.fresh_jitter)


def _dwave_kind(exc: BaseException) -> str | None:
    """The kind of a dwave-cloud-client error (None when it is not one, or the SDK is not installed)."""
    try:
        from dwave.cloud import exceptions as cloud
        from dwave.cloud.api import exceptions as api
    except ImportError:
        return None
    transient = (cloud.SolverFailureError, cloud.SolverOfflineError, cloud.PollingTimeout, api.RequestTimeout,
                 api.InternalServerError, api.ResourceLimitsExceededError, api.ResourceBadResponseError,
                 cloud.ProblemUploadError)
    if isinstance(exc, transient):
        return TRANSIENT
    if isinstance(exc, api.RequestError):
        code = getattr(exc, "error_code", None)
        return TRANSIENT if code in _RETRYABLE_HTTP else FATAL
    if isinstance(exc, cloud.CanceledFutureError):
        return FATAL
    return None


def _requests_kind(exc: BaseException) -> str | None:
    try:
        import requests
    except ImportError:
        return None
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)):
        return TRANSIENT
    if isinstance(exc, requests.RequestException):
        response = getattr(exc, "response", None)
        return TRANSIENT if getattr(response, "status_code", None) in _RETRYABLE_HTTP else FATAL
    return None


def classify(exc: BaseException) -> str | None:
    """:data:`TRANSIENT` (retry it), :data:`FATAL` (a backend failure not worth retrying) or None (not a
    backend failure: passed through unchanged)."""
    if isinstance(exc, QannealqError):
        return None
    kind = _dwave_kind(exc) or _requests_kind(exc)
    if kind is not None:
        return kind
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return TRANSIENT
    if isinstance(exc, OSError):
        return TRANSIENT if exc.errno in NETWORK_ERRNOS else FATAL
    return None


class RetryComposite(LayerComposite):
    """Retry a sampler's transient failures with exponential backoff and jitter (see the module docstring).

    Args:
        child: the sampler (its whole-layer path is kept and retried the same way).
        retries: tries after the first one (0: one try, failures still named).
        backend: the name used in messages (default: the child's class name).
        backoff: the first delay in seconds (default :attr:`backoff`, 1 s); ``backoff * 2**k`` after try ``k``.
        max_backoff: the longest delay (default :attr:`max_backoff`, 30 s).
        seed: seed of the jitter's generator (drawn, and kept in :attr:`seed`, when None).
        sleep: how to wait (``time.sleep``; tests pass a recorder).
    """

    backoff: float = 1.0
    max_backoff: float = 30.0

    def __init__(self, child: dimod.Sampler, retries: int = 3, backend: str | None = None,
                 backoff: float | None = None, max_backoff: float | None = None, seed: int | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(child)
        if isinstance(retries, bool) or not isinstance(retries, (int, np.integer)) or retries < 0:
            raise InvalidArgumentError(f"retries={retries!r} must be an integer >= 0")
        self.retries = int(retries)
        self.backend = backend or type(child).__name__
        self.backoff = float(self.backoff if backoff is None else backoff)
        self.max_backoff = float(self.max_backoff if max_backoff is None else max_backoff)
        if not 0 <= self.backoff <= self.max_backoff:
            raise InvalidArgumentError(f"backoff={self.backoff!r} and max_backoff={self.max_backoff!r} must "
                                       "satisfy 0 <= backoff <= max_backoff")
        self.seed = draw_seed(seed)
        self._rng = np.random.default_rng(self.seed)
        self._lock = threading.Lock()
        self._sleep = sleep

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        del state["_lock"]  # sent to an executor's worker: a fresh lock there
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self.fresh_jitter()

    def fresh_jitter(self) -> None:
        """Give this copy (a worker's: unpickled, or built there by name with the sender's seed) a jitter
        generator of its own, from the seed, this process and a count of copies, so that workers do not retry
        in step."""
        self._rng = np.random.default_rng([self.seed, os.getpid(), next(_COPIES)])

    def __repr__(self) -> str:
        return f"RetryComposite({self.child!r}, retries={self.retries}, backend={self.backend!r})"

    def property_values(self) -> dict:
        return {**super().property_values(), "retries": lambda: self.retries}

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try ``attempt`` (0-based): ``min(max, backoff·2^k)·U[0.5, 1)``."""
        with self._lock:
            jitter = 0.5 + 0.5 * float(self._rng.random())
        # 2.0 ** 1024 overflows (OverflowError); 2 ** 1023 times any backoff is past any max_backoff
        return min(self.max_backoff, self.backoff * 2.0 ** min(attempt, 1023)) * jitter

    def _run(self, tries: list[Callable[[], T]], what: str) -> tuple[T, int, dict[str, float]]:
        """Call ``tries[0]`` then ``tries[-1]`` until one succeeds; the result, the number of failed tries and the
        device time they spent (:func:`~qannealq.contract.spent_timing`)."""
        spent: dict[str, float] = {}
        for k in range(self.retries + 1):
            call = tries[min(k, len(tries) - 1)]
            try:
                return call(), k, spent
            except Exception as exc:
                kind = classify(exc)
                if kind is None:
                    raise
                for key, value in spent_timing(exc).items():
                    spent[key] = spent.get(key, 0.0) + value
                cause = f"{type(exc).__name__}: {exc}{_spent_text(spent)}"
                if kind == FATAL:
                    raise BackendError(f"backend {self.backend!r} failed on {what}: {cause} (not retried: "
                                       "not a transient error)") from exc
                if k == self.retries:
                    raise BackendError(f"backend {self.backend!r} failed on {what} after {k + 1} tries: {cause}; "
                                       "try again later (finished units are kept: continue with --resume), or "
                                       "raise --retries") from exc
                wait = self.delay(k)
                logger.warning("backend %r: %s on %s; try %d of %d in %.2f s", self.backend, cause, what, k + 2,
                               self.retries + 1, wait)
                self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def sample(self, bqm: dimod.BinaryQuadraticModel, **kwargs: Any) -> dimod.SampleSet:
        """Submit ``bqm`` now; resolving the SampleSet retries (resubmits) until a try succeeds.

        ``info["retries"]`` is the number of failed tries before the one that succeeded; the device time they
        spent, where they report any, is in ``info["timing"]`` as ``failed_<key>`` (see the module docstring).
        """
        try:
            first: dimod.SampleSet | Exception = self.child.sample(bqm, **kwargs)
        except Exception as exc:
            if classify(exc) is None:
                raise
            first = exc  # raised again, and retried, when the SampleSet is resolved

        def resolve_first() -> dimod.SampleSet:
            if isinstance(first, Exception):
                raise first
            return _resolved(first)

        def resolve_again() -> dimod.SampleSet:
            return _resolved(self.child.sample(bqm, **kwargs))

        def hook(_: object) -> dimod.SampleSet:
            what = f"a BQM of {bqm.num_variables} variables"
            sampleset, failed, spent = self._run([resolve_first, resolve_again], what)
            sampleset.info["retries"] = failed
            _count_failed(sampleset.info, spent)
            return sampleset

        return dimod.SampleSet.from_future(_Pending(first), hook)

    def sample_layer(self, problem: Any, initial_states: np.ndarray | None = None, seed: int | None = None,
                     **kwargs: Any) -> LayerSample:
        """The child's whole-layer solve, retried the same way (``info["retries"]`` as for :meth:`sample`)."""
        parent = super().sample_layer

        def call() -> LayerSample:
            return parent(problem, initial_states=initial_states, seed=seed, **kwargs)

        result, failed, spent = self._run([call], f"layer {getattr(problem, 'name', '?')!r}")
        result.info["retries"] = failed
        _count_failed(result.info, spent)
        return result


def _spent_text(spent: dict[str, float]) -> str:
    access = spent.get("qpu_access_time")
    return f" ({access / 1e3:.2f} ms of QPU access time spent on the failed tries)" if access else ""


def _count_failed(info: dict, spent: dict[str, float]) -> None:
    """Put the failed tries' device time beside the successful try's own figures, never into them: those stay
    the answer's (per call, per neuron, its time-to-solution)."""
    if not spent:
        return
    timing = info["timing"] = dict(info.get("timing") or {})
    for key, value in spent.items():
        timing[f"failed_{key}"] = timing.get(f"failed_{key}", 0.0) + value
    if isinstance(info.get("qpu"), dict) and "qpu_access_time" in spent:
        from qannealq.backends._dwave_report import count_failed

        count_failed(info["qpu"], spent["qpu_access_time"])


class _Pending:
    """The future behind a retrying SampleSet: done when the first try is (or when its submission failed)."""

    def __init__(self, first: object) -> None:
        self.first = first

    def done(self) -> bool:
        done = getattr(self.first, "done", None)
        return bool(done()) if callable(done) else True


def _resolved(sampleset: dimod.SampleSet) -> dimod.SampleSet:
    sampleset.resolve()
    return sampleset


def is_cloud(name: str, sampler: Any) -> bool:
    """Whether backend ``name`` calls a service: a registered D-Wave backend, or a sampler whose class declares
    ``missing_credentials`` (the registry's hook for backends that need a token)."""
    from qannealq.backends import BACKENDS, canonical_name

    spec = BACKENDS.get(canonical_name(name))
    return (spec is not None and spec.family == "D-Wave") or callable(getattr(type(sampler), "missing_credentials",
                                                                              None))


def with_retries(name: str, sampler: dimod.Sampler, retries: int, seed: int | None = None) -> dimod.Sampler:
    """``sampler`` wrapped in a :class:`RetryComposite` when it is a cloud backend (:func:`is_cloud`), else as is."""
    if not is_cloud(name, sampler):
        return sampler
    return RetryComposite(sampler, retries=retries, backend=name, seed=seed)
