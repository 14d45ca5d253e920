"""Backend registry: every backend is a ``dimod.Sampler``, imported lazily by name.

``get_sampler("sa")`` returns a sampler; ``available_backends()`` reports what is installed (``ready``,
``package missing`` with the pip command, or ``no credentials`` for the D-Wave cloud backends) and each
backend's capacity, without touching the network. The capacity text comes from the backend class itself:
its ``default_max_variables`` (None: any size) and ``capacity_reason``, through
:func:`qannealq.contract.describe_capacity`. Third-party backends register ``name = "module:Class"`` in the
entry-point group ``qannealq.backends``. A backend's SDK is imported only by its own module, when asked for.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Iterator

import dimod

from qannealq.contract import describe_capacity, without_secrets
from qannealq.errors import BackendUnavailableError, InvalidArgumentError

__all__ = ["BackendSpec", "BACKENDS", "ALIASES", "canonical_name", "get_sampler", "resolve_sampler",
           "available_backends", "BackendStatus", "capacity_of", "UNDOCUMENTED_CAPACITY", "with_retries", "decomposed",
           "auto_decompose", "built_options", "composed", "retries_failures"]

UNDOCUMENTED_CAPACITY = "see its documentation"


@dataclass(frozen=True)
class BackendSpec:
    """How to build a backend.

    Attributes:
        name: the registry key.
        target: ``"module:Class"``, imported at first use.
        summary: one line for ``qannealq backends``.
        extra: the pip extra providing its SDK (``pip install 'qannealq[extra]'``), None if always installed.
        family: classical, exact, D-Wave, Qiskit, third-party...
        warm_start: whether it takes ``initial_states``.

    The capacity is not here: the class says it (:func:`capacity_of`).
    """

    name: str
    target: str
    summary: str
    extra: str | None = None
    family: str = ""
    warm_start: bool = False


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in [
        BackendSpec("sa", "qannealq.backends.classical:SimulatedAnnealing",
                    "simulated annealing, one BQM per neuron (dwave-samplers)", None, "classical",
                    warm_start=True),
        BackendSpec("layer-sa", "qannealq.backends.layer_sa:LayerSASampler",
                    "whole-layer annealing over the shared Hessian, warm-started from GPTQ (the qubo default)",
                    None, "classical", warm_start=True),
        BackendSpec("tabu", "qannealq.backends.classical:Tabu", "tabu search (dwave-samplers)", None,
                    "classical", warm_start=True),
        BackendSpec("steepest", "qannealq.backends.classical:SteepestDescent",
                    "steepest descent from the warm start and random starts (dwave-samplers)", None,
                    "classical", warm_start=True),
        BackendSpec("exact", "qannealq.backends.exact:ExactSampler",
                    "brute force over all 2^m assignments (m <= 24); proves the optimum", None, "exact"),
        BackendSpec("gurobi", "qannealq.backends.gurobi:GurobiSampler",
                    "convex binary quadratic program solved by Gurobi; proves the optimum", "gurobi", "exact",
                    warm_start=True),
        BackendSpec("dwave", "qannealq.backends.dwave:QPUSampler",
                    "D-Wave QPU, clique embedding found once per size and reused", "dwave", "D-Wave"),
        BackendSpec("dwave-mock", "qannealq.backends.dwave:MockQPUSampler",
                    "the dwave code path on MockDWaveSampler (Pegasus P16), offline", "dwave", "D-Wave"),
        BackendSpec("dwave-hybrid", "qannealq.backends.dwave:HybridSampler", "Leap hybrid BQM solver",
                    "dwave", "D-Wave"),
        BackendSpec("qaoa", "qannealq.backends.qiskit:QAOASampler",
                    "QAOA (qiskit-optimization) on Aer or a statevector simulator", "qiskit", "Qiskit"),
    ]
}
ALIASES = {"neal": "sa"}
"""Other names of a backend (``neal``: dwave-neal's name for what dwave-samplers calls ``sa``), each naming a key
of :data:`BACKENDS` (no chains). Compare or key names through :func:`canonical_name`, never this table."""


def canonical_name(name: str) -> str:
    """The registry key of backend ``name``: an alias's backend (``neal`` -> ``sa``), else ``name`` as given (names
    are case-sensitive). Whatever compares backend names or keys something by one (duplicates, per-backend
    options and capacities, call seeds) goes through it, so that an alias is its backend everywhere."""
    return ALIASES.get(name, name)


@dataclass(frozen=True)
class BackendStatus:
    """One row of :func:`available_backends`.

    Attributes:
        name: registry key.
        status: ``ready``, ``package missing`` or ``no credentials``.
        summary: what the backend is.
        hint: what to do when not ready (the pip command, or how to set a token); never a secret.
        spec: the registry entry (family, extra, warm start).
        capacity: the largest problem it takes, in words (:func:`capacity_of` its class); empty when the
            backend's package is missing.
        plans_qpu: its class plans QPU calls before any (``plan_bqms``: ``dwave``, ``dwave-mock``).
    """

    name: str
    status: str
    summary: str
    hint: str = ""
    spec: BackendSpec | None = None
    capacity: str = ""
    plans_qpu: bool = False


def capacity_of(cls: type) -> str:
    """The capacity of backend class ``cls`` in words, from its ``default_max_variables`` and ``capacity_reason``.

    A class without ``default_max_variables`` (a third-party sampler) gets the ``max_variables`` its class-level
    ``properties`` dict states, as the contract reads it from an instance (a sampler stating 8 there was listed
    "see its documentation"), else :data:`UNDOCUMENTED_CAPACITY`.
    """
    if not hasattr(cls, "default_max_variables"):
        stated = vars(cls).get("properties")  # a dict on the class; a property (an instance's) cannot be read here
        limit = stated.get("max_variables") if isinstance(stated, dict) else None
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            return describe_capacity(limit, "its properties' max_variables")
        return UNDOCUMENTED_CAPACITY
    return describe_capacity(cls.default_max_variables, getattr(cls, "capacity_reason", "") or "")


def _specs() -> dict[str, BackendSpec]:
    specs = dict(BACKENDS)
    try:
        from importlib.metadata import entry_points

        for ep in entry_points(group="qannealq.backends"):
            specs.setdefault(ep.name, BackendSpec(ep.name, ep.value, f"third-party ({ep.value})", None,
                                                  "third-party"))
    except Exception:  # pragma: no cover - broken metadata must not break the registry
        pass
    return specs


def _load(spec: BackendSpec) -> type:
    module_name, _, attr = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = exc.name or module_name
        hint = f"pip install 'qannealq[{spec.extra}]'" if spec.extra else f"pip install the package providing {missing}"
        raise BackendUnavailableError(
            f"backend {spec.name!r} needs {missing}, which is not installed: {hint}"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise BackendUnavailableError(f"backend {spec.name!r}: {module_name} has no {attr!r}") from None


def get_sampler(name: "str | dimod.Sampler", **options: object) -> dimod.Sampler:
    """Build the backend ``name`` (or an alias) with constructor ``options``; a sampler instance is returned as is.

    Raises:
        InvalidArgumentError: unknown name, an option the backend's constructor does not take (named, with the ones
            it takes), or options given with an instance.
        BackendUnavailableError: the backend's SDK is missing (the message has the pip command).
        CredentialsError: a cloud backend without credentials (the message says how to set them).
    """
    if not isinstance(name, str):
        if options:
            raise InvalidArgumentError(f"options {sorted(options)} cannot be applied to an existing sampler")
        return resolve_sampler(name)
    key = canonical_name(name)
    specs = BACKENDS if key in BACKENDS else _specs()  # built-ins win: no scan of the entry points (9 ms)
    if key not in specs:
        raise InvalidArgumentError(
            f"backend={name!r} is unknown: choose one of {', '.join(sorted(specs) + sorted(ALIASES))}"
        )
    factory = _load(specs[key])
    _check_constructor_options(name, factory, options)
    sampler = factory(**options)
    try:  # what a worker needs to build it again (built_options): never a secret
        sampler._qannealq_built = (key, without_secrets(options))
    except AttributeError:  # a class with __slots__: workers cannot rebuild it by name
        pass
    return sampler


def built_options(sampler: dimod.Sampler, name: str) -> dict | None:
    """The constructor options that :func:`get_sampler` built backend ``name`` with, less any secret (a
    ``token``...: a worker reads its own), found in ``sampler`` or under its composites; None when it was not
    built so (a sampler made by its class, or another backend), so that it cannot be rebuilt by name."""
    key = canonical_name(name)
    while sampler is not None:
        built = getattr(sampler, "_qannealq_built", None)
        if built is not None:
            return dict(built[1]) if built[0] == key else None
        sampler = (getattr(sampler, "children", None) or [None])[0]
    return None


def _check_constructor_options(name: str, factory: type, options: dict) -> None:
    """Refuse constructor ``options`` that ``factory`` does not take, naming them and the ones it takes, where
    Python would raise a TypeError about ``__init__`` (``get_sampler("sa", num_reads=0)``: ``sa``'s options are
    each call's); a constructor that takes ``**kwargs`` (the QPU's solver config) is left to itself."""
    if not options:
        return
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature to read: the constructor checks
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(options) - set(params))
    if unknown:
        takes = ", ".join(params) or "none"
        raise InvalidArgumentError(
            f"backend {name!r} takes no constructor option {', '.join(unknown)} (its constructor options: {takes}); "
            "give options of each call to sample(...), or --sampler-option KEY=VALUE on the command line")


def resolve_sampler(sampler: "str | dimod.Sampler") -> dimod.Sampler:
    """Accept a backend name or any ``dimod.Sampler`` instance."""
    if isinstance(sampler, str):
        return get_sampler(sampler)
    if isinstance(sampler, dimod.Sampler) or hasattr(sampler, "sample"):
        return sampler
    raise InvalidArgumentError(f"sampler={sampler!r} is neither a backend name nor a dimod.Sampler")


def with_retries(name: str, sampler: dimod.Sampler, retries: int, seed: int | None = None) -> dimod.Sampler:
    """``sampler`` in a :class:`~qannealq.backends.retry.RetryComposite` when backend ``name`` calls a service
    (``retries`` retries of transient failures, jitter seeded by ``seed``), else ``sampler`` itself."""
    from qannealq.backends.retry import with_retries as wrap

    return wrap(name, sampler, retries, seed)


def composed(sampler: Any, depth: int = 16) -> Iterator[Any]:
    """``sampler`` and the samplers it wraps, outermost first, each composite's ``child`` down the chain (at most
    ``depth``: a retry wrapper around a decomposition around a QPU backend is three). The walk stops at one of the
    registry's own backends, which is what its ``name`` says: the next ``child`` of ``dwave-hybrid`` (or of the QPU
    backend) is its cloud client, built on first reading, and a check of names alone had reached for the network
    (a ``RequestTimeout`` offline)."""
    for _ in range(depth):
        if sampler is None:
            return
        yield sampler
        own = getattr(sampler, "name", None)
        if isinstance(own, str) and canonical_name(own) in BACKENDS:
            return
        sampler = getattr(sampler, "child", None)


def retries_failures(sampler: dimod.Sampler) -> bool:
    """Whether ``sampler`` (or a sampler it wraps: :func:`composed`) retries transient failures: a cloud backend
    wrapped by :func:`with_retries`."""
    from qannealq.backends.retry import RetryComposite

    return any(isinstance(inner, RetryComposite) for inner in composed(sampler))


def decomposed(sampler: "str | dimod.Sampler", capacity: int | None = None, **options: object) -> dimod.Sampler:
    """``sampler`` in the capacity-aware decomposition (:mod:`qannealq.backends.decompose`): BQMs larger than
    ``capacity`` (default: the backend's ``max_variables``) are solved as sub-problems of that size."""
    from qannealq.backends.decompose import decomposed as wrap

    return wrap(sampler, capacity, **options)


def auto_decompose(sampler: dimod.Sampler, **options: object) -> dimod.Sampler:
    """``sampler`` in the decomposition when it has a capacity limit and no whole-layer path, else itself."""
    from qannealq.backends.decompose import auto_decompose as wrap

    return wrap(sampler, **options)


def available_backends() -> list[BackendStatus]:
    """Every registered backend with its status; imports SDKs but never calls the network.

    ``ready``; ``package missing`` with the pip command; ``no credentials`` (the SDK is there but no API
    token is configured) with how to set one. ``capacity`` is the class's own (:func:`capacity_of`).
    """
    rows = []
    for name, spec in sorted(_specs().items()):
        try:
            cls = _load(spec)
        except BackendUnavailableError as exc:
            rows.append(BackendStatus(name, "package missing", spec.summary, str(exc), spec))
            continue
        check = getattr(cls, "missing_credentials", None)
        hint = check() if callable(check) else None
        status = "no credentials" if hint else "ready"
        rows.append(BackendStatus(name, status, spec.summary, hint or "", spec, capacity_of(cls),
                                  callable(getattr(cls, "plan_bqms", None))))
    return rows
