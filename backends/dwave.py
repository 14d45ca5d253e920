"""D-Wave backends: ``dwave`` (QPU), ``dwave-mock`` (the same code on ``MockDWaveSampler``) and ``dwave-hybrid``.

A neuron BQM is dense, so the QPU path uses a clique embedding (minorminer's busclique, chains of equal
length), found once per problem size and reused for every neuron of that size, then samples through
``FixedEmbeddingComposite`` with the scaling that ``DWaveCliqueSampler`` applies. The QPU sampler's constructor
calls the network, so it is built lazily at the first ``sample``; credentials are checked, without network,
when the backend is created. The API token is never stored in a repr, message or result.
"""

from __future__ import annotations

import logging
import os

import dimod
from dwave.embedding.chain_strength import uniform_torque_compensation
from dwave.preprocessing import ScaleComposite
from dwave.system import FixedEmbeddingComposite
from minorminer.busclique import busgraph_cache

from qannealq.backends._common import check_capacity, draw_seed, now_ns, record
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


class QPUSampler(dimod.Sampler):
    """``dwave``: a D-Wave QPU through clique embeddings reused per problem size.

    Args:
        chain_strength: default chain strength (a number, or a callable ``f(bqm, embedding)``); None uses
            ``uniform_torque_compensation``. ``sample(chain_strength=...)`` overrides it.
        num_reads: default reads per BQM.
        **config: passed to ``DWaveSampler`` (``solver``, ``region``, ``token``...) at first use.
    """

    name = "dwave"
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
        """Embed ``bqm`` on a clique, sample it, unembed; chain-break fractions stay in the record."""
        start = now_ns()
        check_capacity(self.name, bqm, self.max_variables, "the largest clique the solver embeds",
                       "use 'dwave-hybrid' or 'sa'")
        seed = self._seed(kwargs)
        unknown = set(kwargs) - set(QPU_PARAMETERS) - set(self.child.parameters)
        if unknown:
            raise InvalidArgumentError(f"backend {self.name!r} does not take {', '.join(sorted(unknown))}")
        kwargs.setdefault("num_reads", self.num_reads)
        if bqm.num_variables == 0:
            return record(dimod.SampleSet.from_samples_bqm([{}], bqm), seed, start)
        clique = self.embedding(bqm.num_variables)
        embedding = {v: clique[k] for k, v in enumerate(bqm.variables)}
        strength = chain_strength if chain_strength is not None else self.chain_strength
        spin = bqm.change_vartype(dimod.SPIN, inplace=False)
        sampler = FixedEmbeddingComposite(ScaleComposite(self._scaled_child()), embedding)
        t1 = now_ns()
        ss = sampler.sample(spin, chain_strength=strength or uniform_torque_compensation,
                            bias_range=self._range("h_range"), quadratic_range=self._quadratic_range(),
                            return_embedding=True, **self._child_kwargs(kwargs))
        ss.resolve()
        t2 = now_ns()
        return record(self._finish(ss, bqm, embedding, start, t1, t2), seed, start)

    def _seed(self, kwargs: dict) -> int | None:
        kwargs.pop("seed", None)
        return None  # a QPU takes no seed

    def _child_kwargs(self, kwargs: dict) -> dict:
        if "auto_scale" in self.child.parameters:
            kwargs["auto_scale"] = False  # scaled here, as DWaveCliqueSampler does
        return kwargs

    def _scaled_child(self) -> dimod.Sampler:
        try:  # DWaveCliqueSampler's per-qubit coupling scaling (private in dwave-system)
            from dwave.system.samplers.clique import _QubitCouplingComposite
        except ImportError:  # pragma: no cover - a future dwave-system
            return self.child
        return _QubitCouplingComposite(self.child, self._range("h_range"), self._quadratic_range())

    def _range(self, key: str) -> tuple[float, float]:
        return tuple(self.child.properties.get(key, (-2.0, 2.0)))

    def _quadratic_range(self) -> tuple[float, float]:
        props = self.child.properties
        return tuple(props.get("extended_j_range", props.get("j_range", (-1.0, 1.0))))

    def _finish(self, ss: dimod.SampleSet, bqm: dimod.BinaryQuadraticModel, embedding: dict, start: int,
                t1: int, t2: int) -> dimod.SampleSet:
        context = ss.info.pop("embedding_context", {})
        qpu_timing = dict(ss.info.pop("timing", None) or {})
        out = ss.change_vartype(bqm.vartype, energy_offset=0.0, inplace=False)
        cbf = out.record.chain_break_fraction
        strength = context.get("chain_strength")
        out.info.update(chain_strength=strength if isinstance(strength, (int, float)) else None,
                        chain_break_fraction=float(cbf.mean()) if len(cbf) else 0.0,
                        num_qubits=sum(len(c) for c in embedding.values()),
                        max_chain_length=max(len(c) for c in embedding.values()))
        out.info["timing"] = {"preprocessing_ns": t1 - start, "sampling_ns": t2 - t1,
                              "postprocessing_ns": now_ns() - t2, **qpu_timing}
        return out


class MockQPUSampler(QPUSampler):
    """``dwave-mock``: :class:`QPUSampler`'s code on ``MockDWaveSampler`` (no network, no credentials).

    The mock's substitute sampler is simulated annealing on the embedded problem, seeded per call.

    Args:
        topology_type: ``"pegasus"`` (default), ``"zephyr"`` or ``"chimera"``.
        topology_shape: e.g. ``[16]`` for Pegasus P16 (the default).
        chain_strength, num_reads: as for :class:`QPUSampler`.
    """

    name = "dwave-mock"

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
        self.child.substitute_kwargs = {"seed": seed}
        return seed


class HybridSampler(dimod.Sampler):
    """``dwave-hybrid``: Leap's hybrid BQM solver (``LeapHybridSampler``), built lazily at first use.

    Args:
        time_limit: default seconds per BQM (None: the solver's minimum for the problem size).
        **config: passed to ``LeapHybridSampler`` (``solver``, ``region``, ``token``...).
    """

    name = "dwave-hybrid"
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
        """Submit ``bqm`` to the hybrid solver; its own microsecond timing stays beside the ns keys."""
        start = now_ns()
        check_capacity(self.name, bqm, self.max_variables, "the hybrid solver's limit")
        kwargs.pop("seed", None)
        limit = time_limit if time_limit is not None else self.time_limit
        if limit is not None:
            kwargs["time_limit"] = limit
        ss = self.child.sample(bqm, **kwargs)
        ss.resolve()
        own = dict(ss.info.get("timing") or {})
        own.update({k: v for k, v in ss.info.items() if k in ("run_time", "charge_time", "qpu_access_time")})
        ss.info["timing"] = {"preprocessing_ns": 0, "sampling_ns": now_ns() - start, "postprocessing_ns": 0, **own}
        return record(ss, None, start)
