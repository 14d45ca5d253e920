"""``qannealq compare`` and ``qannealq export`` as library calls: configs in, files and a summary out.

The command-line modules only parse into :class:`CompareJob` / :class:`ExportJob` and call :func:`run_compare`
/ :func:`run_export`; every option is checked before any model is trained.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import ExitStack, nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from qannealq._compare_instances import DEFAULT_NEURONS, NeuronInstance, default_neurons, instances_from_experiment
from qannealq._compare_plots import plot_all
from qannealq._compare_reference import ReferenceOptions
from qannealq._compare_report import CompareResult, format_summary
from qannealq.checks import check_distinct
from qannealq.compare import CompareSettings, check_backend_options, compare_backends, stored_settings
from qannealq.config import ModelConfig, check_choice, check_qpu_budget
from qannealq.contract import check_plans_budget
from qannealq.data import data_fingerprint
from qannealq.errors import InvalidArgumentError
from qannealq.grid import GRANULARITIES, INT1_SCHEMES, check_bits
from qannealq.report import LogReporter, Reporter
from qannealq.runner import default_out_dir
from qannealq.store import FolderLock, ResultStore, json_default, refuse_file_out, unit_key

__all__ = ["Selection", "CompareJob", "ExportJob", "run_compare", "run_export"]


@dataclass(frozen=True)
class Selection:
    """Which neurons: a layer of a model at a bit width, or an exported instances folder.

    Attributes:
        model: the dataset and its model (ignored with ``instances``).
        layer: position of the Linear layer (0 = first) or its module name.
        bits: the grid's bit width.
        neurons: ``"0:16"``, ``"3"``, ``"0,4,7"`` or None (all).
        granularity, int1: grid options.
        instances: an exported folder (``qannealq export``) to read instead of a model.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    layer: int | str = 0
    bits: int = 2
    neurons: str | None = DEFAULT_NEURONS
    granularity: str = "tensor"
    int1: str = "sign"
    instances: Path | None = None

    def __post_init__(self) -> None:
        check_bits(self.bits)
        check_choice("--granularity", self.granularity, GRANULARITIES)
        check_choice("--int1", self.int1, INT1_SCHEMES)
        if self.instances is not None and not Path(self.instances, "index.json").is_file():
            raise InvalidArgumentError(f"--instances={str(self.instances)!r} holds no index.json: give a folder "
                                       "written by `qannealq export`")

    @classmethod
    def from_stored(cls, source: Mapping[str, Any], **given: Any) -> "Selection":
        """The selection stored with a comparison (:meth:`describe`), with the fields ``given`` in its place;
        ``model`` may be a dict of :class:`ModelConfig` fields to change."""
        stored = dict(source)
        model = ModelConfig.from_stored(stored.pop("model", {}), **given.pop("model", {}))
        if "neurons" in stored:  # the default stored as its text: clipped again on a smaller layer
            stored["neurons"] = default_neurons(stored["neurons"])
        chosen = {**stored, **given}
        if chosen.get("instances") is not None:
            chosen["instances"] = Path(chosen["instances"])
        return cls(**{**chosen, "model": model})

    def load(self) -> list[NeuronInstance]:
        """The instances (trains or loads the model when there is no instances folder)."""
        if self.instances is not None:
            from qannealq.export import load_instances

            return load_instances(self.instances)
        from qannealq.experiment import prepare

        return instances_from_experiment(prepare(self.model), self.layer, self.bits, self.neurons,
                                         self.granularity, self.int1)

    def identity(self) -> dict:
        """For an instances folder, the SHA-256 of its ``index.json`` (which holds each file's SHA-256): what
        ``compare.json`` records beside :meth:`describe` to say which export was compared. Not in the stored
        settings that a resume matches: ``export --resume`` adds rows to it, and the instances themselves are
        matched by their digests."""
        if self.instances is None:
            return {}
        return {"index_sha256": hashlib.sha256(Path(self.instances, "index.json").read_bytes()).hexdigest()}

    def describe(self) -> dict:
        if self.instances is not None:
            return {"instances": str(self.instances)}
        return {"model": asdict(self.model), "layer": self.layer, "bits": self.bits, "neurons": self.neurons,
                "granularity": self.granularity, "int1": self.int1}


@dataclass(frozen=True)
class CompareJob:
    """``qannealq compare``: which neurons, which backends, how, and where the results go."""

    selection: Selection
    backends: tuple[str, ...]
    settings: CompareSettings = field(default_factory=CompareSettings)
    out: Path | None = None
    resume: bool = False
    dry_run: bool = False
    qpu_budget: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "backends", tuple(self.backends))
        if self.qpu_budget is not None:
            object.__setattr__(self, "qpu_budget", check_qpu_budget(self.qpu_budget))
        if not self.backends:
            raise InvalidArgumentError("--backends is empty: give a comma list such as sa,exact,qaoa")
        from qannealq.backends import canonical_name

        check_distinct("--backends", [canonical_name(n) for n in self.backends], self.backends)  # sa,neal: sa twice
        if self.resume and self.out is None:
            raise InvalidArgumentError("resume=True needs the folder of the comparison to continue (--resume DIR)")

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any], out: Path, selection: Mapping[str, Any] | None = None,
                    backends: tuple[str, ...] | None = None, settings: Mapping[str, Any] | None = None,
                    **options: Any) -> "CompareJob":
        """The job of the comparison stored in ``out`` (``ResultStore.stored_settings(out, "compare")``), resumed,
        with the ``selection`` fields (:meth:`Selection.from_stored`), ``backends`` and ``settings`` fields
        (:meth:`CompareSettings.from_stored`) given (e.g. on the command line) in place of the stored ones, and
        the other ``options`` (dry_run, qpu_budget). A given one that differs from the stored one makes the
        resume fail with the list of differences (:func:`run_compare` checks them before any training).

        Raises:
            InvalidArgumentError: the stored settings are incomplete, or a stored secret is not given again.
        """
        missing = [k for k in ("source", "instances", "backends", *(f.name for f in fields(CompareSettings)))
                   if k not in stored or (k == "source" and not stored[k])]  # no source: run from Python
        if missing:
            raise InvalidArgumentError(f"--resume {out}: store.json lacks the comparison's settings "
                                       f"({', '.join(missing)}); start a new comparison with --out")
        return cls(Selection.from_stored(stored["source"], **(selection or {})),
                   tuple(stored["backends"] if backends is None else backends),
                   CompareSettings.from_stored(stored, f"--resume {out}", **(settings or {})), Path(out),
                   resume=True, **options)


def _check_backends(names: tuple[str, ...]) -> None:
    """Unknown backend names refused before any training (a known one that is not ready is skipped later)."""
    from qannealq.backends import ALIASES, available_backends

    known = {row.name for row in available_backends()} | set(ALIASES)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidArgumentError(f"--backends: {', '.join(unknown)} unknown; choose from {', '.join(sorted(known))}")


def _planning(names: tuple[str, ...]) -> list[str]:
    """Those of the backends ``names`` that are ready and plan their QPU calls (``dwave``, ``dwave-mock``); none
    is built to find out."""
    from qannealq.backends import available_backends, canonical_name

    planning = {row.name for row in available_backends() if row.status == "ready" and row.plans_qpu}
    return [name for name in names if canonical_name(name) in planning]


def _refuse_unready_planning(names: tuple[str, ...], flag: str) -> None:
    """Refuse ``flag`` (``--dry-run``, ``--qpu-budget``) naming a backend of ``names`` that plans its QPU calls and
    is not ready, with what it lacks: ``--backends dwave --dry-run`` without a token was told that none of
    --backends spends QPU time."""
    from qannealq.backends import available_backends, canonical_name

    named = {canonical_name(name) for name in names}
    for row in available_backends():
        if row.name in named and row.plans_qpu and row.status != "ready":
            raise InvalidArgumentError(f"{flag}: backend {row.name!r} spends QPU time but is not ready to plan it "
                                       f"({row.status}: {row.hint}); or plan on dwave-mock, offline")


def qpu_plans(job: CompareJob, instances: list[NeuronInstance], reporter: Reporter,
              samplers: dict[str, Any] | None = None) -> list:
    """The QPU plan of every ready backend of ``job`` that plans its calls (``dwave``, ``dwave-mock``): each
    neuron on its own, ``repeats`` times, ``reads`` reads, a neuron above the backend's ``--capacity`` (or
    ``capacity`` sampler option) listed as decomposed; reported, and refused over ``job.qpu_budget`` (the
    sum over those backends) before any call. On ``--resume`` a neuron whose calls are all stored is left out
    (one with some is planned whole). ``samplers``: those backends already built (:func:`run_compare` builds
    each once, its cloud client open from the range check to the last call); the others are built here and
    closed after their plan."""
    from qannealq.backends import get_sampler

    plans, planning, samplers = [], _planning(job.backends), samplers or {}
    stored = ResultStore(Path(job.out), "compare", {}) if job.resume and job.out is not None else None
    for name in planning:
        left = [i for i in instances if stored is None or not all(
            stored.done(unit_key(backend=name, instance=i.name, repeat=r)) for r in range(job.settings.repeats))]
        if len(left) < len(instances):  # on --resume: what this run will send, not what was sent before
            reporter.message(f"--resume: {name}'s calls on {len(instances) - len(left)} of {len(instances)} "
                             "neuron(s) are finished: not planned")
        if not left:
            continue
        sampler = samplers.get(name) or get_sampler(name)
        options = {"num_reads": job.settings.reads, **job.settings.options_for(name, sampler)}
        if options.get("capacity") is None and job.settings.capacity_for(name) is not None:
            options["capacity"] = job.settings.capacity_for(name)  # the neurons above it are decomposed
        with nullcontext(sampler) if name in samplers else sampler:  # the solver's graph and timing model
            plans.append(sampler.plan_bqms([i.bqm for i in left], job.settings.repeats, **options))
        reporter.message(plans[-1].table())
    if job.qpu_budget is not None and planning and not plans:
        reporter.message(f"--qpu-budget {job.qpu_budget:g} s: every QPU call is finished, nothing will be sent")
    elif job.qpu_budget is not None:
        if not plans:
            raise InvalidArgumentError(f"--qpu-budget={job.qpu_budget:g}: none of --backends spends QPU time; "
                                       "it applies to dwave and dwave-mock")
        check_plans_budget(plans, job.qpu_budget)
        reporter.message(f"--qpu-budget {job.qpu_budget:g} s: the plan fits")
    return plans


def run_compare(job: CompareJob, reporter: Reporter | None = None) -> tuple[CompareResult | None, Path]:
    """Run the comparison; write ``compare.csv``, ``compare.json`` and the plots; report the summary.

    With ``job.dry_run`` only the QPU plan is reported (:func:`qpu_plans`) and the result is None."""
    from qannealq.backends import get_sampler

    reporter = reporter or LogReporter()
    _check_backends(job.backends)
    out = Path(job.out) if job.out is not None else default_out_dir("compare")
    if job.resume:  # every option before any training; the instance names once they are loaded
        names = ResultStore.stored_settings(out, "compare").get("instances", [])
        ResultStore.check(out, "compare", stored_settings(job.selection.describe(), names, job.backends,
                                                          job.settings), resume=True, fingerprint=data_fingerprint)
    else:
        ResultStore.check(out, "compare", {})
    planning = _planning(job.backends)
    if (job.dry_run or job.qpu_budget is not None) and not planning:
        flag = "--dry-run" if job.qpu_budget is None else f"--qpu-budget={job.qpu_budget:g}"
        _refuse_unready_planning(job.backends, flag)
        raise InvalidArgumentError(f"{flag}: none of --backends spends QPU time; it applies to dwave and dwave-mock")
    with ExitStack() as stack:  # a QPU backend built once: one cloud client for its options, plan and calls
        stack.enter_context(FolderLock.held(out if job.resume else None))
        qpus = {name: stack.enter_context(get_sampler(name)) for name in planning}
        return _run_opened(job, out, qpus, reporter)


def _run_opened(job: CompareJob, out: Path, qpus: dict[str, Any], reporter: Reporter
                ) -> tuple[CompareResult | None, Path]:
    """:func:`run_compare` from its options, with the QPU backends ``qpus`` built."""
    check_backend_options(job.backends, job.settings, qpus)  # keys, values, a solver's ranges: before any training
    instances, identity = job.selection.load(), job.selection.identity()
    sizes = sorted({i.num_variables for i in instances})
    reporter.message(f"{len(instances)} neuron QUBO(s) of {sizes[0]}-{sizes[-1]} variables; backends "
                     f"{', '.join(job.backends)}; {job.settings.reads} reads x {job.settings.repeats} repeats; "
                     + ("a dry run: no results written" if job.dry_run else f"results -> {out}"))
    if job.dry_run or job.qpu_budget is not None:
        qpu_plans(job, instances, reporter, qpus)
        if job.dry_run:
            return None, out
    result = compare_backends(instances, {name: qpus.get(name) for name in job.backends}, job.settings, out,
                              job.resume, reporter, job.selection.describe())
    result.settings["source"] = {**result.settings["source"], **identity}
    for name in {r.backend for r in result.rows if r.decomposed}:
        reporter.message(f"backend {name!r}: neurons above its capacity were solved by capacity-aware "
                         "decomposition (column 'decomposed')")
    files = result.write(out) + plot_all(result, out)
    reporter.message(format_summary(result))
    reporter.message("wrote " + ", ".join(str(f) for f in files))
    return result, out


@dataclass(frozen=True)
class ExportJob:
    """``qannealq export``: a selection (or the whole benchmark library) into ``out``."""

    out: Path
    selection: Selection | None = None
    library: bool = False
    data_dir: Path | None = None
    reference: ReferenceOptions = field(default_factory=ReferenceOptions)
    resume: bool = False
    done: tuple[dict, ...] = ()  # the rows of index.json an interrupted export finished (:meth:`resumed`)

    def __post_init__(self) -> None:
        if self.library == (self.selection is not None):
            raise InvalidArgumentError("give either --library or a model selection (--dataset, --layer, --bits)")
        refuse_file_out(self.out)
        if not self.resume and Path(self.out, "index.json").exists():  # its files were overwritten, index replaced
            raise InvalidArgumentError(f"--out={str(self.out)!r} holds an export already (index.json): continue it "
                                       f"with --resume {self.out}, give another --out folder, or remove that one")

    def source(self) -> dict:
        """What is exported and how, as ``index.json`` stores it for ``--resume``."""
        chosen = {"library": True} if self.library else self.selection.describe()
        data = {} if self.library else data_fingerprint(chosen)  # {"model": SHA-256} where --data-dir was given
        source = {**chosen, "reference": asdict(self.reference), **({"data_sha256": data} if data else {})}
        return json.loads(json.dumps(source, default=json_default))  # paths as text

    @classmethod
    def resumed(cls, out: Path, data_dir: Path | None = None) -> "ExportJob":
        """The export stored in ``out`` (its ``index.json``'s ``source``), with the rows it finished."""
        index_path = Path(out, "index.json")
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidArgumentError(f"--resume {out}: no readable index.json ({type(exc).__name__}); start a new "
                                       "export with --out") from None
        from qannealq.export import check_format

        check_format(index, f"--resume {out}: index.json")
        source = dict(index.get("source") or {})
        if not source:
            raise InvalidArgumentError(f"--resume {out}: its index.json does not say what was exported (an export "
                                       "older than --resume); start a new export with --out")
        reference = ReferenceOptions(**source.pop("reference", {}))
        library = bool(source.pop("library", False))
        recorded = source.pop("data_sha256", None)
        moved = {"model": {"data_dir": Path(data_dir)}} if data_dir is not None and not library else {}
        selection = None if library else Selection.from_stored(source, **moved)
        if moved and recorded is not None:  # an export older than the record: the new folder is taken unchecked
            found = data_fingerprint(selection.describe())
            if found != recorded:
                raise InvalidArgumentError(
                    f"--resume {out}: --data-dir={str(data_dir)!r} does not hold the datasets the export read (their "
                    f"SHA-256 differ: {recorded} -> {found}); give the folder holding the same files, or start a new "
                    "export with --out")
        return cls(Path(out), selection, library, data_dir, reference, resume=True,
                   done=tuple(index.get("instances", [])))


def run_export(job: ExportJob, reporter: Reporter | None = None) -> list[Path]:
    """Export the instances with their best known solutions; returns the metadata files."""
    from qannealq.export import changed_files, export_instances, library_instances

    reporter = reporter or LogReporter()
    if Path(job.out).is_dir():  # another export writing it: refused before the model is trained or loaded
        FolderLock.check(job.out)
    if job.library:
        instances = library_instances(data_dir=job.data_dir)
    else:
        instances = job.selection.load()
    names = {i.name for i in instances}
    # a finished row is kept only with its three files as written: one deleted since is written again, not listed
    # unwritten, and one edited since (its SHA-256 not index.json's) is written again, not kept altered
    changed = {row["name"]: changed_files(job.out, row) for row in job.done if row.get("name") in names}
    for name, files in changed.items():
        edited = [f for f in files if Path(job.out, f).is_file()]
        if edited:
            reporter.message(f"--resume {job.out}: {', '.join(edited)} changed since the export (SHA-256): "
                             f"writing {name} again")
    done = [row for row in job.done if row.get("name") in names and not changed[row["name"]]]
    reporter.message(f"exporting {len(instances)} neuron QUBO(s) to {job.out}"
                     + (f" ({len(done)} finished before, kept)" if job.resume else ""))
    paths = export_instances(instances, job.out, job.reference, reporter, job.source(), done)
    reporter.message(f"wrote {len(paths)} instances (.bqm, .coo, .json), index.json and FORMAT.txt to {job.out}")
    return paths
