"""Capacity-aware decomposition: a composite that lets a backend with a size limit solve a larger BQM.

Large-neighbourhood search with the backend as the sub-solver (as D-Wave's ``dwave-hybrid`` energy-impact
decomposer does, here in a few dozen lines over the dense form ``E(x) = a·x + xᵀPx + c``):

1. **Start** from the warm start given as ``initial_states`` (the solve loop and ``compare`` give GPTQ
   restricted to floor/ceil; of several states, the lowest in energy), or else from a greedy descent from all
   zeros.
2. **Pick a sub-problem** of at most ``capacity`` variables: on a round after an improvement, the half of the
   capacity whose single flip gains most (lowest ``ΔE``); after a round without one, one random variable. The
   rest of the capacity is filled one at a time, each variable drawn with probability proportional to its
   coupling ``Σ|P_jl|`` to those already picked (so windows differ from round to round).
3. **Clamp** every other variable at its current value (its couplings fold into the sub-problem's linear
   terms and offset, so a sub-energy IS the full energy), solve the sub-BQM with the backend and **accept**
   the best returned sample if the full energy drops.
4. **Stop** after ``patience`` rounds in a row without improvement, or after ``max_calls`` backend calls.

A BQM that fits the backend's capacity is passed straight to it (``info["decomposed"]`` is False). The
SampleSet of a decomposed BQM holds one read (the final state) and ``info`` records ``decomposed``,
``rounds``, ``backend_calls``, ``energies`` (the energy after each round, the start first), ``accepted``,
``sub_sizes``, ``capacity``, ``start``, ``stop`` and ``timing``: ``sampling_ns`` is the backend's own summed
``sampling_ns`` and any QPU figures (``qpu_access_time``...) are summed over the calls; the composite's
own work is in ``preprocessing_ns``.
"""

from __future__ import annotations

import math
import time
from typing import Any

import dimod
import numpy as np

from qannealq.backends._common import as_bits, dense_binary
from qannealq.backends._decompose_search import Search, child_summary, greedy, timing_of
from qannealq.checks import at_least, check_positive, check_values
from qannealq.contract import LayerComposite, check_options, draw_seed, max_variables, sampler_name
from qannealq.errors import InvalidArgumentError

__all__ = ["DecomposingSampler", "decomposed", "capacity_limited", "auto_decompose", "SUB_PROBLEM_SIZE", "OPTION_RULES"]

_MISSING = object()
SUB_PROBLEM_SIZE = {"exact": 16}
"""Default sub-problem size of backends whose time grows steeply below their capacity (by their ``name``):
``exact`` enumerates ``2^m`` states, ~0.2 s at 16 variables but ~30 s at its capacity of 24."""
_OWN_PARAMETERS = ("initial_states", "seed", "capacity", "patience", "max_calls")
OPTION_RULES = {"capacity": at_least(1), "patience": at_least(1), "max_calls": at_least(1)}  # None: the sampler's own
"""The decomposition's own options and their rules (the QPU backend's whole-layer path takes the same)."""


def _start_states(initial_states: Any, labels: list, spin: bool) -> np.ndarray | None:
    """Every given initial state over ``labels`` as binary float rows ``(k, m)``, or None when none is given: 0/1
    values as bits and -1/+1 values as spins whatever the BQM's vartype (``spin``), as dwave-samplers read them
    (``sa`` started from -1s on a BINARY BQM starts from 0s; this refused them)."""
    if initial_states is None:
        return None
    arr, names = dimod.as_samples(initial_states)
    if arr.shape[0] == 0:
        return None
    column = {name: k for k, name in enumerate(names)}
    missing = [v for v in labels if v not in column]
    if missing:
        raise InvalidArgumentError(f"initial_states lacks variables {missing[:5]} of the BQM; give states "
                                   "over all of its variables")
    x = np.asarray(arr, dtype=np.float64)[:, [column[v] for v in labels]]
    bits = as_bits(x)
    if bits is not None:
        return bits
    wrong = sorted({float(value) for value in x.ravel() if value not in (-1.0, 0.0, 1.0)}) or [-1.0, 0.0]
    raise InvalidArgumentError(f"initial_states holds values {wrong[:5]}: give 0/1 (binary) or -1/+1 (spin) "
                               "values, one or the other throughout")


class DecomposingSampler(LayerComposite):
    """Solve BQMs larger than ``child``'s capacity by repeated sub-problems (see the module docstring).

    ``decomposes_above_capacity`` (a class attribute, True) lets callers say so without importing this class.

    Args:
        child: any ``dimod.Sampler`` (the sub-solver).
        capacity: BQMs above it are decomposed into sub-problems of this size (None: the child's
            ``properties["max_variables"]``, read at first use, with sub-problems capped by :data:`SUB_PROBLEM_SIZE`);
            one above the limit the child's class states as a number is refused by :meth:`check_options` and
            :meth:`sample`.
        patience: rounds in a row without improvement before stopping (None: ``ceil(2 m / capacity)``).
        max_calls: budget of backend calls per BQM.
    """

    decomposes_above_capacity = True

    def __init__(self, child: dimod.Sampler, capacity: int | None = None, patience: int | None = None,
                 max_calls: int = 100) -> None:
        super().__init__(child)
        capacity, patience = (None if v is None else check_positive(n, v)  # None: the child's capacity / no limit
                              for n, v in (("capacity", capacity), ("patience", patience)))
        self._capacity, self.patience, self.max_calls = capacity, patience, check_positive("max_calls", max_calls)

    def __repr__(self) -> str:
        return (f"DecomposingSampler({self.child!r}, capacity={self._capacity}, patience={self.patience}, "
                f"max_calls={self.max_calls})")

    @property
    def capacity(self) -> int:
        """BQMs above this size are decomposed (the given capacity, else the child's ``max_variables``)."""
        if self._capacity is not None:
            return self._capacity
        limit = max_variables(self.child, "give the decomposition a capacity")  # unreachable: a BackendError
        if limit is None:
            raise InvalidArgumentError(f"{sampler_name(self.child)} states no max_variables: give the decomposition "
                                       "a capacity")
        return limit

    @property
    def sub_size(self) -> int:
        """The size of the sub-problems: the given capacity, else the child's capacity capped by
        :data:`SUB_PROBLEM_SIZE`."""
        if self._capacity is not None:
            return self._capacity
        return min(self.capacity, SUB_PROBLEM_SIZE.get(getattr(self.child, "name", None), self.capacity))

    def sub_calls(self, num_variables: int, capacity: int | None = None, patience: int | None = None,
                  max_calls: int | None = None) -> tuple[int, int]:
        """The fewest and the most backend calls that :meth:`sample` makes on a BQM of ``num_variables`` (with the
        call's own ``capacity``, ``patience`` and ``max_calls``, as :meth:`sample` takes them): one where it fits,
        else from ``patience`` rounds without a gain to ``max_calls``."""
        if num_variables <= (capacity or self.capacity):
            return 1, 1
        most = max_calls or self.max_calls
        return min(most, self._patience(num_variables, capacity or self.sub_size, patience)), most

    def _patience(self, num_variables: int, size: int, patience: int | None) -> int:
        """Rounds in a row without a gain before a decomposed call stops: the call's, the sampler's, else
        ``ceil(2 m / size)``."""
        return patience or self.patience or math.ceil(2 * num_variables / size)

    @property
    def parameters(self) -> dict:
        return {**dict(self.child.parameters), **{name: [] for name in _OWN_PARAMETERS}}

    def property_values(self) -> dict:
        return {**super().property_values(), "max_variables": lambda: None, "capacity": lambda: self._capacity,
                "warm_up": lambda: False}  # not on a stand-in layer: a decomposed call may cost QPU time

    def uses_initial_states(self, bqm: dimod.BinaryQuadraticModel, capacity: int | None = None) -> bool:
        """Whether a call on ``bqm`` uses given initial states: the decomposition starts from them; a BQM that
        fits passes straight through, to a child that may not take them (a QPU's forward anneal)."""
        if bqm.num_variables > (capacity or self.capacity):
            return True
        return "initial_states" in self.child.parameters

    def check_options(self, options: dict) -> None:
        """Refuse a bad ``capacity``, ``patience`` or ``max_calls`` before any work, then the child's options by
        the child's own check (:func:`qannealq.contract.check_options`)."""
        check_values(options, OPTION_RULES)
        self.check_fits_child(options.get("capacity") or self._capacity)
        check_options(self.child, self._child_kwargs(options))

    def check_fits_child(self, capacity: int | None, given: str = "", backend: str = "") -> None:
        """Refuse a given ``capacity`` above the limit the child states (its class's ``default_max_variables``, a
        number: ``exact`` 24, ``qaoa`` its ``max_qubits``): its sub-problems would not fit it, and ``qannealq run
        --backend qaoa --sampler-option capacity=25`` trained, then failed at the first neuron with qaoa's own
        refusal, which names ``max_qubits`` and not the option. A limit known only once connected (a QPU's) is
        not read here. ``given`` names the option (``capacity=N``), ``backend`` the child (its own name)."""
        limit = self.exceeded_limit(capacity)
        if limit is not None:
            raise InvalidArgumentError(f"{given or f'capacity={capacity}'} is above the {limit} variables that backend "
                                       f"{backend or sampler_name(self.child)!r} takes: its sub-problems must fit it; "
                                       f"give at most {limit}, or leave it out for the backend's own")

    def exceeded_limit(self, capacity: int | None) -> int | None:
        """The child's limit where ``capacity`` is above it, else None: only a limit its class states as a number
        (``default_max_variables``), so that no QPU is contacted, or, where its class states none (a sampler of
        yours), its ``properties["max_variables"]``, as :func:`capacity_limited` reads it: a sampler declaring 8
        there had been handed whole 17-variable neurons under ``capacity=20``."""
        declared = _declared_capacity(self.child)
        numeric = isinstance(declared, int) and not isinstance(declared, bool)
        if capacity is None or not (numeric or declared is _MISSING):
            return None
        limit = max_variables(self.child)
        return limit if limit is not None and capacity > limit else None

    def _child_kwargs(self, kwargs: dict) -> dict:
        accepted = set(self.child.parameters)
        return {k: v for k, v in kwargs.items() if k in accepted}

    def sample(self, bqm: dimod.BinaryQuadraticModel, initial_states: Any = None, seed: int | None = None,
               capacity: int | None = None, patience: int | None = None, max_calls: int | None = None,
               **kwargs: Any) -> dimod.SampleSet:
        """Sample ``bqm``: straight through the child when it fits ``capacity``, else by decomposition.

        ``capacity``, ``patience`` and ``max_calls`` override the sampler's for this call (so that
        ``qannealq run --sampler-option capacity=16`` reaches it). ``kwargs`` the child lists in its
        ``parameters`` go to every child call (``num_reads``...); others are warned about and dropped.
        """
        kwargs = self.remove_unknown_kwargs(**kwargs)
        check_values({"capacity": capacity, "patience": patience, "max_calls": max_calls}, OPTION_RULES)
        self.check_fits_child(capacity or self._capacity)
        seed = draw_seed(seed)
        child_kw = self._child_kwargs(kwargs)
        size = capacity or self.sub_size
        if bqm.num_variables <= (capacity or self.capacity):
            return self._pass_through(bqm, initial_states, seed, child_kw)
        t0 = time.perf_counter_ns()
        spin = bqm.vartype is dimod.SPIN
        lin, mat, offset, labels = dense_binary(bqm)
        search = Search(lin, mat, offset, labels, np.random.default_rng(seed))
        starts = _start_states(initial_states, labels, spin)
        start = "initial_states" if starts is not None else "greedy"
        if starts is None:
            x = greedy(lin, mat, np.zeros(len(labels)))
        else:  # the lowest of the given states: the result is never worse than any of them
            x = starts[int(np.argmin([search.energy(row) for row in starts]))]
        patience = self._patience(len(labels), size, patience)
        x, log, child_infos = search.run(self.child, x, size, patience, max_calls or self.max_calls, child_kw)
        samples = (2 * x - 1 if spin else x).astype(np.int8)[None, :]
        ss = dimod.SampleSet.from_samples_bqm((samples, labels), bqm)
        own = time.perf_counter_ns() - t0 - log.pop("child_ns")
        ss.info.update(log, decomposed=True, capacity=size, start=start, seed=seed,
                       timing=timing_of(child_infos, own), **child_summary(child_infos))
        return ss

    def _pass_through(self, bqm: dimod.BinaryQuadraticModel, initial_states: Any, seed: int,
                      child_kw: dict) -> dimod.SampleSet:
        accepted = set(self.child.parameters)
        if "seed" in accepted:
            child_kw.setdefault("seed", seed)
        if initial_states is not None and "initial_states" in accepted:
            child_kw.setdefault("initial_states", initial_states)
        answer = self.child.sample(bqm, **child_kw)

        def done(ss: dimod.SampleSet) -> dimod.SampleSet:
            ss.resolve()
            ss.info["decomposed"] = False
            return ss

        return dimod.SampleSet.from_future(answer, done)


def decomposed(sampler: Any, capacity: int | None = None, **options: Any) -> DecomposingSampler:
    """``sampler`` (a backend name or a ``dimod.Sampler``) inside a :class:`DecomposingSampler`.

    ``decomposed("qaoa", capacity=16)``; ``options`` are ``patience`` and ``max_calls``.
    """
    from qannealq.backends import resolve_sampler

    return DecomposingSampler(resolve_sampler(sampler), capacity, **options)


def _declared_capacity(sampler: Any) -> Any:
    """The ``default_max_variables`` its class declares, looking through composites to the first child."""
    for _ in range(8):
        declared = getattr(type(sampler), "default_max_variables", _MISSING)
        if declared is not _MISSING:
            return declared
        children = getattr(sampler, "children", None)
        if not children:
            break
        sampler = children[0]
    return _MISSING


def capacity_limited(sampler: Any) -> bool:
    """Whether ``sampler`` has a size limit on single BQMs (so large neurons need decomposition).

    Reads the declared ``default_max_variables`` of its class (or, through composites such as the retry
    wrapper, of its child's), so that a QPU is not contacted; else ``properties["max_variables"]``
    (:func:`~qannealq.contract.max_variables`: a read that fails raises, naming the cause). A sampler
    with a whole-layer path may still be limited: the decomposition keeps that path (it is a
    :class:`~qannealq.contract.LayerComposite`) and decomposes only single BQMs.
    """
    if isinstance(sampler, DecomposingSampler):
        return False
    declared = _declared_capacity(sampler)
    if declared is not _MISSING:
        return declared is not None
    return max_variables(sampler) is not None


def auto_decompose(sampler: Any, **options: Any) -> Any:
    """``sampler`` in a :class:`DecomposingSampler` (``options``: capacity, patience, max_calls) when it is
    :func:`capacity_limited` or a ``capacity`` is given, else ``sampler`` itself.

    BQMs within the capacity still go straight to the backend; only larger ones are decomposed. A given
    ``capacity`` decomposes a backend that states no limit too (``compare --capacity sa=20``: it was ignored),
    and its solver's limit is then not read (a QPU is not contacted).
    """
    if isinstance(sampler, DecomposingSampler):  # decomposed already: its own options stand
        given = {key: value for key, value in options.items() if value is not None}
        own = {"capacity": sampler._capacity, "patience": sampler.patience, "max_calls": sampler.max_calls}
        differ = sorted(key for key, value in given.items() if own.get(key) != value)
        if differ:
            raise InvalidArgumentError(f"{sampler!r} is decomposed already, with other {', '.join(differ)}: pass "
                                       "its child, or no decomposition options")
        return sampler
    if options.get("capacity") is not None or capacity_limited(sampler):
        return DecomposingSampler(sampler, **options)
    return sampler
