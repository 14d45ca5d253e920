"""D-Wave credentials (checked without network) and ``dwave-hybrid``, Leap's hybrid BQM solver.

The API token is never stored in a repr, message or result: :func:`has_credentials` only says whether one is
configured, and :func:`require_credentials` names where to set one.
"""

from __future__ import annotations

import os

import dimod

from qannealq.backends._common import check_capacity, close_child, now_ns, record
from qannealq.checks import above, check_values
from qannealq.contract import Closeable
from qannealq.errors import CredentialsError

__all__ = ["HybridSampler", "has_credentials", "require_credentials", "missing_credentials", "CREDENTIALS_HINT"]

CREDENTIALS_HINT = ("set the DWAVE_API_TOKEN environment variable to your Leap API token, or run "
                    "`dwave config create` (or `dwave setup`) to write it to the dwave config file")


def has_credentials() -> bool:
    """Whether a D-Wave API token is configured (environment or config file); never calls the network."""
    if os.environ.get("DWAVE_API_TOKEN"):
        return True
    try:
        from dwave.cloud.config import load_config

        return bool(load_config().get("token"))
    except Exception:  # an unreadable config file means no usable token
        return False


def require_credentials(backend: str, config: dict) -> None:
    """Refuse to build ``backend`` without a token (in ``config`` or configured), naming where to set one."""
    if not (config.get("token") or has_credentials()):
        raise CredentialsError(f"backend {backend!r} needs a D-Wave API token and none was found: {CREDENTIALS_HINT}")


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
        self.time_limit = time_limit
        self._config = config
        self._child = None

    def __repr__(self) -> str:
        return f"HybridSampler(time_limit={self.time_limit!r})"

    @property
    def child(self) -> dimod.Sampler:
        if self._child is None:
            from dwave.system import LeapHybridSampler

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
    def properties(self) -> dict:
        return {"max_variables": self.max_variables}

    @property
    def parameters(self) -> dict:
        return {"time_limit": [], "label": []}

    def check_options(self, options: dict) -> None:
        """Refuse a ``time_limit`` that is not a positive number of seconds before any work and any Leap credit
        (:func:`qannealq.contract.check_options`); the solver's own minimum is checked by the solver."""
        check_values(options, {"time_limit": above(0, "seconds")})

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
            kwargs["time_limit"] = limit
        submitted = now_ns()
        return dimod.SampleSet.from_future(self.child.sample(bqm, **kwargs),
                                           lambda answer: _hybrid_finish(answer, start, submitted))


def _hybrid_finish(answer: dimod.SampleSet, start: int, submitted: int) -> dimod.SampleSet:
    answer.resolve()
    own = dict(answer.info.get("timing") or {})
    own.update({k: v for k, v in answer.info.items() if k in ("run_time", "charge_time", "qpu_access_time")})
    answer.info["timing"] = {"preprocessing_ns": submitted - start, "sampling_ns": now_ns() - submitted,
                             "postprocessing_ns": 0, **own}
    return record(answer, None, start)
