"""The backend comparison harness: the same neuron BQMs through many samplers, solution quality and TTS.

:func:`compare_backends` runs every ready backend on every instance ``repeats`` times (one stored unit per
backend x instance x repeat, so ``--resume`` skips finished calls), computes each instance's reference
optimum once (:mod:`qannealq._compare_reference`: ``proven`` or ``best-known``), and returns typed rows and
summaries (:mod:`qannealq._compare_report`). A backend with a capacity limit gets larger instances through the
capacity-aware decomposition (:mod:`qannealq.backends.decompose`); a backend that is not ready (missing
package, no credentials) is skipped with its reason. ``qannealq compare`` is the command line around it.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import dimod
import numpy as np

from qannealq._compare_instances import NeuronInstance, Reference, instances_from_experiment, instances_from_layer
from qannealq._compare_pace import outlook, paid, part, time_left
from qannealq._compare_reference import ReferenceOptions, reference_optimum
from qannealq._compare_report import CompareResult, CompareRow, format_summary, summarise
from qannealq._defaults import EVERY, OFFLINE_BACKENDS
from qannealq._sample_checks import check_sampleset
from qannealq.checks import as_values, check_distinct, check_positive, check_seed
from qannealq.contract import (RESERVED_OPTIONS, accepted_options, check_parameters, check_qpu_ranges, redact,
                               unredact)
from qannealq.data import data_fingerprint
from qannealq.errors import BackendUnavailableError, CredentialsError, InvalidArgumentError
from qannealq.metrics import ONE_CALL_FLOOR, call_timing
from qannealq.report import LogReporter, Reporter
from qannealq.store import ResultStore, check_distinct_keys, unit_key

__all__ = ["CompareSettings", "compare_backends", "check_backend_options", "stored_settings", "OFFLINE_BACKENDS",
           "DETERMINISTIC", "DEFAULT_OPTIONS", "unit_seed", "run_unit", "NeuronInstance", "Reference", "CompareResult",
           "CompareRow", "ReferenceOptions", "instances_from_experiment", "instances_from_layer", "format_summary"]

logger = logging.getLogger(__name__)

DEFAULT_OPTIONS = {"gurobi": {"time_limit": 10.0}}
"""Options every call of a backend gets unless ``sampler_options`` say otherwise (Gurobi would otherwise
search until it proves the optimum, which on ~60-variable neurons takes hours); known by the name compared or by
their sampler's ``name`` (:func:`_default_options`)."""
QUBIT_PER_VARIABLE = ("qaoa",)
"""Backends that use one qubit per variable of the BQM they solve and do not report ``num_qubits``: their
``qubits`` column is the neuron's size, or the decomposition's sub-problem size where smaller."""
#: The second success target's default (within 1 %), or ``eps`` where that is larger.
LOOSE_EPS = 0.01
DETERMINISTIC = ("exact", "gurobi")
"""Backends whose call returns the optimum, not samples: one read per call (``--reads`` is not passed), known by
the name compared or by their sampler's ``name`` (:func:`_deterministic`)."""
_EXTRA_KEYS = ("chain_break_fraction", "chain_strength", "num_qubits", "max_chain_length", "reps", "shots",
               "optimizer_evals", "circuit_depth", "proved_optimal", "rounds", "backend_calls", "accepted",
               "capacity", "stop", "energies", "device")


@dataclass(frozen=True)
class CompareSettings:
    """How the backends are compared (validated on construction).

    Attributes:
        reads: ``num_reads`` per call for backends that take it (not for :data:`DETERMINISTIC` ones; qaoa's
            reads are its ``shots``).
        repeats: calls per backend and instance, each with its own seed.
        eps: success when ``E <= E_ref + eps |E_ref| + noise`` (1e-9: the optimum up to float noise; ``noise``:
            :func:`qannealq.metrics.energy_noise`, which counts an optimum of 0 computed as 1e-16).
        loose_eps: a second, looser target, at least ``eps`` (None: 0.01, within 1 %, or ``eps`` where that is
            larger).
        seed: base of every call's seed (:func:`unit_seed`).
        warm_start: give the GPTQ-restricted state as ``initial_states`` to backends that take one, as the start
            of every read.
        sampler_options: per backend, keyword arguments for every ``sample`` call; under :data:`EVERY`, those of
            every backend that takes them (a backend's own win).
        capacity: per backend, the decomposition's sub-problem size (default: the backend's capacity).
        max_calls: the decomposition's budget of backend calls per BQM.
        reference: how the reference optimum is found.
    """

    reads: int = 10
    repeats: int = 3
    eps: float = 1e-9
    loose_eps: float | None = None
    seed: int = 0
    warm_start: bool = True
    sampler_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    capacity: Mapping[str, int] = field(default_factory=dict)
    max_calls: int = 100
    reference: ReferenceOptions = field(default_factory=ReferenceOptions)

    def __post_init__(self) -> None:
        check_positive("--reads", self.reads)
        check_positive("--repeats", self.repeats)
        check_positive("--max-calls", self.max_calls)
        check_seed("--solver-seed", self.seed)
        for name, value in (("--eps", self.eps), ("--loose-eps", self.loose_eps)):
            if value is None and name == "--loose-eps":
                continue
            # inf counted every read a success (p 1 for a backend 37x above the optimum; NaN where E_ref is 0)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise InvalidArgumentError(f"{name}={value!r} must be a finite number >= 0 (a relative tolerance)")
        if self.loose_eps is None:
            object.__setattr__(self, "loose_eps", max(LOOSE_EPS, self.eps))
        elif self.loose_eps < self.eps:
            raise InvalidArgumentError(
                f"--loose-eps={self.loose_eps!r} is below --eps={self.eps!r}: the second success target must be "
                f"at least as loose as the first (give --loose-eps >= --eps, or leave it out: it is then "
                f"{LOOSE_EPS} or --eps where that is larger)")
        object.__setattr__(self, "sampler_options", {k: dict(v) for k, v in self.sampler_options.items()})
        object.__setattr__(self, "capacity", dict(self.capacity))
        for name, value in self.capacity.items():
            check_positive(f"--capacity {name}", value)
        from qannealq.backends import canonical_name

        for option, given in (("--sampler-option", list(self.sampler_options)), ("--capacity", list(self.capacity))):
            check_distinct(option, [canonical_name(n) for n in given], given)  # sa and neal: one backend

    def stored(self) -> dict:
        """The settings as stored with the results (sampler options redacted)."""
        out = asdict(self)
        out["sampler_options"] = {k: redact(v) for k, v in self.sampler_options.items()}
        return out

    def options_for(self, name: str, sampler: Any = None) -> dict:
        """Backend ``name``'s sampler options: those given to every backend (:data:`EVERY`) that ``sampler``
        takes (all of them when its keys are not known, or without ``sampler``), then its own (given under its
        name or an alias of it)."""
        shared = self.sampler_options.get(EVERY, {})
        known = accepted_options(sampler) if sampler is not None and shared else None
        skip = _one_read(name, sampler)
        return {**{k: v for k, v in shared.items() if (known is None or k in known) and k not in skip},
                **_of_backend(self.sampler_options, name, {})}

    def capacity_for(self, name: str) -> int | None:
        """Backend ``name``'s ``capacity`` (given under its name or an alias of it), None when not given."""
        return _of_backend(self.capacity, name)

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any], where: str, **given: Any) -> "CompareSettings":
        """The settings stored with a comparison (:meth:`stored`; other keys ignored), with the fields ``given``
        in their place; ``reference`` may be a dict of :class:`ReferenceOptions` fields, ``sampler_options``
        per backend the options to set (a redacted secret must be among them).

        Raises:
            InvalidArgumentError: a stored secret sampler option is not given again (``where`` names the folder).
        """
        kept = {k: v for k, v in stored.items() if k in {f.name for f in fields(cls)}}
        reference = ReferenceOptions(**{**kept.pop("reference", {}), **given.pop("reference", {})})
        saved, options = kept.pop("sampler_options", {}), given.pop("sampler_options", {})
        kept["sampler_options"] = {name: unredact(saved.get(name, {}), options.get(name, {}), where, f"{name}:")
                                   for name in {**saved, **options}}
        return cls(**{**kept, **given, "reference": reference})


def _deterministic(name: str, sampler: Any = None) -> bool:
    """Whether backend ``name`` is :data:`DETERMINISTIC`, by its name or by the ``name`` of ``sampler`` or of a
    sampler it wraps: ``{"exact-30": ExactSampler(30)}`` got ``num_reads=10`` by its name, and its 10 lowest
    states as 10 reads gave it p 0.1 and a TTS99 5x its call on neurons it had solved."""
    return _known_as(name, sampler, DETERMINISTIC)


def _one_call(name: str, sampler: Any) -> bool:
    """Whether backend ``name``'s TTS99 is at least one call (:data:`qannealq.metrics.ONE_CALL_FLOOR`), by its name
    or by the ``name`` of ``sampler`` or of one it wraps: the report went by the name alone, and ``qaoa`` compared
    as ``qaoa-2`` had a TTS99 of 2.6 ms from its 0.45 s call."""
    return _known_as(name, sampler, ONE_CALL_FLOOR)


def _known_as(name: str, sampler: Any, names: Any) -> bool:
    """Whether backend ``name`` is one of ``names``, by its name or by the ``name`` of ``sampler`` or of a sampler
    it wraps, down to one of the registry's own backends (:func:`qannealq.backends.composed`: not its cloud
    client)."""
    from qannealq.backends import canonical_name, composed

    return canonical_name(name) in names or any(getattr(inner, "name", None) in names for inner in composed(sampler))


def _default_options(name: str, sampler: Any) -> dict:
    """Backend ``name``'s :data:`DEFAULT_OPTIONS`, by its name or by the ``name`` of ``sampler`` or of one it
    wraps: ``gurobi`` compared as ``gurobi-fast`` got no ``time_limit`` by its name, and searched for a proof."""
    return next((dict(options) for key, options in DEFAULT_OPTIONS.items() if _known_as(name, sampler, (key,))), {})


def _one_read(name: str, sampler: Any = None) -> tuple[str, ...]:
    """The read count a :data:`DETERMINISTIC` backend (``name``) must not be given: ``exact`` with ``num_reads=5``
    returned its 5 lowest states as 5 reads, 4 of them failures, and reported p 0.2 and a TTS99 4x its call."""
    return ("num_reads",) if _deterministic(name, sampler) else ()


def _of_backend(per_backend: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """Backend ``name``'s entry in ``per_backend``, keyed by its name or an alias of it (``neal`` for ``sa``)."""
    from qannealq.backends import canonical_name

    key = canonical_name(name)
    return next((v for k, v in per_backend.items() if canonical_name(k) == key), default)


def stored_settings(source: Mapping[str, Any] | None, instances: Sequence[str], backends: Sequence[str],
                    settings: CompareSettings) -> dict:
    """What a comparison stores with its results, and a resume must match: where the instances come from,
    their names, the backends and the settings (sampler options redacted). A warm-started comparison records
    that every read starts warm (``warm_start_reads``): a store written before 2026-12-06, whose dwave-samplers
    calls started one read warm and the rest at random, lacks it, so a resume does not mix its units with new
    ones."""
    warm = {"warm_start_reads": "every"} if settings.warm_start else {}
    return {"source": dict(source or {}), "instances": list(instances), "backends": list(backends),
            **settings.stored(), **warm}


def unit_seed(seed: int, backend: str, instance: str, repeat: int) -> int:
    """The seed of one call: the same for a (seed, backend, instance, repeat) wherever it runs, and whatever name
    of the backend is given (``neal`` is ``sa``)."""
    from qannealq.backends import canonical_name

    words = [seed, zlib.crc32(canonical_name(backend).encode()), zlib.crc32(instance.encode()), repeat]
    return int(np.random.SeedSequence(words).generate_state(1)[0] & 0x7FFFFFFF)


class _MemoryStore:
    """A :class:`ResultStore` stand-in when no results folder is given."""

    def __init__(self) -> None:
        self.units: dict[str, dict] = {}
        self.resumed: list[str] = []

    def close(self) -> None:
        pass

    def get(self, key: str) -> dict | None:
        return self.units.get(key)

    def put(self, key: str, record: Mapping[str, Any]) -> None:
        self.units[key] = dict(record)


def _build(names: Sequence[str] | Mapping[str, dimod.Sampler], settings: CompareSettings
           ) -> tuple[dict[str, dimod.Sampler], dict[str, str]]:
    """The ready samplers (decomposing where capacity-limited) and the skipped backends with their reasons."""
    from qannealq.backends import auto_decompose, available_backends, canonical_name, get_sampler

    given = dict(names) if isinstance(names, Mapping) else {name: None for name in names}
    status = {row.name: row for row in available_backends()}
    samplers, skipped = {}, {}
    for name, sampler in given.items():
        row = status.get(canonical_name(name))
        if sampler is None and row is not None and row.status != "ready":
            skipped[name] = f"{row.status}: {row.hint}"
            continue
        try:
            sampler = sampler if sampler is not None else get_sampler(name)
        except (BackendUnavailableError, CredentialsError) as exc:
            skipped[name] = str(exc)
            continue
        own = [key for key in _one_read(name, sampler) if key in _of_backend(settings.sampler_options, name, {})]
        if own:
            raise InvalidArgumentError(
                f"--sampler-option {name}:{own[0]}: {name!r} makes one read per call in a comparison (it returns the "
                "optimum; its further reads would be the next-lowest states, counted as failures in p and TTS99): "
                "leave it out")
        sampler = auto_decompose(sampler, capacity=settings.capacity_for(name), max_calls=settings.max_calls)
        _check_capacity(name, sampler, settings)  # before the decomposition's own check, to name the flag
        check_parameters(name, sampler, settings.options_for(name, sampler))
        samplers[name] = sampler
    if not samplers:  # `--backends dwave` without a token computed every reference optimum, then compared nothing
        reasons = "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
        raise InvalidArgumentError(f"--backends={','.join(given)}: no backend to compare is ready ({reasons}); "
                                   "nothing would be compared: give at least one ready backend (`qannealq backends` "
                                   "shows each one's status)")
    compared = {canonical_name(name) for name in given} | {EVERY}
    unknown = {name for name in settings.sampler_options if canonical_name(name) not in compared}
    if unknown:
        raise InvalidArgumentError(f"--sampler-option names backends {sorted(unknown)} that are not compared "
                                   f"({', '.join(given)})")
    unknown = {name for name in settings.capacity if canonical_name(name) not in compared}
    if unknown:  # it was dropped without a word (a misspelt backend's capacity left the default in place)
        raise InvalidArgumentError(f"--capacity names backends {sorted(unknown)} that are not compared "
                                   f"({', '.join(given)}): give BACKEND=N for one of them")
    known = [None if k is None else k - set(_one_read(name, sampler))
             for name, sampler, k in ((n, s, accepted_options(s)) for n, s in samplers.items())]
    for key in settings.sampler_options.get(EVERY, {}):
        if samplers and not any(k is None or key in k for k in known):
            keys = "; ".join(f"{name}: {', '.join(sorted(k - set(RESERVED_OPTIONS))) or 'none'}"
                             for name, k in zip(samplers, known))
            raise InvalidArgumentError(f"--sampler-option {key}: none of the compared backends "
                                       f"({', '.join(samplers)}) takes this option (their keys: {keys}); check the "
                                       "key, or give BACKEND:KEY=VALUE to one of them")
    return samplers, skipped


def _check_capacity(name: str, sampler: Any, settings: CompareSettings) -> None:
    """Refuse a decomposition capacity (``--capacity`` or the ``capacity`` sampler option) above the limit that
    backend ``name`` states (:meth:`~qannealq.backends.decompose.DecomposingSampler.check_fits_child`: ``exact``
    24, ``qaoa`` 20), naming the flag: its sub-problems would not fit it, and ``--capacity exact=30`` failed at
    its first call, after the training, the reference optima and the backends before it, naming no option."""
    check = getattr(sampler, "check_fits_child", None)
    if check is None:
        return  # not decomposed: no capacity of its own to check
    given = [(f"--capacity {name}={value}", value) for value in (settings.capacity_for(name),) if value is not None]
    option = settings.options_for(name, sampler).get("capacity")
    if isinstance(option, int) and not isinstance(option, bool):
        given.append((f"--sampler-option {name}:capacity={option}", option))
    for flag, value in given:
        check(value, flag, name)


def check_backend_options(names: Sequence[str], settings: CompareSettings,
                          built: Mapping[str, dimod.Sampler] | None = None) -> None:
    """Every compared backend's ``--sampler-option`` keys and values, and the backends they name, checked before
    any training (:func:`qannealq.contract.check_parameters`), and a cloud solver's against its stated ranges
    (:func:`qannealq.contract.check_qpu_ranges`: a QPU's ``num_reads``, a hybrid solver's least ``time_limit``;
    a connection, no QPU time): the ready samplers are built as the comparison builds them and closed again,
    but for those given in ``built`` (a QPU backend's, whose cloud client the comparison keeps for its calls)."""
    built = dict(built or {})
    samplers, _ = _build({name: built.get(name) for name in names}, settings)
    try:
        for name, sampler in samplers.items():
            check_qpu_ranges(sampler, {"num_reads": settings.reads, **settings.options_for(name, sampler)})
    finally:
        for name, sampler in samplers.items():
            close = getattr(sampler, "close", None)
            if callable(close) and name not in built:
                close()


def _extras(info: Mapping[str, Any]) -> dict:
    out = {k: info[k] for k in _EXTRA_KEYS if k in info}
    for key, value in list(out.items()):
        if isinstance(value, (np.generic,)):
            out[key] = value.item()
    return out


def run_unit(sampler: dimod.Sampler, name: str, instance: NeuronInstance, repeat: int,
             settings: CompareSettings) -> dict:
    """One call of ``sampler`` on ``instance``: every read's energy (recomputed on the BQM), timing, seed."""
    params = set(sampler.parameters)
    kwargs = {**_default_options(name, sampler), **settings.options_for(name, sampler)}
    seed = unit_seed(settings.seed, name, instance.name, repeat) if "seed" in params else None
    if seed is not None:
        kwargs["seed"] = seed
    if "num_reads" in params and not _deterministic(name, sampler):
        kwargs.setdefault("num_reads", settings.reads)
    warm = settings.warm_start and "initial_states" in params and instance.warm_start is not None
    uses = getattr(sampler, "uses_initial_states", None)  # the decomposition passes a fitting BQM through
    if warm and callable(uses):
        warm = uses(instance.bqm, kwargs.get("capacity"))
    if warm:
        # every read starts from the warm start, as layer-sa's do: given one row, sa, tabu and steepest would
        # start the other num_reads - 1 at random, and p and TTS99 would depend on --reads
        kwargs["initial_states"] = instance.initial_states(kwargs.get("num_reads") or 1)
    t0 = time.perf_counter()
    sampleset = sampler.sample(instance.bqm, **kwargs)
    if isinstance(sampleset, dimod.SampleSet):
        sampleset.resolve()
    wall = time.perf_counter() - t0
    labels = list(instance.bqm.variables)
    bits = check_sampleset(sampleset, labels, name, f"neuron {instance.name}")  # 0/1, in the BQM's order
    samples = 2 * bits - 1 if instance.bqm.vartype is dimod.SPIN else bits
    energies = np.asarray(instance.bqm.energies((samples, labels)), dtype=np.float64)
    reads = np.repeat(energies, sampleset.record.num_occurrences)
    timing = call_timing(sampleset, wall)
    best = samples[int(np.argmin(energies))] if len(energies) else np.array([])
    info = _extras(sampleset.info)
    if "num_qubits" not in info and _known_as(name, sampler, QUBIT_PER_VARIABLE):
        # by the sampler: the report went by the name alone, and qaoa compared as qaoa-12 had no qubits
        info["num_qubits"] = min(instance.num_variables, info.get("capacity") or instance.num_variables)
    return {"backend": name, "instance": instance.name, "repeat": repeat, "seed": seed,
            "warm_start": bool(warm), "energies": reads.tolist(), "reads": int(reads.size),
            "best_sample": dict(zip((str(v) for v in labels), (int(b) for b in best))),
            "wall_s": timing.wall_s, "solver_s": timing.solver_s, "qpu_access_s": timing.qpu_access_s,
            "decomposed": bool(sampleset.info.get("decomposed", False)), "one_call_floor": _one_call(name, sampler),
            "timing": {k: v for k, v in (sampleset.info.get("timing") or {}).items()
                       if isinstance(v, (int, float))},
            "info": info}


def _references(instances: Sequence[NeuronInstance], store, settings: CompareSettings,
                reporter: Reporter) -> dict[str, Reference]:
    refs = {}
    with reporter.progress(len(instances), "reference optima", "neuron") as bar:
        for instance in instances:
            key = unit_key(kind="reference", instance=instance.name)
            stored = store.get(key)
            if stored is None:
                ref = reference_optimum(instance, settings.reference)
                store.put(key, {"kind": "reference", "instance": instance.name, **ref.to_dict(),
                                "instance_sha256": instance.digest()})
            else:
                ref = Reference.from_dict(stored)
            refs[instance.name] = ref
            bar.update(1)
    return refs


def _check_same_instances(instances: Sequence[NeuronInstance], store, out: Path | None) -> None:
    """Refuse a resume whose instances differ from the stored comparison's of the same names (their
    :meth:`~NeuronInstance.digest`, stored with each reference; a store written without it is not checked): an
    ``--instances`` folder exported again from a model of another seed kept the names, and the resume mixed the
    stored calls and references with calls on the new QUBOs (``exact`` 4 % above its own reference, p 0)."""
    changed = []
    for instance in instances:
        stored = store.get(unit_key(kind="reference", instance=instance.name)) or {}
        if stored.get("instance_sha256") not in (None, instance.digest()):
            changed.append(instance.name)
    if changed:
        raise InvalidArgumentError(
            f"--resume {out}: {len(changed)} neuron QUBO(s) differ from those of the same name the stored comparison "
            f"ran ({', '.join(changed)}: their biases or warm start changed, so the model or the --instances folder "
            "is not the one it read); resume with those, or start a new comparison with --out")


def compare_backends(instances: Sequence[NeuronInstance], samplers: Sequence[str] | Mapping[str, dimod.Sampler],
                     settings: CompareSettings | None = None, out: Path | None = None, resume: bool = False,
                     reporter: Reporter | None = None, source: Mapping[str, Any] | None = None) -> CompareResult:
    """Run every ready backend on every instance and summarise quality and time-to-solution.

    Args:
        instances: the neuron BQMs (:func:`qannealq._compare_instances.instances_from_experiment`, or
            :func:`qannealq.export.load_instances`); every backend sees exactly these BQMs.
        samplers: backend names (one name alone: that backend), or a mapping name -> ``dimod.Sampler``.
        settings: reads, repeats, targets, seeds, options (:class:`CompareSettings`).
        out: results folder (a :class:`~qannealq.store.ResultStore`); None keeps the units in memory.
        resume: continue the comparison stored in ``out`` (same settings), skipping finished calls.
        reporter: messages and progress (default: the log).
        source: where the instances come from (dataset, layer, bits, or an instances folder), stored with
            the settings (in ``out``'s ``store.json`` and the result's ``settings``, which ``compare.json`` holds).

    Returns:
        :class:`~qannealq._compare_report.CompareResult` (rows per call, summaries per backend and neuron,
        per backend, the references and the skipped backends).
    """
    settings = settings or CompareSettings()
    reporter = reporter or LogReporter()
    if not isinstance(samplers, Mapping):
        samplers = list(as_values(samplers))  # "sa": one backend, not "s" and "a"
    from qannealq.backends import canonical_name

    check_distinct("samplers", [canonical_name(n) for n in samplers], list(samplers))  # each once: sa,neal is sa twice
    if not instances:
        raise InvalidArgumentError("no instances to compare: select at least one neuron")
    names = [i.name for i in instances]
    if len(set(names)) != len(names):
        raise InvalidArgumentError("instance names must be unique")
    check_distinct_keys("samplers", list(samplers))
    check_distinct_keys("instances", names)
    built, skipped = _build(samplers, settings)
    for name, reason in skipped.items():
        reporter.message(f"skipping backend {name!r}: {reason}")
    stored = stored_settings(source, names, samplers, settings)
    store = ResultStore.open(Path(out), "compare", stored, resume, data_fingerprint) if out is not None \
        else _MemoryStore()
    if store.resumed:
        reporter.message(f"resuming {out}: {len(store.resumed)} finished unit(s) kept, not recomputed")
    try:
        if store.resumed:
            _check_same_instances(instances, store, out)
        refs = _references(instances, store, settings, reporter)
        units = _run_all(built, instances, store, settings, reporter)
    finally:
        store.close()
        for sampler in built.values():
            close = getattr(sampler, "close", None)
            if callable(close):
                close()
    result = summarise(instances, refs, units, settings, skipped, list(built))
    result.settings = {**stored, **result.settings}  # compare.json says what was compared, as store.json does
    return result


def _warm_up(sampler: dimod.Sampler, name: str, instances: Sequence[NeuronInstance], settings: CompareSettings,
             reporter: Reporter) -> tuple[float, int | None] | None:
    """One untimed call of ``sampler`` on the smallest instance (the timed calls' options, a seed no timed call
    has), before its first timed call in this process: the first call pays what a process pays once (numba
    loading its compiled kernels: ``layer-sa``'s first call on a 4x4-digits neuron took 51 ms, its later ones
    7 ms; an SDK's or a simulator's first set-up), which would otherwise inflate one neuron's times. Not for
    :func:`paid` backends, whose every call costs. Returns its seconds and, where it solved one sub-problem of
    a decomposition, that sub-problem's size (None: a whole instance), or None for a paid backend."""
    if paid(name, sampler):
        return None
    smallest = min(instances, key=lambda instance: instance.bqm.num_variables)
    size = getattr(sampler, "sub_size", None) if getattr(sampler, "decomposes_above_capacity", False) else None
    where, decomposed = smallest.name, size is not None and smallest.num_variables > size
    if decomposed:
        # one call of the size the decomposition sends the backend loads what a process loads once; a whole
        # decomposed neuron took 200 s of gurobi's (MNIST, 599 variables) to warm it up
        where = f"the {size} most coupled variables of {smallest.name} (its sub-problems' size)"
        smallest = part(smallest, size)
    t0 = time.perf_counter()
    run_unit(sampler, name, smallest, settings.repeats, settings)  # repeat index past the timed ones: own seed
    seconds = time.perf_counter() - t0
    reporter.message(f"{name}: one untimed warm-up call on {where} ({seconds:.2f} s)")
    return seconds, (size if decomposed else None)


def _embed_ahead(sampler: dimod.Sampler, todo: Sequence[NeuronInstance]) -> None:
    """The clique embedding of every neuron size in ``todo`` that a QPU backend (ours: one with ``embedding``,
    directly or as a composite's child) solves whole, found or loaded before the timed calls: no QPU time, and
    a set-up once per size and process that fell in the first timed call of each size (``dwave-mock`` loading and
    checking its 64 cached embeddings of a size: 0.17 s against 0.01-0.02 s for its other calls, a wall-time
    TTS99 12x too long). A size without an embedding is left to its call, which says so."""
    from qannealq.backends import composed

    sampler = next((s for s in composed(sampler) if callable(getattr(type(s), "embedding", None))), None)
    if sampler is None:
        return
    for size in sorted({instance.bqm.num_variables for instance in todo}):
        try:
            if 0 < size <= sampler.max_variables:
                sampler.embedding(size)
        except Exception:  # noqa: BLE001 - a head start only: an unreachable solver or a size it cannot embed is
            continue  # said by the call that needs it, with its backend's error and the neuron's name


def _run_all(samplers: Mapping[str, dimod.Sampler], instances: Sequence[NeuronInstance], store,
             settings: CompareSettings, reporter: Reporter) -> list[dict]:
    units, plans = [], {}
    for name in samplers:
        calls = [(instance, repeat, unit_key(backend=name, instance=instance.name, repeat=repeat))
                 for instance in instances for repeat in range(settings.repeats)]
        plans[name] = (calls, [store.get(key) for _, _, key in calls])  # each unit read once
    with reporter.progress(len(samplers) * len(instances) * settings.repeats, "comparing backends", "call") as bar:
        # every backend with a call to run warms up first (none where all its units were stored), so that a
        # study of hours says so in its first minutes, not after the backends before the slow one
        for name, sampler in samplers.items():
            todo = [instance for (instance, _, _), record in zip(*plans[name]) if record is None]
            if todo:
                bar.status(f"{name} warm-up")
                _embed_ahead(sampler, todo)
                warm = _warm_up(sampler, name, instances, settings, reporter)
                if warm is not None:
                    outlook(name, sampler, todo, warm, settings.options_for(name, sampler), reporter)
        for name, sampler in samplers.items():
            calls, stored = plans[name]
            walls, todo = [], stored.count(None)
            for (instance, repeat, key), record in zip(calls, stored):
                if record is None:
                    bar.status(f"{name} {instance.name} #{repeat}{time_left(walls, todo - len(walls))}")
                    t0 = time.perf_counter()
                    record = run_unit(sampler, name, instance, repeat, settings)
                    walls.append(time.perf_counter() - t0)
                    store.put(key, record)
                units.append(record)
                bar.update(1)
    return units
