"""The backend contract (ARCHITECTURE.md §3), below both the solve loop and the backends.

One module holds what a sampler and its caller must agree on, so that neither imports the other:

* :class:`LayerSample` and the whole-layer protocol :class:`LayerSampler` (``sample_layer``), with
  :func:`layer_solver`, the one test of whether a sampler (or a composite of ours around one) takes a whole
  layer; :class:`LayerComposite`, the base of our composites, keeps its child's whole-layer path.
* :func:`draw_seed`: the seed checked, or drawn so that it can be recorded.
* :func:`check_capacity` and :func:`describe_capacity`: capacity in one form, ``properties["max_variables"]``
  (None = any size), refused before any work with a message naming both sizes.
* :func:`check_parameters` and :func:`check_options`: a command's sampler options, their keys against
  ``parameters`` and their values by the sampler's own ``check_options`` hook, refused before any work.
* :func:`merge_timing`: the nanosecond timing keys summed over many SampleSets.
* :func:`redact`: the one way settings (sampler options) are stored; a token-like value is never written;
  :func:`without_secrets`: the same rule for what is pickled (a sampler sent to an executor's workers).
* :class:`Closeable`: ``close()`` and ``with`` support for samplers that hold a resource.
"""

from __future__ import annotations

import ast
import inspect
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence, runtime_checkable

import dimod
import numpy as np

from qannealq._deadline import Deadline
from qannealq.checks import is_count
from qannealq.errors import BackendError, InvalidArgumentError, ProblemTooLargeError, QannealqError

__all__ = ["LayerSample", "LayerSampler", "LayerComposite", "Closeable", "layer_solver", "warms_up", "load_compiled",
           "warm_start_beam", "warm_start_growth", "warm_start_paths", "warm_start_pilot", "warm_start_deadline",
           "warm_start_threads",
           "draw_seed", "sampler_name", "check_capacity", "qpu_planner", "check_qpu_ranges", "check_plans_budget",
           "accepted_options",
           "check_parameters", "check_keywords", "check_options", "check_start_rows", "check_reserved",
           "RESERVED_OPTIONS", "describe_capacity", "max_variables", "merge_timing", "note_spent", "spent_timing",
           "redact", "redact_values", "unredact", "read_repr", "REDACTED",
           "is_secret", "without_secrets", "LazyProperties", "TIMING_KEYS"]

TIMING_KEYS = ("preprocessing_ns", "sampling_ns", "postprocessing_ns")
REDACTED = "<redacted>"
_NUMPY_SCALAR = re.compile(r"u?int\d+|float\d+|bool_?|str_")  # np.<this>(value): numpy 2's repr of a scalar
_SECRET = re.compile(r"token|secret|password|api[_-]?key|credential", re.IGNORECASE)


@dataclass
class LayerSample:
    """What a whole-layer sampler returns.

    Attributes:
        assignments: best binary assignment of every neuron, ``(n, m)`` (entries at fixed coordinates ignored).
        energies: their QUBO energies, ``(n,)``.
        info: timing (``info["timing"]`` in ns), the seed used and solver details.
    """

    assignments: np.ndarray
    energies: np.ndarray
    info: dict = field(default_factory=dict)


@runtime_checkable
class LayerSampler(Protocol):
    """A sampler that solves every neuron of a layer at once over the shared ``H``.

    ``sample_layer(problem, initial_states=None, seed=None, **kwargs) -> LayerSample``, where ``problem`` is a
    :class:`qannealq.formulation.LayerProblem` and ``initial_states`` its warm assignments ``(n, m)``, or
    ``(n, k, m)`` (the warm start first) for a sampler whose :func:`warm_start_paths` asked for ``k`` > 1.
    """

    def sample_layer(self, problem: Any, initial_states: np.ndarray | None = None, seed: int | None = None,
                     **kwargs: Any) -> LayerSample: ...


class LazyProperties(Mapping):
    """A sampler's ``properties`` computed key by key when read, so that reading one (``whole_layer``) never
    builds what another needs (a cloud sampler's ``max_variables`` connects to its solver)."""

    def __init__(self, values: dict[str, Callable[[], Any]]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]()

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def layer_solver(sampler: Any) -> LayerSampler | None:
    """``sampler`` itself when it takes whole layers, else None.

    A sampler takes whole layers when it has a callable ``sample_layer`` and does not say otherwise in
    ``properties["whole_layer"]`` (a composite of ours sets it from its child: see :class:`LayerComposite`).
    """
    method = getattr(sampler, "sample_layer", None)
    if not callable(method):
        return None
    try:
        flag = sampler.properties.get("whole_layer", True)
    except Exception:  # a sampler whose properties need the network: trust the method
        flag = True
    return sampler if flag else None


def warms_up(sampler: Any) -> bool:
    """Whether the solve loop may warm ``sampler`` up on a stand-in layer before a layer's clock starts
    (:func:`qannealq.solve.warm_up`): ``properties["warm_up"]`` is True where its calls cost local time alone and
    its first call in a process loads code (``layer-sa``'s compiled kernels; a composite of ours: its child's
    word). Not a QPU or cloud sampler, whose every call costs QPU time or credit."""
    try:
        return bool(sampler.properties.get("warm_up", False))
    except Exception:  # a sampler whose properties need the network: no
        return False


def load_compiled(sampler: Any, kwargs: dict[str, Any]) -> None:
    """Load the compiled code ``sampler`` called with ``kwargs`` may run, every signature of it whatever a solve's
    timing (:func:`qannealq.solve.warm_up`, before its stand-in solves, which a loaded machine may cut before
    their later phases): what its ``load_compiled(**kwargs)`` does (``layer-sa``: its numba kernels' signatures;
    a composite of ours: its child's), nothing where it has none."""
    load = getattr(sampler, "load_compiled", None)
    if callable(load):
        load(**kwargs)


def warm_start_beam(sampler: Any, kwargs: dict[str, Any], inputs: int | None = None) -> int:
    """The width of the beam search the solve loop's warm start should run for ``sampler`` called with
    ``kwargs`` on a layer of ``inputs`` coordinates (:func:`qannealq.baselines.warm_start_integers`): what its
    ``warm_start_beam(inputs, **kwargs)`` says (``layer-sa``: by its effort and the layer's size; a composite of
    ours: its child's), else 0 (the GPTQ baseline alone). Where it asked for a beam and the loop's warm start
    has none (RTN), the loop calls it with ``warm_start_beam=0``: a search tuned to a beam's start (``layer-sa``'s
    one sweep after it) then runs as without one."""
    ask = getattr(sampler, "warm_start_beam", None)
    if not callable(ask):
        return 0
    try:
        params = inspect.signature(ask).parameters.values()
    except (TypeError, ValueError):  # no signature to read (a builtin): the current contract
        return int(ask(inputs, **kwargs))
    if any(p.name == "inputs" or p.kind is p.VAR_POSITIONAL for p in params):
        return int(ask(inputs, **{k: v for k, v in kwargs.items() if k != "inputs"}))
    return int(ask(**kwargs))  # a sampler written before the layer's size was passed


def _ask(sampler: Any, name: str, kwargs: dict[str, Any], inputs: int | None, default: Any) -> Any:
    """What ``sampler``'s method ``name`` says for ``kwargs`` (less any ``inputs``) on a layer of ``inputs``
    coordinates, ``name(inputs, **kwargs)``; ``default`` where it has no such method."""
    ask = getattr(sampler, name, None)
    if not callable(ask):
        return default
    return ask(inputs, **{k: v for k, v in kwargs.items() if k != "inputs"})


def warm_start_growth(sampler: Any, kwargs: dict[str, Any], inputs: int | None = None) -> float:
    """How the warm start's beam (:func:`warm_start_beam`, the width of its last block) widens along GPTQ's order
    for ``sampler`` called with ``kwargs`` on a layer of ``inputs`` coordinates: its last block's width over its
    first's, what its ``warm_start_growth(inputs, **kwargs)`` says (``layer-sa``: 8 where a population follows,
    else 1), else 1 (a constant width; :func:`qannealq._gptq_beam.beam_widths`)."""
    return float(_ask(sampler, "warm_start_growth", kwargs, inputs, 1.0))


def warm_start_paths(sampler: Any, kwargs: dict[str, Any], inputs: int | None = None) -> int:
    """How many warm starts per neuron the solve loop should give a whole-layer ``sampler`` called with
    ``kwargs`` on a layer of ``inputs`` coordinates: what its ``warm_start_paths(inputs, **kwargs)`` says
    (``layer-sa``: a population's reads, each from its own survivor of the beam), else 1. With more than one,
    the solve loop passes ``initial_states`` of shape ``(n, paths, m)``: the warm start first, then the beam's
    other survivors (:func:`qannealq.baselines.warm_start_integers`)."""
    return max(1, int(_ask(sampler, "warm_start_paths", kwargs, inputs, 1)))


def warm_start_pilot(sampler: Any, kwargs: dict[str, Any], inputs: int | None = None) -> bool:
    """Whether the solve loop's warm start without a beam, on a rank-deficient ``H``, takes the layer's damping
    from a pilot (:func:`qannealq.baselines.warm_start_integers`'s ``pilot``) for ``sampler`` called with
    ``kwargs`` on a layer of ``inputs`` coordinates: what its ``warm_start_pilot(inputs, **kwargs)`` says
    (``layer-sa``: yes), else False (both dampings on every neuron, each keeping its lower-energy start: the
    better start for a sampler that stays near it)."""
    return bool(_ask(sampler, "warm_start_pilot", kwargs, inputs, False))


def warm_start_threads(sampler: Any, kwargs: dict[str, Any], inputs: int | None = None) -> int | None:
    """The threads the solve loop's warm start (its beams, :func:`qannealq._pool.beam_threads`) should run on
    for a whole-layer ``sampler`` called with ``kwargs`` on a layer of ``inputs`` coordinates: what its
    ``warm_start_threads(inputs, **kwargs)`` says (``layer-sa``: its ``num_threads``, so that a run on one
    thread searches on one, beam included), else None (one per core)."""
    threads = _ask(sampler, "warm_start_threads", kwargs, inputs, None)
    if threads is not None and not is_count(threads):
        raise InvalidArgumentError(f"{type(sampler).__name__}.warm_start_threads returned {threads!r}: it must "
                                   "return an integer >= 1 or None (one per core)")
    return None if threads is None else int(threads)


def warm_start_deadline(sampler: Any, kwargs: dict[str, Any], inputs: int | None = None,
                        start: float | None = None) -> Deadline | None:
    """When the solve loop's warm start and the search after it should end, for a whole-layer ``sampler`` called
    with ``kwargs`` on a layer of ``inputs`` coordinates whose solve began at ``start`` (``time.perf_counter()``;
    None: now): what its ``warm_start_deadline(inputs, start=start, **kwargs)`` says (``layer-sa``: the end of its
    ``time_limit``, with the share of the time left that the beam may take once the start's fixed costs are
    paid; None without a limit), else None (no bound). Where it gives one, the loop's beam narrows to end by its
    share (:func:`qannealq.baselines.warm_start_integers`'s ``deadline``) and the loop passes the sampler
    ``time_spent``, the seconds the layer took before the call, which its time limit counts: the limit then
    bounds the whole layer, warm start included (without a limit too, to a sampler that lists ``time_spent``,
    whose trace then counts the warm start); ``late=True`` where the start left its beam out for lack of
    time (``Deadline.late``): the search then its cheapest, ``layer-sa``'s polish alone; ``start_cut=True``
    where the limit narrowed the beam (``Deadline.cut``): the limit binds, and ``layer-sa`` plans its search for
    it; and ``start_tight=True`` where the time left after the start's fixed costs was tight
    (``Deadline.searched_tight``): ``layer-sa`` then searches by its polish and, on a wide layer of chain moves, a
    greedy descent by chains."""
    ask = getattr(sampler, "warm_start_deadline", None)
    if not callable(ask):
        return None
    start = time.perf_counter() if start is None else float(start)
    deadline = ask(inputs, start=start, **{k: v for k, v in kwargs.items() if k not in ("inputs", "start")})
    if deadline is not None and not isinstance(deadline, Deadline):
        raise InvalidArgumentError(f"{type(sampler).__name__}.warm_start_deadline returned {deadline!r}: it must "
                                   "return a qannealq._deadline.Deadline or None")
    return deadline


class Closeable:
    """``with sampler: ...`` closes it; ``close()`` releases what it holds (idempotent; a no-op by default)."""

    def close(self) -> None:
        """Release the sampler's resources (licence environment, cloud client); safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LayerComposite(Closeable, dimod.ComposedSampler):
    """Base of qannealq's composites: one child; its whole-layer path and ``close()`` are kept.

    ``sample`` passes through to the child unchanged; subclasses override ``sample`` (and, where they change
    the solve, ``sample_layer``). ``properties["whole_layer"]`` is True exactly when the child takes whole
    layers, and ``sample_layer`` forwards to the child's.
    """

    def __init__(self, child: dimod.Sampler) -> None:
        self._children = [child]

    @property
    def child(self) -> dimod.Sampler:
        return self._children[0]

    @property
    def children(self) -> list:
        return self._children

    @property
    def parameters(self) -> dict:
        return dict(self.child.parameters)

    @property
    def properties(self) -> Mapping[str, Any]:
        """The child's word, each key read when asked (:meth:`property_values`): ``whole_layer`` and ``warm_up``
        never build a cloud child (a Leap outage while the run chose its path made ``dwave-hybrid`` a
        whole-layer solver, which it is not)."""
        return LazyProperties(self.property_values())

    def property_values(self) -> dict[str, Callable[[], Any]]:
        """How to compute each property; a composite with properties of its own adds or replaces entries."""
        return {"child_properties": lambda: dict(self.child.properties),
                "max_variables": lambda: self.child.properties.get("max_variables"),
                "whole_layer": lambda: layer_solver(self.child) is not None, "warm_up": lambda: warms_up(self.child)}

    def sample(self, bqm: dimod.BinaryQuadraticModel, **kwargs: Any) -> dimod.SampleSet:
        return self.child.sample(bqm, **kwargs)

    def check_options(self, options: Mapping[str, Any]) -> None:
        """The child's :func:`check_options` (a composite that takes options of its own checks them first)."""
        check_options(self.child, options)

    def load_compiled(self, **kwargs: Any) -> None:
        """The child's :func:`load_compiled`."""
        load_compiled(self.child, kwargs)

    def warm_start_beam(self, inputs: int | None = None, **kwargs: Any) -> int:
        """The child's :func:`warm_start_beam`."""
        return warm_start_beam(self.child, kwargs, inputs)

    def warm_start_growth(self, inputs: int | None = None, **kwargs: Any) -> float:
        """The child's :func:`warm_start_growth`."""
        return warm_start_growth(self.child, kwargs, inputs)

    def warm_start_paths(self, inputs: int | None = None, **kwargs: Any) -> int:
        """The child's :func:`warm_start_paths`."""
        return warm_start_paths(self.child, kwargs, inputs)

    def warm_start_pilot(self, inputs: int | None = None, **kwargs: Any) -> bool:
        """The child's :func:`warm_start_pilot`."""
        return warm_start_pilot(self.child, kwargs, inputs)

    def warm_start_deadline(self, inputs: int | None = None, start: float | None = None,
                            **kwargs: Any) -> Deadline | None:
        """The child's :func:`warm_start_deadline`."""
        return warm_start_deadline(self.child, kwargs, inputs, start)

    def warm_start_threads(self, inputs: int | None = None, **kwargs: Any) -> int | None:
        """The child's :func:`warm_start_threads`."""
        return warm_start_threads(self.child, kwargs, inputs)

    def sample_layer(self, problem: Any, initial_states: np.ndarray | None = None, seed: int | None = None,
                     **kwargs: Any) -> LayerSample:
        """The child's whole-layer solve (raises when the child has none: check :func:`layer_solver`)."""
        inner = layer_solver(self.child)
        if inner is None:
            raise InvalidArgumentError(f"{type(self.child).__name__} does not solve whole layers; sample each "
                                       "neuron's BQM instead")
        return inner.sample_layer(problem, initial_states=initial_states, seed=seed, **kwargs)

    def close(self) -> None:
        for child in self._children:
            close = getattr(child, "close", None)
            if callable(close):
                close()


def sampler_name(sampler: Any, backend: str = "") -> str:
    """The name of ``sampler`` in results and messages: ``backend`` where the caller named it, else the registry
    name :func:`qannealq.backends.get_sampler` built it under, else its own ``name`` (our backends'), a retry
    composite's ``backend``, else its class's name."""
    built = getattr(sampler, "_qannealq_built", None)
    own = getattr(sampler, "name", None)
    return str(backend or (built and built[0]) or (isinstance(own, str) and own) or getattr(sampler, "backend", None)
               or type(sampler).__name__)


def draw_seed(seed: int | None) -> int:
    """``seed`` checked, or a fresh 31-bit seed when None (so that the seed used can be recorded).

    Raises:
        InvalidArgumentError: ``seed`` is not an integer in ``0..2**32-1``.
    """
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2 ** 32:
        raise InvalidArgumentError(f"seed={seed!r} must be an integer in 0..2**32-1 or None")
    return int(seed)


def describe_capacity(limit: int | str | None, why: str = "") -> str:
    """The capacity in words, as ``qannealq backends`` shows it: ``any``, or ``N`` with the reason.

    ``limit`` may also be words, for a backend whose limit only its solver knows (a cloud solver's graph):
    ``describe_capacity("largest clique of the solver's graph", "~177-184")``.
    """
    if limit is None:
        return "any" if not why else f"any ({why})"
    return f"{limit}" + (f" ({why})" if why else "")


def max_variables(sampler: Any, hint: str = "") -> int | None:
    """``sampler.properties["max_variables"]``; None when the sampler states none (unknown: any size, as far as it
    says). A read that fails is not "no limit": a cloud solver's (``LazyProperties``) may be unreachable.
    ``hint``: what else the caller's user may do, added to the error.

    Raises:
        CredentialsError: a cloud sampler that has no token here (a worker sent one without its token); any other
            of our errors as raised.
        BackendError: reading it failed (the solver unreachable...): names the sampler (a retry composite's
            backend) and the cause, and says what to do.
    """
    try:
        limit = sampler.properties.get("max_variables")
    except QannealqError:  # not a passing network failure: the worker needs a token of its own, say
        raise
    except Exception as exc:
        raise BackendError(f"{sampler_name(sampler)} could not give its capacity (max_variables): "
                           f"{type(exc).__name__}: {exc}; the solver may be unreachable: run again later"
                           f"{', or ' + hint if hint else ''}") from None
    return None if limit is None else int(limit)


def check_capacity(backend: str, bqm: dimod.BinaryQuadraticModel | int, limit: int | None, why: str = "",
                   hint: str = "") -> None:
    """Refuse ``bqm`` (or a size) before running when it has more than ``limit`` variables (None: no limit).

    Raises:
        ProblemTooLargeError: naming the backend, the BQM's size, the limit and what to do.
    """
    size = bqm if isinstance(bqm, (int, np.integer)) else bqm.num_variables
    if limit is None or size <= limit:
        return
    reason = f" ({why})" if why else ""
    advice = f": {hint}" if hint else ""
    raise ProblemTooLargeError(f"backend {backend!r} takes at most {limit} variables{reason}; this BQM has "
                               f"{size}{advice}")


def qpu_planner(sampler: Any) -> Any:
    """``sampler``, or the first of its children (through composites), that plans QPU calls (``plan``: the
    ``dwave`` and ``dwave-mock`` backends), else None. ``run`` and ``sweep`` ask it for ``--dry-run`` and
    ``--qpu-budget``."""
    return _first_with(sampler, "plan")


def _first_with(sampler: Any, method: str) -> Any:
    """``sampler``, or the first of its children (through composites), with a callable ``method``, else None."""
    for _ in range(8):
        if sampler is None or callable(getattr(sampler, method, None)):
            return sampler
        sampler = (getattr(sampler, "children", None) or [None])[0]
    return None


def check_qpu_ranges(sampler: Any, options: Mapping[str, Any]) -> None:
    """Refuse ``options`` outside the stated ranges of the cloud solver ``sampler`` sends its calls to (the
    ``check_ranges`` of the sampler or of its first child that has one: the QPU's ``num_reads=100000`` failed
    after training, the hybrid solver's ``time_limit`` below its minimum too); nothing for a local sampler."""
    checker = _first_with(sampler, "check_ranges")
    if checker is not None:
        checker.check_ranges(**options)


def check_plans_budget(plans: Sequence[Any], seconds: float) -> None:
    """Refuse the QPU ``plans`` of several backends (their planners' ``plan`` or ``plan_bqms``) when their summed
    estimate exceeds ``seconds``: one plan over all their layers, named by the backends joined with ``+``."""
    joined = type(plans[0])("+".join(plan.backend for plan in plans), plans[0].solver,
                            tuple(layer for plan in plans for layer in plan.layers))
    joined.check_budget(seconds)


def accepted_options(sampler: Any) -> set[str] | None:
    """The option keys ``sampler`` takes: its ``parameters``, and ``seed`` and ``initial_states`` for a whole-layer
    solver (the solve loop passes them); None where reading ``parameters`` needs the network (the sampler then
    checks its keys itself)."""
    try:
        known = set(sampler.parameters)
    except Exception:  # parameters that need the network
        return None
    return known | ({"seed", "initial_states"} if layer_solver(sampler) is not None else set())


#: Sampler options the solve loop and ``compare`` set on every call themselves: given as options too, they
#: ended a run in a ``TypeError`` after training (``run --sampler-option seed=3``: "got multiple values for
#: keyword argument 'seed'") or were replaced without a word (``compare``'s seeds).
RESERVED_OPTIONS = {
    "seed": "each call's seed comes from the run's (--seed; compare: --solver-seed; quantize_model: seed=)",
    "initial_states": "the warm start gives them (--warm-start; quantize_model: warm_start=)",
}
_HAND_OFF = ("the solve loop sets it under a time limit, to tell layer-sa what its warm start did (the limit: "
             "--time-limit; quantize_model: time_limit=)")
#: ``layer-sa``'s hand-off keys (:func:`warm_start_deadline`): the solve loop's, never the user's. Given as
#: options they were checked and used without a time limit and replaced by the loop's own under one.
RESERVED_OPTIONS.update({key: _HAND_OFF for key in ("time_spent", "late", "start_cut", "start_tight")})


def check_reserved(options: Mapping[str, Any], given: str = "--sampler-option") -> None:
    """Refuse :data:`RESERVED_OPTIONS` among sampler ``options``, naming the setting that gives them.

    Raises:
        InvalidArgumentError: ``seed``, ``initial_states`` or a hand-off key among ``options``.
    """
    for key in sorted(set(options) & set(RESERVED_OPTIONS)):
        raise InvalidArgumentError(f"{given} {key}: {RESERVED_OPTIONS[key]}; it is not a sampler option here")


#: The sampler options the commands also take as flags of their own (``qannealq.cli._args``: ``--effort`` and
#: ``--time-limit`` go in as ``--sampler-option effort=...`` and ``time_limit=...``): a refusal names both, as
#: ``run --backend sa --time-limit 5`` was told only of a "--sampler-option time_limit" it was not given.
_OPTION_FLAGS = {"effort": "--effort", "time_limit": "--time-limit"}


def check_parameters(backend: str, sampler: Any, options: Mapping[str, Any], given: str = "--sampler-option") -> None:
    """Refuse sampler options that ``sampler.parameters`` does not list, naming the valid ones.

    Used by the commands before any training or solving, and by ``quantize_model`` for a backend given by name
    (a sampler itself warns about and drops an unknown keyword, as dimod's ``remove_unknown_kwargs`` does).
    ``given``: how the options were given, said first in the message.

    Raises:
        InvalidArgumentError: an unknown key (the message lists the valid keys).
    """
    check_reserved(options, given)
    known = accepted_options(sampler)
    if known is None:  # parameters that need the network: leave the check to the sampler
        return
    unknown = sorted(set(options) - known)
    for key in unknown:  # run's options go to its one backend: BACKEND:KEY read as a key, beside the key listed
        _, scoped, option = key.partition(":")
        if scoped and option in known - set(RESERVED_OPTIONS):
            raise InvalidArgumentError(
                f"{given} {key}: every option here goes to backend {backend!r}, by its key alone (BACKEND:KEY "
                f"picks one of several backends in sweep and compare): give {option}=VALUE")
    if unknown:
        if given == "--sampler-option":  # the commands' --effort and --time-limit are sampler options too
            unknown = [f"{key} (or {_OPTION_FLAGS[key]})" if key in _OPTION_FLAGS else key for key in unknown]
        raise InvalidArgumentError(
            f"{given} {', '.join(unknown)}: backend {backend!r} does not take "
            f"{'this option' if len(unknown) == 1 else 'these options'}; valid keys: "
            f"{', '.join(sorted(known - set(RESERVED_OPTIONS)))}")
    try:
        check_options(sampler, options)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{given} {exc} (backend {backend!r})") from None


def check_keywords(backend: str, sampler: Any, options: Mapping[str, Any], given: str) -> None:
    """Sampler options given to the Python API (``quantize_layer``, ``quantize_model``): a backend of ours (one
    with a ``check_options`` hook, whose ``parameters`` list every option it takes) refuses an unknown key as
    the commands do (:func:`check_parameters`: ``time_limt=30`` was warned about, dropped, and the layer ran
    without a limit); another ``dimod.Sampler`` keeps dimod's rule (it warns about an unknown keyword and drops
    it), its values checked where it has the hook. Reserved keys are refused either way.

    Raises:
        InvalidArgumentError: a reserved or (a backend of ours) an unknown key, or a bad value.
    """
    if callable(getattr(sampler, "check_options", None)) and accepted_options(sampler) is not None:
        check_parameters(sampler_name(sampler, backend), sampler, options, given)
        return
    check_reserved(options, given)
    check_options(sampler, options)


def check_options(sampler: Any, options: Mapping[str, Any]) -> None:
    """Refuse option values ``sampler`` would refuse, before any work: its ``check_options(options)`` hook where
    it has one (every backend of ours; a composite of ours checks its own options and passes the rest to its
    child), else nothing (a sampler without the hook checks its values when it samples).

    Raises:
        InvalidArgumentError: the first bad value, named with the option (``num_reads=-1 must be ...``).
    """
    hook = getattr(sampler, "check_options", None)
    if callable(hook):
        hook(dict(options))


def note_spent(exc: BaseException, timing: Mapping[str, float]) -> BaseException:
    """Add to ``exc`` the device time a failed attempt had already spent, in ``info["timing"]``'s own units (a
    QPU's ``qpu_access_time``... in microseconds: a layer's calls answered before another failed), so that a
    retry (:class:`~qannealq.backends.retry.RetryComposite`) counts it; returns ``exc``."""
    spent = spent_timing(exc)
    for key, value in timing.items():
        spent[key] = spent.get(key, 0.0) + float(value)
    exc.qannealq_spent_timing = spent  # type: ignore[attr-defined]
    return exc


def spent_timing(exc: BaseException) -> dict[str, float]:
    """The device time :func:`note_spent` recorded on ``exc`` (empty where none)."""
    return dict(getattr(exc, "qannealq_spent_timing", None) or {})


def check_start_rows(sampler: Any, options: Mapping[str, Any], rows: int, given: str = "--sampler-option") -> None:
    """Refuse sampler ``options`` that need more given initial states than the ``rows`` each BQM will get (its
    ``check_start_rows(options, rows)`` hook where it has one: ``initial_states_generator='none'`` without a warm
    start, or with a ``num_reads`` above its rows), before any work: the sampler refused them only at the first
    neuron, after training and calibration.

    Raises:
        InvalidArgumentError: the sampler's own refusal, after ``given``.
    """
    owner = _first_with(sampler, "check_start_rows")  # through composites (retries, decomposition)
    if owner is not None:
        try:
            owner.check_start_rows(dict(options), rows)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{given} {exc}") from None


def merge_timing(infos: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Sum every ``*_ns`` key of the ``info["timing"]`` of many SampleSets (or ``info`` dicts)."""
    total: dict[str, int] = {}
    for info in infos:
        for key, value in (info.get("timing") or {}).items():
            if key.endswith("_ns"):
                total[key] = total.get(key, 0) + int(value)
    return total


def unredact(stored: Mapping[str, str], given: Mapping[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    """Sampler options back from :func:`redact`'s form (each ``repr`` read as a Python literal where it is
    one), with the options ``given`` again in their place; a secret, never stored, must be among them.

    Raises:
        InvalidArgumentError: a redacted secret is not given again (``where`` names the run, ``prefix`` is
            what the command line puts before the key: ``compare`` takes ``--sampler-option BACKEND:KEY=...``).
    """
    options: dict[str, Any] = {}
    for key, text in stored.items():
        if text == REDACTED:
            if key not in given:
                raise InvalidArgumentError(f"{where}: the stored run had the secret sampler option {key!r}, "
                                           f"which is never stored; give it again (--sampler-option {prefix}{key}=...) "
                                           "or set it in the environment")
            continue
        options[key] = read_repr(text)
    return {**options, **given}


def read_repr(text: str) -> Any:
    """The value whose ``repr`` (:func:`redact`) is ``text`` where it is a Python literal, ``text`` itself otherwise
    (an object's repr). numpy 2's reprs of a scalar (``np.int64(2)``, ``np.True_``), which :func:`redact` wrote
    before 2026-12-06 and a version 1 model file holds, are read as the literal they hold, at any depth (a text that
    merely reads ``'np.int64(2)'`` stays that text)."""
    try:
        return ast.literal_eval(_NumpyScalars().visit(ast.parse(text, mode="eval")))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


class _NumpyScalars(ast.NodeTransformer):
    """numpy 2's reprs of a scalar (``np.float64(0.5)``, ``np.True_``), at any depth, as the literal they hold."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func, node = node.func, self.generic_visit(node)
        numpy = isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "np"
        scalar = numpy and _NUMPY_SCALAR.fullmatch(func.attr) and len(node.args) == 1 and not node.keywords
        return node.args[0] if scalar else node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        numpy = isinstance(node.value, ast.Name) and node.value.id == "np"
        return ast.Constant(node.attr == "True_") if numpy and node.attr in ("True_", "False_") else node


def redact(options: Mapping[str, Any]) -> dict[str, str]:
    """Settings as they may be stored: ``repr`` of each value, ``<redacted>`` where the key names a secret.

    Keys containing ``token``, ``secret``, ``password``, ``api_key`` or ``credential`` (any case) are never
    written; nested mappings are redacted the same way.
    """
    shown: dict[str, str] = {}
    for key, value in options.items():
        if is_secret(key):
            shown[key] = REDACTED
        elif isinstance(value, Mapping):
            shown[key] = repr(redact(value))
        else:  # a numpy scalar as its value: "np.int64(2)" was refused by a resume giving 2, and read back as text
            shown[key] = repr(value.item() if isinstance(value, np.generic) else value)
    return shown


def is_secret(key: object) -> bool:
    """Whether a setting's key names a secret (the keys :func:`redact` withholds)."""
    return bool(_SECRET.search(str(key)))


def without_secrets(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` less every key that names a secret (:func:`is_secret`), at any depth: what a sampler may
    carry when it is pickled (sent to a process or Dask worker, which reads its own credentials)."""
    return {key: without_secrets(value) if isinstance(value, Mapping) else value
            for key, value in options.items() if not is_secret(key)}


def redact_values(options: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as JSON values, for a reader rather than a resume: each value as itself where JSON holds it
    exactly (text, a bool, an integer, a finite float, None, a list of those, a mapping with text keys),
    ``repr`` otherwise (``nan``, an array, an object), and ``<redacted>`` where the key names a secret, at any
    depth (the keys :func:`redact` withholds). A model file's settings (:mod:`qannealq.model_export`)."""
    return {str(key): REDACTED if is_secret(key) else _json_value(value) for key, value in options.items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Mapping):
        return redact_values(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float) and np.isfinite(value):
        return value
    return repr(value)
