"""D-Wave credentials (checked without network) and ``dwave-hybrid``, Leap's hybrid BQM solver.

The API token is never stored in a repr, message, result or pickle: :func:`has_credentials` only says whether one
is configured, :func:`require_credentials` names where to set one, and a sampler sent to an executor's workers
(pickled) leaves its token behind (:func:`portable_config`): each worker reads its own (:func:`require_sent_token`).

dwave-cloud-client logs its whole configuration, request headers and all, at DEBUG and TRACE, token included; its
own redacting formatter only serves ``DWAVE_LOG_LEVEL``'s handler, so a user's ``logging.basicConfig(level=DEBUG)``
printed the token. Wherever qannealq reads a token or hands one over, :func:`guard_logs` redacts it in every record
of the ``dwave`` loggers as the record is made (:func:`redact_text`), whatever handler or level prints it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from typing import Any, Mapping

import dimod
import numpy as np

from qannealq.backends._common import check_capacity, close_child, now_ns, record
from qannealq.checks import above, check_values
from qannealq.contract import REDACTED, Closeable, LazyProperties, is_secret, without_secrets
from qannealq.errors import CredentialsError, InvalidArgumentError

__all__ = ["HybridSampler", "has_credentials", "require_credentials", "missing_credentials", "portable_config",
           "require_sent_token", "CREDENTIALS_HINT", "guard_logs", "redact_text"]

logger = logging.getLogger(__name__)

CREDENTIALS_HINT = ("set the DWAVE_API_TOKEN environment variable to your Leap API token, or run "
                    "`dwave config create` (or `dwave setup`) to write it to the dwave config file")


_KNOWN_SECRETS: set[str] = set()
_GUARD = threading.Lock()
_SECRET_VALUE = re.compile(r"""(?<![\w-])(?=[\w-]*?(?:token|secret|password|api[_-]?key|credential))"""
                           r"""([\w-]+['"]?\s*[:=]\s*)(['"])(?:(?!\2).)+\2""", re.IGNORECASE)
"""A quoted value after a key that names a secret (:func:`qannealq.contract.is_secret`'s words): ``'token': '...'``
in a dict's repr, ``token='...'`` in a dataclass's, ``'X-Auth-Token': '...'`` in request headers. The key is
tried from a word's start only, so the search is linear (tried from each secret word within a word, it was
quadratic: 20 s on 40 kB of ``token`` repeated)."""
_TOKEN_SHAPE = re.compile(r"\b([0-9A-Za-z]{2,4}-)?[0-9A-Fa-f]{32,}\b")
"""A SAPI token (``ABC-`` and 40 hex digits) or any run of 32+ hex digits (dwave-cloud-client's own redacting
formatter's shapes; problem ids are UUIDs, with dashes, and stay readable)."""


def redact_text(text: str) -> str:
    """``text`` with every token qannealq has seen (:func:`guard_logs`), every quoted value of a secret key and
    every token-shaped string replaced by ``<redacted>``."""
    for secret in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _SECRET_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(2)}", text)
    return _TOKEN_SHAPE.sub(lambda m: f"{m.group(1) or ''}{REDACTED}", text)


def _redact_record(record: logging.LogRecord) -> None:
    """Format the record's message once and keep it redacted, with no args left (a repr of a config, a header
    dict or an exception among them); its traceback and stack as redacted text."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 (args that do not fit the message: the handler would print both)
        message = f"{record.msg} {record.args!r}"
    record.msg, record.args = redact_text(message), ()
    if record.exc_info:
        record.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
        record.exc_info = None  # a formatter of the user's would render the unredacted exception again
    if record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)


def guard_logs(config: Mapping[str, Any] | None = None) -> None:
    """Redact D-Wave tokens in every record of the ``dwave`` loggers (dwave-cloud-client, dwave-system) from now
    on, and remember the tokens known here: ``DWAVE_API_TOKEN`` and ``config``'s secret keys' values.

    Installed once per process as a record factory around the current one: a filter on the ``dwave`` logger
    would miss its children's records (``dwave.cloud.client.base``...), and one on handlers would miss the
    user's. Records are redacted when made, so whatever level and handler the user sets up prints no token."""
    values = [os.environ.get("DWAVE_API_TOKEN"), *(v for k, v in (config or {}).items() if is_secret(k))]
    with _GUARD:
        _KNOWN_SECRETS.update(v for v in values if isinstance(v, str) and len(v) >= 8)
        previous = logging.getLogRecordFactory()
        if getattr(previous, "redacts_dwave_tokens", False):
            return

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            name = record.name  # None from logging.makeLogRecord, which sets the record's fields afterwards
            if isinstance(name, str) and (name == "dwave" or name.startswith("dwave.")):
                _redact_record(record)
            return record

        factory.redacts_dwave_tokens = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)


def has_credentials() -> bool:
    """Whether a D-Wave API token is configured (environment or config file); never calls the network."""
    guard_logs()  # load_config logs the config file's contents at TRACE
    if os.environ.get("DWAVE_API_TOKEN"):
        return True
    try:
        from dwave.cloud.config import load_config

        config = load_config()
    except Exception:  # an unreadable config file means no usable token
        return False
    guard_logs(config)
    return bool(config.get("token"))


def require_credentials(backend: str, config: dict) -> None:
    """Refuse to build ``backend`` without a token (in ``config`` or configured), naming where to set one."""
    guard_logs(config)
    if not (config.get("token") or has_credentials()):
        raise CredentialsError(f"backend {backend!r} needs a D-Wave API token and none was found: {CREDENTIALS_HINT}")


def portable_config(state: dict) -> dict:
    """A cloud sampler's pickled state (``__getstate__``): its ``_config`` less every secret (``token``...: the
    project's one rule, :func:`qannealq.contract.is_secret`), the secret keys' names kept in ``_withheld``, and
    no cloud client (``_child``: a worker connects with its own credentials)."""
    config = state["_config"]
    withheld = sorted(set(state.get("_withheld", ())) | {str(k) for k in config if is_secret(k)})
    return {**state, "_config": without_secrets(config), "_withheld": tuple(withheld), "_child": None}


def require_sent_token(backend: str, withheld: tuple[str, ...]) -> None:
    """In a worker that received a pickled cloud sampler: refuse to connect when its token was left behind
    (``withheld``) and none is configured here, naming where to set one."""
    if withheld and not has_credentials():
        raise CredentialsError(f"backend {backend!r} was sent to this worker without its {', '.join(withheld)} (a "
                               f"secret is never pickled) and no D-Wave API token is configured here: on every "
                               f"worker, {CREDENTIALS_HINT}")


def missing_credentials(cls) -> str | None:
    """The hint when no token is configured, else None (for ``available_backends``)."""
    return None if has_credentials() else f"no D-Wave API token found: {CREDENTIALS_HINT}"


class HybridSampler(Closeable, dimod.Sampler):
    """``dwave-hybrid``: Leap's hybrid BQM solver (``LeapHybridSampler``), built lazily at first use.

    ``sample`` returns as soon as the problem is submitted; timing is recorded when the SampleSet resolves.
    ``close()`` closes the solver's cloud client; a closed sampler connects again if it is used after that.

    Args:
        time_limit: default seconds per BQM (None: the solver's minimum for the problem size).
        **config: passed to ``LeapHybridSampler`` (``solver``, ``region``, ``token``...).
    """

    name = "dwave-hybrid"
    paid_calls = True  # every call costs Leap credit: no untimed warm-up call (qannealq.compare.paid)
    default_max_variables: int | str | None = "solver's limit"  # its maximum_number_of_variables
    capacity_reason = "~1M"
    missing_credentials = classmethod(missing_credentials)

    def __init__(self, time_limit: float | None = None, **config) -> None:
        require_credentials(self.name, config)
        self.check_options({"time_limit": time_limit})  # as each call's: time_limit=-1 was kept until the call
        self.time_limit = time_limit
        self._config = config
        self._withheld: tuple[str, ...] = ()
        self._child = None

    def __repr__(self) -> str:
        return f"HybridSampler(time_limit={self.time_limit!r})"

    def __getstate__(self) -> dict:
        """Pickled (sent to a worker) without the token or the cloud client: see :func:`portable_config`."""
        return portable_config(self.__dict__)

    @property
    def child(self) -> dimod.Sampler:
        if self._child is None:
            from dwave.system import LeapHybridSampler

            require_sent_token(self.name, self._withheld)
            guard_logs(self._config)
            self._child = LeapHybridSampler(**self._config)
        return self._child

    def close(self) -> None:
        """Close the solver's cloud client (waits for submitted problems); safe to call twice."""
        child, self._child = self._child, None
        if child is not None:
            close_child(child)

    @property
    def max_variables(self) -> int:
        return int(self.child.properties.get("maximum_number_of_variables", 1_000_000))

    @property
    def properties(self) -> Mapping[str, Any]:
        """``max_variables`` (which connects to the solver) read only when asked."""
        return LazyProperties({"max_variables": lambda: self.max_variables})

    @property
    def parameters(self) -> dict:
        return {"time_limit": [], "label": []}

    def check_options(self, options: dict) -> None:
        """Refuse a ``time_limit`` that is not a positive number of seconds before any work and any Leap credit
        (:func:`qannealq.contract.check_options`); the solver's own minimum: :meth:`check_ranges`."""
        check_values(options, {"time_limit": above(0, "seconds")})

    def minimum_time_limit(self, num_variables: int | None = None) -> float | None:
        """The solver's least ``time_limit`` (seconds) for a problem of ``num_variables`` (its
        ``minimum_time_limit`` property, a piecewise-linear curve over the problem size, as
        ``LeapHybridSampler.min_time_limit`` reads it), or for the smallest problem where None; None when the
        solver states no such curve."""
        curve = self.child.properties.get("minimum_time_limit")
        if not curve:
            return None
        sizes, seconds = zip(*curve)
        if num_variables is None:
            return float(min(seconds))
        return float(np.interp([num_variables], sizes, seconds)[0])

    def check_ranges(self, **options) -> None:
        """Refuse a ``time_limit`` below the solver's minimum for any problem before any training (a connection
        to read its properties, no Leap credit; the solver refused it only at the first call). Each call checks
        its own problem's minimum (:meth:`sample`). A solver that cannot be reached now is left to the calls."""
        limit = options.get("time_limit", self.time_limit)
        if limit is None or isinstance(limit, bool) or not isinstance(limit, (int, float)):
            return
        try:
            least = self.minimum_time_limit()
        except Exception as exc:  # noqa: BLE001 (the network's or the cloud client's): not this check's to report
            logger.info("backend %r: the solver's minimum time_limit is checked at the first call (%s)", self.name,
                        type(exc).__name__)
            return
        _refuse_below(limit, least, "least time limit", "(its minimum_time_limit property, which grows with the "
                                                        "problem's size)")

    def sample(self, bqm: dimod.BinaryQuadraticModel, time_limit: float | None = None, **kwargs) -> dimod.SampleSet:
        """Submit ``bqm`` to the hybrid solver; its own microsecond timing stays beside the ns keys.

        Unknown keyword arguments (``seed`` included: the solver takes none) are warned about and dropped.
        """
        start = now_ns()
        kwargs = self.remove_unknown_kwargs(**kwargs)
        self.check_options({"time_limit": time_limit})
        check_capacity(self.name, bqm, self.max_variables, "the hybrid solver's limit")
        limit = time_limit if time_limit is not None else self.time_limit
        if limit is not None:
            _refuse_below(limit, self.minimum_time_limit(bqm.num_variables), "minimum",
                          f"for a problem of {bqm.num_variables} variables (its minimum_time_limit property)")
            kwargs["time_limit"] = limit
        submitted = now_ns()
        return dimod.SampleSet.from_future(self.child.sample(bqm, **kwargs),
                                           lambda answer: _hybrid_finish(answer, start, submitted))


def _refuse_below(limit: float, least: float | None, name: str, detail: str) -> None:
    """Refuse ``time_limit`` below the solver's ``least`` (None: no curve stated; ``name`` and ``detail`` say
    which minimum): :meth:`HybridSampler.check_ranges` and each call (where LeapHybridSampler's own ValueError
    named no option and no remedy)."""
    if least is not None and limit < least:
        raise InvalidArgumentError(f"time_limit={limit:g} is below the hybrid solver's {name} of {least:g} s "
                                   f"{detail}: give at least {least:g}, or leave time_limit out (each call then "
                                   "takes its problem's minimum)")


def _hybrid_finish(answer: dimod.SampleSet, start: int, submitted: int) -> dimod.SampleSet:
    answer.resolve()
    own = dict(answer.info.get("timing") or {})
    own.update({k: v for k, v in answer.info.items() if k in ("run_time", "charge_time", "qpu_access_time")})
    answer.info["timing"] = {"preprocessing_ns": submitted - start, "sampling_ns": now_ns() - submitted,
                             "postprocessing_ns": 0, **own}
    return record(answer, None, start)
