"""D-Wave backends: ``dwave`` (QPU), ``dwave-mock`` (the same code on ``MockDWaveSampler``) and ``dwave-hybrid``.

A neuron BQM is dense, so the QPU path uses a clique embedding (minorminer's busclique, chains of equal
length), found once per problem size and reused for every neuron of that size, then samples through
``FixedEmbeddingComposite`` with the scaling that ``DWaveCliqueSampler`` applies (:mod:`._dwave_embed`).
``sample`` returns as soon as the problem is submitted (``SampleSet.from_future``): unembedding, timing and the
seed are recorded when the SampleSet is resolved, so a caller submits every neuron of a layer before waiting.
The QPU sampler's constructor calls the network, so it is built lazily at the first ``sample``; credentials are
checked, without network, when the backend is created; ``parameters`` never calls the network. ``close()``
(or a ``with`` block) closes the cloud client. The API token is never stored in a repr, message or result.
"""

from __future__ import annotations

import logging
import os

import dimod
from dwave.embedding.chain_strength import uniform_torque_compensation
from minorminer.busclique import busgraph_cache

from qannealq.backends._common import check_capacity, close_child, draw_seed, now_ns, record
from qannealq.backends._dwave_embed import finish, submit
from qannealq.contract import Closeable
from qannealq.errors import CredentialsError, InvalidArgumentError

__all__ = ["QPUSampler", "MockQPUSampler", "HybridSampler", "has_credentials", "CREDENTIALS_HINT"]

logger = logging.getLogger(__name__)

CREDENTIALS_HINT = ("set the DWAVE_API_TOKEN environment variable to your Leap API token, or run "
                    "`dwave config create` (or `dwave setup`) to write it to the dwave config file")
QPU_PARAMETERS = ("num_reads", "chain_strength", "chain_break_method", "annealing_time", "answer_mode",
                  "anneal_schedule", "label", "programming_thermalization", "readout_thermalization",
                  "reduce_intersample_correlation")


def has_credentials() -> bool:
    """Whether a D-Wave API token is configured (environment or config file); never calls the network."""
    if os.environ.get("DWAVE_API_TOKEN"):
        return True
    try:
        from dwave.cloud.config import load_config

        return bool(load_config().get("token"))
    except Exception:  # an unreadable config file means no usable token
        return False


def _require_credentials(backend: str, config: dict) -> None:
    if not (config.get("token") or has_credentials()):
        raise CredentialsError(f"backend {backend!r} needs a D-Wave API token and none was found: {CREDENTIALS_HINT}")


def _missing_credentials(cls) -> str | None:
    """The hint when no token is configured, else None (for ``available_backends``)."""
    return None if has_credentials() else f"no D-Wave API token found: {CREDENTIALS_HINT}"


class QPUSampler(Closeable, dimod.Sampler):
    """``dwave``: a D-Wave QPU through clique embeddings reused per problem size.

    ``sample`` returns unresolved (see the module docstring). ``close()`` closes the solver's cloud client; a
    closed sampler connects again (a new client) if it is used after that.

    Args:
        chain_strength: default chain strength (a number, or a callable ``f(bqm, embedding)``); None uses
            ``uniform_torque_compensation``. ``sample(chain_strength=...)`` overrides it.
        num_reads: default reads per BQM.
        **config: passed to ``DWaveSampler`` (``solver``, ``region``, ``token``...) at first use.
    """

    name = "dwave"
    default_max_variables: int | str | None = "largest clique"  # of the solver's graph: known once connected
    capacity_reason = "~177-184"
    missing_credentials = classmethod(_missing_credentials)

    def __init__(self, chain_strength=None, num_reads: int = 100, **config) -> None:
        _require_credentials(self.name, config)
        self.chain_strength = chain_strength
        self.num_reads = num_reads
        self._config = config
        self._child = None
        self._graph_cache = None
        self._embeddings: dict = {}

    def __repr__(self) -> str:
        safe = {k: v for k, v in self._config.items() if "token" not in k.lower()}
        return f"{type(self).__name__}(chain_strength={self.chain_strength!r}, num_reads={self.num_reads}, {safe})"

    def _make_child(self) -> dimod.Sampler:
        from dwave.system import DWaveSampler

        return DWaveSampler(**self._config)

    @property
    def child(self) -> dimod.Sampler:
        """The structured sampler, built at first use (for the QPU this opens a network connection)."""
        if self._child is None:
            self._child = self._make_child()
            self._graph_cache = busgraph_cache(self._child.to_networkx_graph())
        return self._child

    def close(self) -> None:
        """Close the solver's cloud client (waits for submitted problems); safe to call twice."""
        child, self._child, self._graph_cache = self._child, None, None
        self._embeddings.clear()
        if child is not None:
            close_child(child)

    @property
    def max_variables(self) -> int:
        """The largest clique the solver's working graph embeds (computed once)."""
        if "largest" not in self._embeddings:
            _ = self.child
            self._embeddings["largest"] = len(self._graph_cache.largest_clique())
        return self._embeddings["largest"]

    @property
    def properties(self) -> dict:
        return {"max_variables": self.max_variables, "topology": dict(self.child.properties.get("topology", {}))}

    @property
    def parameters(self) -> dict:
        """:data:`QPU_PARAMETERS` (no network call: the commands check option keys against it first)."""
        return {name: [] for name in QPU_PARAMETERS}

    def embedding(self, size: int) -> dict:
        """Clique embedding of variables ``0..size-1``, found once per size and reused."""
        if size not in self._embeddings:
            _ = self.child
            found = self._graph_cache.find_clique_embedding(size)
            if len(found) != size:
                raise InvalidArgumentError(f"no clique embedding of {size} variables on this solver")
            self._embeddings[size] = found
        return self._embeddings[size]

    def sample(self, bqm: dimod.BinaryQuadraticModel, chain_strength=None, **kwargs) -> dimod.SampleSet:
        """Embed ``bqm`` on a clique and submit it; returns at once, unembedded when resolved.

        Unknown keyword arguments are warned about and dropped (``remove_unknown_kwargs``). The resolved
        SampleSet has ``chain_break_fraction`` per sample and in ``info``, ``info["seed"]`` and ``info["timing"]``.
        """
        start = now_ns()
        kwargs = self.remove_unknown_kwargs(**kwargs)
        check_capacity(self.name, bqm, self.max_variables, "the largest clique the solver embeds",
                       "use 'dwave-hybrid' or 'sa'")
        seed = self._seed(kwargs)
        kwargs.setdefault("num_reads", self.num_reads)
        if bqm.num_variables == 0:
            return record(dimod.SampleSet.from_samples_bqm([{}], bqm), seed, start)
        clique = self.embedding(bqm.num_variables)
        embedding = {v: clique[k] for k, v in enumerate(bqm.variables)}
        strength = chain_strength if chain_strength is not None else self.chain_strength
        marks: dict = {}
        answer = submit(self.child, bqm, embedding, strength or uniform_torque_compensation, marks, **kwargs)
        return dimod.SampleSet.from_future(
            answer, lambda done: record(finish(done, bqm, embedding, start, marks), seed, start))

    def _seed(self, kwargs: dict) -> int | None:
        return None  # a QPU takes no seed (``seed`` is not in its parameters)


class MockQPUSampler(QPUSampler):
    """``dwave-mock``: :class:`QPUSampler`'s code on ``MockDWaveSampler`` (no network, no credentials).

    The mock's substitute sampler is simulated annealing on the embedded problem, seeded per call.

    Args:
        topology_type: ``"pegasus"`` (default), ``"zephyr"`` or ``"chimera"``.
        topology_shape: e.g. ``[16]`` for Pegasus P16 (the default).
        chain_strength, num_reads: as for :class:`QPUSampler`.
    """

    name = "dwave-mock"
    default_max_variables = 180  # len(busgraph_cache(pegasus P16).largest_clique()), the default topology
    capacity_reason = "largest clique, P16"

    @classmethod
    def missing_credentials(cls) -> None:
        """The mock needs no token."""
        return None

    def __init__(self, topology_type: str = "pegasus", topology_shape: list[int] | None = None,
                 chain_strength=None, num_reads: int = 100) -> None:
        self.topology_type = topology_type
        self.topology_shape = list(topology_shape or [16])
        self.chain_strength, self.num_reads = chain_strength, num_reads
        self._config, self._child, self._graph_cache, self._embeddings = {}, None, None, {}

    def __repr__(self) -> str:
        return (f"MockQPUSampler(topology_type={self.topology_type!r}, topology_shape={self.topology_shape}, "
                f"chain_strength={self.chain_strength!r}, num_reads={self.num_reads})")

    def _make_child(self) -> dimod.Sampler:
        from dwave.samplers import SimulatedAnnealingSampler
        from dwave.system.testing import MockDWaveSampler

        return MockDWaveSampler(topology_type=self.topology_type, topology_shape=self.topology_shape,
                                substitute_sampler=SimulatedAnnealingSampler(), parameter_warnings=False)

    @property
    def parameters(self) -> dict:
        return {**super().parameters, "seed": []}

    def _seed(self, kwargs: dict) -> int:
        seed = draw_seed(kwargs.pop("seed", None))
        self.child.substitute_kwargs = {"seed": seed}  # the mock samples at submission, with this seed
        return seed


class HybridSampler(Closeable, dimod.Sampler):
    """``dwave-hybrid``: Leap's hybrid BQM solver (``LeapHybridSampler``), built lazily at first use.

    ``sample`` returns as soon as the problem is submitted; timing is recorded when the SampleSet resolves.
    ``close()`` closes the solver's cloud client; a closed sampler connects again if it is used after that.

    Args:
        time_limit: default seconds per BQM (None: the solver's minimum for the problem size).
        **config: passed to ``LeapHybridSampler`` (``solver``, ``region``, ``token``...).
    """

    name = "dwave-hybrid"
    default_max_variables: int | str | None = "solver's limit"  # its maximum_number_of_variables
    capacity_reason = "~1M"
    missing_credentials = classmethod(_missing_credentials)

    def __init__(self, time_limit: float | None = None, **config) -> None:
        _require_credentials(self.name, config)
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

    def sample(self, bqm: dimod.BinaryQuadraticModel, time_limit: float | None = None, **kwargs) -> dimod.SampleSet:
        """Submit ``bqm`` to the hybrid solver; its own microsecond timing stays beside the ns keys.

        Unknown keyword arguments (``seed`` included: the solver takes none) are warned about and dropped.
        """
        start = now_ns()
        kwargs = self.remove_unknown_kwargs(**kwargs)
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
