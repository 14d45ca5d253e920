"""D-Wave backends: ``dwave`` (QPU), ``dwave-mock`` (the same code on a mock QPU) and ``dwave-hybrid``.

A neuron BQM is dense, so the QPU path embeds it on a clique (minorminer's busclique, chains of equal length).

* **Many neurons per call** (``parallel=True``, the default): the sampler takes whole layers
  (``sample_layer``, :mod:`._dwave_parallel`): the layer's neurons sit on disjoint clique embeddings, found once
  per (solver graph, size) and cached on disk (:mod:`._dwave_cliques`), as many per QPU call as the graph
  holds, each with its own chain strength; warm-started layers are reverse-annealed from the warm start where
  the solver supports it (:mod:`._dwave_anneal`). :meth:`QPUSampler.plan` predicts the calls and their QPU
  access time from the solver's ``problem_timing_data`` before any call (``--dry-run``, ``--qpu-budget``).
* **One neuron per call** (``parallel=False``): each neuron's BQM through ``sample`` on the clique embedding
  of its size (the same cache), with the scaling that ``DWaveCliqueSampler`` applies (:mod:`._dwave_embed`).

``sample`` returns as soon as the problem is submitted (``SampleSet.from_future``); a layer submits every call
before waiting on any. The QPU sampler's constructor calls the network, so it is built lazily at first use;
credentials are checked, without network, when the backend is created; ``parameters`` and
``properties["whole_layer"]`` never call the network. ``close()`` (or ``with``) closes the cloud client. The
API token is never stored in a repr, message or result.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from typing import Any

import dimod
import numpy as np
from dimod.exceptions import SamplerUnknownArgWarning
from minorminer.busclique import busgraph_cache

from qannealq.backends._common import check_capacity, close_child, draw_seed, now_ns, record
from qannealq.backends._dwave_anneal import (ANNEAL_MODES, NO_WARM_REVERSE, check_reversal_pause,
                                             check_reversal_point, check_solver_ranges, starts_at_one)
from qannealq.backends._dwave_cliques import CliqueCache
from qannealq.backends._dwave_cloud import (CREDENTIALS_HINT, HybridSampler, guard_logs, has_credentials,
                                            missing_credentials, portable_config, require_credentials,
                                            require_sent_token)
from qannealq.backends._dwave_embed import finish, submit
from qannealq.backends._dwave_parallel import (DECOMPOSE_OPTIONS, chain_break_method, chain_strength_of,
                                               seeded_chain_breaks, solve_layer)
from qannealq.backends._dwave_plan import QPUPlan, check_capacity_option, plan_bqms, plan_problems
from qannealq.backends.decompose import OPTION_RULES as DECOMPOSE_RULES
from qannealq.checks import (above, at_least, check_choice, check_flag, check_given, check_number, check_values,
                             is_count, one_of)
from qannealq.contract import Closeable, LayerSample, LazyProperties, without_secrets
from qannealq.errors import InvalidArgumentError

__all__ = ["QPUSampler", "MockQPUSampler", "HybridSampler", "has_credentials", "CREDENTIALS_HINT",
           "QPU_PARAMETERS", "LAYER_PARAMETERS"]

logger = logging.getLogger(__name__)

LAYER_PARAMETERS = ("anneal", "reversal_point", "reversal_pause", "reinitialize_state", "parallel", *DECOMPOSE_OPTIONS)
"""Options of the whole-layer path only (see :func:`._dwave_anneal.anneal_settings`; the decomposition's of the
neurons above the largest clique, :data:`._dwave_parallel.DECOMPOSE_OPTIONS`: one neuron per call, a
:class:`~.decompose.DecomposingSampler` around the sampler takes them)."""


def check_chain_strength(option: str, value: Any) -> Any:
    """A chain strength: a positive number or a callable ``f(bqm, embedding)`` (None, the default, is not checked)."""
    return value if callable(value) else check_number(option, value, 0.0)


def at_least_zero_us(option: str, value: Any) -> float:
    """A thermalization: microseconds >= 0 (its range is the solver's, checked with its properties)."""
    return check_number(option, value, 0.0, strict=False, unit="microseconds")


OPTION_RULES = {"num_reads": at_least(1), "anneal": one_of(*ANNEAL_MODES), "reinitialize_state": check_flag,
                "parallel": check_flag, "chain_strength_scale": above(0), "chain_strength": check_chain_strength,
                "annealing_time": above(0, "microseconds"), "reversal_point": check_reversal_point,
                "reversal_pause": check_reversal_pause, "chain_break_method": chain_break_method,
                "programming_thermalization": at_least_zero_us, "readout_thermalization": at_least_zero_us,
                **DECOMPOSE_RULES}
"""The QPU options whose values are checked before any work (:meth:`QPUSampler.check_options`)."""
QPU_PARAMETERS = ("num_reads", "chain_strength", "chain_strength_scale", "chain_break_method", "annealing_time",
                  "answer_mode", "anneal_schedule", "label", "programming_thermalization",
                  "readout_thermalization", "reduce_intersample_correlation", *LAYER_PARAMETERS)


TOPOLOGIES = ("pegasus", "zephyr", "chimera")
"""The graphs ``dwave-mock`` builds (dwave-system's ``MockDWaveSampler``)."""
TOPOLOGY_SHAPES = {"pegasus": (1, 1, 2, "[m], m >= 2 (P1 has no qubits), e.g. [16]"),
                   "zephyr": (1, 2, 1, "[m] or [m, t], e.g. [4] or [4, 4]"),
                   "chimera": (1, 3, 1, "[m], [m, n] or [m, n, t], e.g. [16] or [16, 16, 4]")}
"""Per topology: the least and most entries of ``topology_shape``, the least first entry, and what to give
(dwave_networkx's generators; a P1 graph is empty, a longer list is refused at the first call)."""


def check_topology_shape(topology_type: str, topology_shape) -> list[int]:
    """``topology_shape`` as a list, refused naming it where dwave-system would build no graph or an empty one."""
    fewest, most, least, hint = TOPOLOGY_SHAPES[topology_type]
    if (not isinstance(topology_shape, (list, tuple)) or not fewest <= len(topology_shape) <= most
            or not all(is_count(n) for n in topology_shape) or topology_shape[0] < least):
        raise InvalidArgumentError(f"topology_shape={topology_shape!r} must be a list of positive integers that "
                                   f"fits topology_type={topology_type!r}: {hint}")
    return [int(n) for n in topology_shape]


def _check_forward(schedule: object) -> None:
    """Refuse, in one BQM's ``sample``, an ``anneal_schedule`` that starts at s=1: a reverse anneal needs a state to
    start from, which only the whole-layer path has (the warm start); ``initial_state`` is not taken here. It
    passed every check and failed in dwave-cloud-client with a bare "reverse annealing requested ... but
    ``initial_state`` not provided"."""
    if starts_at_one(schedule):
        raise InvalidArgumentError(
            f"anneal_schedule={schedule!r} starts at s=1, a reverse anneal, which needs a state to start from: one "
            "BQM's sample takes none; start the schedule at s=0, or quantize whole layers (qannealq run, "
            "sample_layer), which anneal back from the warm start")


class QPUSampler(Closeable, dimod.Sampler):
    """``dwave``: a D-Wave QPU, many neurons per call through disjoint clique embeddings.

    Args:
        chain_strength: chain strength (a number, or a callable ``f(bqm, embedding)``); None (default): each
            neuron's ``uniform_torque_compensation``. A sampler option of the same name overrides it.
        num_reads: default reads per call (every neuron of a call gets these reads).
        parallel: many neurons per call (the whole-layer path); False: one neuron per call (``sample``).
        chain_strength_scale: factor on the chain strength (default 1.0).
        anneal: ``auto`` (reverse from the warm start where supported, else forward), ``forward``, ``reverse``.
        reversal_point, reversal_pause: the reverse schedule: back to s=``reversal_point``, held
            ``reversal_pause`` microseconds.
        embedding_cache: folder of the clique embedding cache (default ``<qannealq cache>/dwave-embeddings``).
        **config: passed to ``DWaveSampler`` (``solver``, ``region``, ``token``...) at first use.
    """

    name = "dwave"
    paid_calls = True  # every call costs QPU time: no untimed warm-up call (qannealq.compare.paid)
    default_max_variables: int | str | None = "largest clique"  # of the solver's graph: known once connected
    capacity_reason = "~177-184"
    missing_credentials = classmethod(missing_credentials)

    def __init__(self, chain_strength=None, num_reads: int = 100, parallel: bool = True,
                 chain_strength_scale: float = 1.0, anneal: str = "auto", reversal_point: float = 0.35,
                 reversal_pause: float = 8.0, embedding_cache=None, **config) -> None:
        require_credentials(self.name, config)
        self._setup(chain_strength, num_reads, parallel, chain_strength_scale, anneal, reversal_point,
                    reversal_pause, embedding_cache)
        self._config = config

    def __getstate__(self) -> dict:
        """Pickled (sent to a worker) without the token, the cloud client or what was read from the solver's
        graph (:func:`~qannealq.backends._dwave_cloud.portable_config`); the worker connects with its own token."""
        state = portable_config(self.__dict__)
        state.update(_graph=None, _graph_cache=None, _cliques=None, _embeddings={})
        return state

    def _setup(self, chain_strength, num_reads, parallel, chain_strength_scale, anneal, reversal_point,
               reversal_pause, embedding_cache) -> None:
        if not isinstance(parallel, bool):
            raise InvalidArgumentError(f"parallel={parallel!r} must be True or False")
        given = {"num_reads": num_reads, "chain_strength_scale": chain_strength_scale, "anneal": anneal,
                 "reversal_point": reversal_point, "reversal_pause": reversal_pause}
        check_given(QPUSampler.__init__, **given)  # the mock's defaults are the same
        if chain_strength is not None:
            given["chain_strength"] = chain_strength
        check_values(given, OPTION_RULES)  # as each call's options are: num_reads=0 was taken until the first call
        if embedding_cache is not None and not isinstance(embedding_cache, (str, os.PathLike)):
            raise InvalidArgumentError(f"embedding_cache={embedding_cache!r} must be a folder (a path), or None for "
                                       "the default <qannealq cache>/dwave-embeddings")
        self.chain_strength, self.num_reads, self.parallel = chain_strength, num_reads, parallel
        self.chain_strength_scale, self.anneal = chain_strength_scale, anneal
        self.reversal_point, self.reversal_pause = reversal_point, reversal_pause
        self._embedding_cache = embedding_cache
        self._child = self._graph = self._graph_cache = self._cliques = None
        self._embeddings: dict = {}
        self._config = {}
        self._withheld: tuple[str, ...] = ()

    def __repr__(self) -> str:
        safe = without_secrets(self._config)  # the one rule of what a secret is (a token, an api_key...)
        return (f"{type(self).__name__}(chain_strength={self.chain_strength!r}, num_reads={self.num_reads}, "
                f"parallel={self.parallel}, anneal={self.anneal!r}, {safe})")

    def _make_child(self) -> dimod.Sampler:
        from dwave.system import DWaveSampler

        guard_logs(self._config)  # also in a worker, which reads its own token
        return DWaveSampler(**self._config)

    @property
    def child(self) -> dimod.Sampler:
        """The structured sampler, built at first use (for the QPU this opens a network connection)."""
        if self._child is None:
            require_sent_token(self.name, self._withheld)
            self._child = self._make_child()
            self._graph = self._child.to_networkx_graph()
        return self._child

    @property
    def cliques(self) -> CliqueCache:
        """Disjoint clique embeddings of the solver's graph, per size, cached on disk."""
        if self._cliques is None:
            topology = dict(self.child.properties.get("topology", {}))
            self._cliques = CliqueCache(self._graph, topology, self._embedding_cache)
        return self._cliques

    def close(self) -> None:
        """Close the solver's cloud client (waits for submitted problems); safe to call twice."""
        child, self._child, self._graph, self._graph_cache, self._cliques = self._child, None, None, None, None
        self._embeddings.clear()
        if child is not None:
            close_child(child)

    @property
    def max_variables(self) -> int:
        """The largest clique the solver's working graph embeds (computed once)."""
        if "largest" not in self._embeddings:
            child = self.child
            self._graph_cache = self._graph_cache or busgraph_cache(self._graph)
            self._embeddings["largest"] = len(self._graph_cache.largest_clique()) if child else 0
        return self._embeddings["largest"]

    @property
    def solver(self) -> str:
        """The solver's name and topology, e.g. ``Advantage_system4.1 (pegasus [16])``."""
        props = self.child.properties
        topology = props.get("topology", {})
        return f"{props.get('chip_id', 'QPU')} ({topology.get('type', '?')} {topology.get('shape', '')})"

    @property
    def properties(self) -> Mapping:
        return LazyProperties({"max_variables": lambda: self.max_variables, "whole_layer": lambda: self.parallel,
                                "topology": lambda: dict(self.child.properties.get("topology", {})),
                                "solver": lambda: self.solver})

    @property
    def parameters(self) -> dict:
        """:data:`QPU_PARAMETERS`; with ``parallel=False`` less the whole-layer options. No network call."""
        names = QPU_PARAMETERS if self.parallel else [p for p in QPU_PARAMETERS if p not in LAYER_PARAMETERS]
        return {name: [] for name in names}

    def check_options(self, options: dict) -> None:
        """Refuse a bad value of the options checked here (:data:`OPTION_RULES`) before any work and any QPU
        time (:func:`qannealq.contract.check_options`); the solver checks its other parameters itself."""
        check_values(options, OPTION_RULES)

    def check_start_rows(self, options: dict, rows: int) -> None:
        """Refuse ``anneal='reverse'`` on the whole-layer path when the run gives no warm start (``rows`` 0,
        ``--warm-start none``): before training, where :meth:`plan` and :meth:`sample_layer` refused it after."""
        if not rows and options.get("anneal", self.anneal) == "reverse" and options.get("parallel", self.parallel):
            raise InvalidArgumentError(NO_WARM_REVERSE)

    def embedding(self, size: int) -> dict:
        """Clique embedding of variables ``0..size-1`` (the first of the cached set), found once per size."""
        if size not in self._embeddings:
            found = self.cliques.get(size, 1)
            if not len(found):
                raise InvalidArgumentError(f"no clique embedding of {size} variables on this solver")
            self._embeddings[size] = {v: list(chain) for v, chain in enumerate(found.embeddings[0])}
        return self._embeddings[size]

    def check_ranges(self, **options) -> None:
        """Refuse a sampler option outside the solver's stated range (``num_reads``, ``annealing_time``...:
        :func:`._dwave_anneal.check_solver_ranges`), reading the solver's properties (a QPU's: a connection, no
        QPU time), and a ``capacity`` above its largest clique. The commands ask before any training; :meth:`plan`
        and :meth:`sample` ask again. A solver that cannot be reached now is left to the solve, which connects
        again under ``--retries``."""
        try:
            properties = self.child.properties
        except Exception as exc:  # noqa: BLE001 (the network's or the cloud client's): not this check's to report
            logger.info("backend %r: the solver's ranges are checked at the first call (%s)", self.name,
                        type(exc).__name__)
            return
        check_solver_ranges(properties, {"num_reads": self.num_reads, **options}, self.name)
        if options.get("capacity") is not None:
            check_capacity_option(self, options["capacity"])

    def plan(self, problems, warm_start: bool = True, **options) -> QPUPlan:
        """The QPU calls of ``problems`` and their estimated access time; no QPU time spent (:mod:`._dwave_plan`).

        Args:
            problems: :class:`~qannealq.formulation.LayerProblem` objects (their names, bits and free variables).
            warm_start: whether the run gives a warm start (reverse annealing under ``anneal='auto'``).
            **options: sampler options (``num_reads``, ``anneal``, ``parallel``...); others are ignored here.
        """
        return plan_problems(self, problems, warm_start, options, QPU_PARAMETERS)

    def plan_bqms(self, bqms, repeats: int = 1, name: str = "neurons", **options) -> QPUPlan:
        """The plan of sampling each of ``bqms`` on its own, ``repeats`` times (one neuron per call, forward), as
        ``qannealq compare`` samples them; ``options`` as for :meth:`plan` (``num_reads``...)."""
        return plan_bqms(self, bqms, repeats, name, options, QPU_PARAMETERS)

    def sample_layer(self, problem, initial_states: np.ndarray | None = None, seed: int | None = None,
                     **kwargs) -> LayerSample:
        """Every neuron of ``problem``, many per QPU call (see :mod:`._dwave_parallel`).

        Unknown keyword arguments are warned about and dropped. ``info["qpu"]`` has the calls and the
        per-neuron QPU time, share and chain-break fraction; ``info["samplesets"]`` the raw SampleSets.
        """
        known = set(QPU_PARAMETERS) | set(self.parameters)
        for key in [k for k in kwargs if k not in known]:
            warnings.warn(f"Ignoring unknown kwarg: {key!r}", SamplerUnknownArgWarning, stacklevel=2)
            kwargs.pop(key)
        self.check_options(kwargs)
        kwargs.setdefault("parallel", self.parallel)
        return solve_layer(self, problem, initial_states, self._layer_seed(seed), **kwargs)

    def sample(self, bqm: dimod.BinaryQuadraticModel, chain_strength=None, **kwargs) -> dimod.SampleSet:
        """Embed ``bqm`` on a clique and submit it; returns at once, unembedded when resolved.

        Unknown keyword arguments (and the whole-layer options) are warned about and dropped. The resolved
        SampleSet has ``chain_break_fraction`` per sample and in ``info``, ``info["seed"]`` and ``info["timing"]``.
        """
        start = now_ns()
        kwargs = self.remove_unknown_kwargs(**kwargs)
        for key in [k for k in kwargs if k in LAYER_PARAMETERS]:
            warnings.warn(f"{key!r} applies to whole layers (sample_layer) only: ignored", SamplerUnknownArgWarning,
                          stacklevel=2)
            kwargs.pop(key)
        self.check_options({**kwargs, "chain_strength": chain_strength})
        check_capacity(self.name, bqm, self.max_variables, "the largest clique the solver embeds",
                       "use 'dwave-hybrid' or 'sa'")
        seed = self._seed(kwargs)
        kwargs.setdefault("num_reads", self.num_reads)
        if bqm.num_variables == 0:  # no call: no qubit, no chain broken (the statistics of any other BQM's info)
            empty = dimod.SampleSet.from_samples_bqm([{}], bqm, chain_break_fraction=[0.0])
            empty.info.update(chain_strength=None, chain_break_fraction=0.0, num_qubits=0, max_chain_length=0,
                              neurons_in_call=0)
            return record(empty, seed, start)
        check_solver_ranges(self.child.properties, kwargs, self.name)
        _check_forward(kwargs.get("anneal_schedule"))
        clique = self.embedding(bqm.num_variables)
        embedding = {v: clique[k] for k, v in enumerate(bqm.variables)}
        base = chain_strength if chain_strength is not None else self.chain_strength
        scale = kwargs.pop("chain_strength_scale", self.chain_strength_scale)
        chain_strength_of(bqm, embedding, 1.0, scale)  # checks the scale before any submission
        marks: dict = {}
        if "chain_break_method" in kwargs:  # a name, as the whole-layer path takes it, to dwave-system's function
            kwargs["chain_break_method"] = seeded_chain_breaks(
                chain_break_method("chain_break_method", kwargs["chain_break_method"]), seed)
        answer = submit(self.child, bqm, embedding, lambda b, e: chain_strength_of(b, e, base, scale), marks,
                        **kwargs)
        return dimod.SampleSet.from_future(
            answer, lambda done: record(finish(done, bqm, embedding, start, marks), seed, start))

    def _seed(self, kwargs: dict) -> int | None:
        return None  # a QPU takes no seed (``seed`` is not in its parameters)

    def _layer_seed(self, seed: int | None) -> int | None:
        return None

    def _seed_call(self, seed: int | None) -> None:
        """Seed the next call (the mock's annealer); a QPU takes no seed."""


class MockQPUSampler(QPUSampler):
    """``dwave-mock``: :class:`QPUSampler`'s code on a mock QPU (no network, no credentials).

    The mock (:mod:`._dwave_mock`) is dwave-system's ``MockDWaveSampler`` with an Advantage timing model and
    simulated annealing on the embedded problem, seeded per call, emulating reverse annealing.

    Args:
        topology_type: ``"pegasus"`` (default), ``"zephyr"`` or ``"chimera"``.
        topology_shape: e.g. ``[16]`` for Pegasus P16 (the default); ``[m]`` or ``[m, t]`` for Zephyr, ``[m]``,
            ``[m, n]`` or ``[m, n, t]`` for Chimera (:data:`TOPOLOGY_SHAPES`).
        **options: as for :class:`QPUSampler` (``num_reads``, ``parallel``, ``chain_strength``...).
    """

    name = "dwave-mock"
    paid_calls = False  # offline: compare's untimed warm-up call is free
    default_max_variables = 180  # len(busgraph_cache(pegasus P16).largest_clique()), the default topology
    capacity_reason = "largest clique, P16"

    @classmethod
    def missing_credentials(cls) -> None:
        """The mock needs no token."""
        return None

    def __init__(self, topology_type: str = "pegasus", topology_shape: list[int] | None = None,
                 chain_strength=None, num_reads: int = 100, parallel: bool = True, chain_strength_scale: float = 1.0,
                 anneal: str = "auto", reversal_point: float = 0.35, reversal_pause: float = 8.0,
                 embedding_cache=None) -> None:
        check_choice("topology_type", topology_type, TOPOLOGIES)
        self.topology_type = topology_type
        self.topology_shape = [16] if topology_shape is None else check_topology_shape(topology_type, topology_shape)
        self._setup(chain_strength, num_reads, parallel, chain_strength_scale, anneal, reversal_point,
                    reversal_pause, embedding_cache)

    def __repr__(self) -> str:
        return (f"MockQPUSampler(topology_type={self.topology_type!r}, topology_shape={self.topology_shape}, "
                f"chain_strength={self.chain_strength!r}, num_reads={self.num_reads}, parallel={self.parallel})")

    def _make_child(self) -> dimod.Sampler:
        from qannealq.backends._dwave_mock import TimedMockDWaveSampler

        return TimedMockDWaveSampler(topology_type=self.topology_type, topology_shape=self.topology_shape)

    @property
    def parameters(self) -> dict:
        return {**super().parameters, "seed": []}

    def _seed(self, kwargs: dict) -> int:
        seed = draw_seed(kwargs.pop("seed", None))
        self._seed_call(seed)
        return seed

    def _layer_seed(self, seed: int | None) -> int:
        return draw_seed(seed)

    def _seed_call(self, seed: int | None) -> None:
        self.child.substitute_kwargs = {"seed": seed}  # the mock samples at submission, with this seed
