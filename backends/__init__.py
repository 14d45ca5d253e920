"""Backend registry: every backend is a ``dimod.Sampler``, imported lazily by name.

``get_sampler("sa")`` returns a sampler; ``available_backends()`` reports what is installed. Third-party
backends register ``name = "module:Class"`` in the entry-point group ``qannealq.backends``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import dimod

from qannealq.errors import BackendUnavailableError, InvalidArgumentError

__all__ = ["BackendSpec", "BACKENDS", "ALIASES", "get_sampler", "resolve_sampler", "available_backends",
           "BackendStatus"]


@dataclass(frozen=True)
class BackendSpec:
    """How to build a backend: ``target`` is ``"module:Class"``; ``extra`` the pip extra providing its SDK."""

    name: str
    target: str
    summary: str
    extra: str | None = None


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in [
        BackendSpec("sa", "dwave.samplers:SimulatedAnnealingSampler",
                    "simulated annealing, one BQM per neuron (dwave-samplers)"),
        BackendSpec("exact", "qannealq.backends.exact:ExactSampler",
                    "brute force over all 2^m assignments (m <= 24); proves the optimum"),
    ]
}
ALIASES = {"neal": "sa"}


@dataclass(frozen=True)
class BackendStatus:
    """One row of :func:`available_backends`."""

    name: str
    status: str
    summary: str
    hint: str = ""


def _specs() -> dict[str, BackendSpec]:
    specs = dict(BACKENDS)
    try:
        from importlib.metadata import entry_points

        for ep in entry_points(group="qannealq.backends"):
            specs.setdefault(ep.name, BackendSpec(ep.name, ep.value, f"third-party ({ep.value})"))
    except Exception:  # pragma: no cover - broken metadata must not break the registry
        pass
    return specs


def _load(spec: BackendSpec) -> type:
    module_name, _, attr = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"pip install 'qannealq[{spec.extra}]'" if spec.extra else f"install the package providing {module_name}"
        raise BackendUnavailableError(
            f"backend {spec.name!r} needs {module_name}, which is not installed ({exc.name}): {hint}"
        ) from exc
    return getattr(module, attr)


def get_sampler(name: str, **options: object) -> dimod.Sampler:
    """Build the backend ``name`` (or an alias) with constructor ``options``."""
    specs = _specs()
    key = ALIASES.get(name, name)
    if key not in specs:
        raise InvalidArgumentError(
            f"backend={name!r} is unknown: choose one of {', '.join(sorted(specs) + sorted(ALIASES))}"
        )
    return _load(specs[key])(**options)


def resolve_sampler(sampler: "str | dimod.Sampler") -> dimod.Sampler:
    """Accept a backend name or any ``dimod.Sampler`` instance."""
    if isinstance(sampler, str):
        return get_sampler(sampler)
    if isinstance(sampler, dimod.Sampler) or hasattr(sampler, "sample"):
        return sampler
    raise InvalidArgumentError(f"sampler={sampler!r} is neither a backend name nor a dimod.Sampler")


def available_backends() -> list[BackendStatus]:
    """Every registered backend with its status: ``ready`` or ``package missing`` (with the pip hint)."""
    rows = []
    for name, spec in sorted(_specs().items()):
        try:
            _load(spec)
            rows.append(BackendStatus(name, "ready", spec.summary))
        except BackendUnavailableError as exc:
            rows.append(BackendStatus(name, "package missing", spec.summary, str(exc)))
    return rows
