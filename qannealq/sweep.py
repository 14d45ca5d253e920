"""``qannealq sweep``: methods x bit widths x seeds on one dataset, each finished cell stored at once.

A *cell* is one (method, bits, seed): the dataset's MLP (trained with the base seed, or with the cell's
seed under ``train_seeds``) quantized with one method at one bit width on a calibration draw made with the
cell's seed. Every cell records the test accuracy, the float accuracy of its network, the summed and
per-layer reconstruction errors and the time. Finished cells go to a :class:`~qannealq.store.ResultStore`
(one atomic file each), so an interrupted sweep loses at most the running cell and ``resume=True``
continues it; ``sweep.csv``, ``sweep.json``, ``summary.md`` and the plots are rewritten from the store.

Presets (:data:`PRESETS`) name the two settings the README compares: ``paper`` (arXiv 2510.16075's set-up)
and ``best`` (this project's improvements); explicit options override a preset's, and the settings used
are spelled out in ``sweep.json`` and ``summary.md``.
"""

from __future__ import annotations

import numbers
from contextlib import ExitStack, closing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from qannealq.baselines import DEFAULT_WARM_START
from qannealq.checks import as_values, check_distinct
from qannealq.config import ModelConfig, check_choice, check_positive, check_qpu_budget, parse_warm_start
from qannealq.contract import (accepted_options, check_parameters, check_plans_budget, check_qpu_ranges, qpu_planner,
                               redact, unredact)
from qannealq.data import data_fingerprint
from qannealq.errors import InvalidArgumentError, QannealqError
from qannealq.experiment import Experiment, calibrate, calibration_draw, formulate_grids, prepare, reusable_stats
from qannealq.grid import GRANULARITY_CHOICES, INT1_SCHEMES, check_bits
from qannealq.pipeline import quantize_model
from qannealq.report import LogReporter, Reporter
from qannealq.solve import METHODS, check_warm_rows
from qannealq.store import FolderLock, ResultStore, check_distinct_keys, unit_key
from qannealq.weighted import Objective, check_flags, make_objective, resumed_weight
from qannealq.sweep_report import CellResult, FailedCell, write_outputs

__all__ = ["Preset", "PRESETS", "SweepConfig", "SweepSummary", "SweepCellsFailedError", "parse_method", "sweep"]

SWEEP_GRANULARITIES = GRANULARITY_CHOICES  # run takes best too since 2026-12-06


@dataclass(frozen=True)
class Preset:
    """Settings that a preset stands for (each can be overridden by an explicit option)."""

    calibration: str
    granularity: str
    int1: str
    backend: str
    warm_start: str | None
    sampler_options: Mapping[str, Any]
    description: str


PRESETS: dict[str, Preset] = {
    "paper": Preset("float", "tensor", "paper", "sa", None, {"num_reads": 1},
                    "the paper's set-up: float calibration; per-tensor max-scale grid; int1 = {-max|w|, 0}; "
                    "qubo = per-neuron simulated annealing (dwave-samplers `sa`, its default schedule), 1 read, "
                    "no warm start"),
    "best": Preset("sequential", "best", "sign", "layer-sa", DEFAULT_WARM_START, {},
                   "this project's improvements: sequential calibration; per cell the per-tensor or per-channel "
                   "grid, whichever gives the lower summed layer error on the calibration data (never the test "
                   "set); int1 = ±mean|w|; qubo = the whole-layer solver `layer-sa` warm-started from "
                   "a beam search of width max(128, m/4) over GPTQ-restricted's roundings in pivot order, "
                   "or in V-BLAST order where a pilot chooses it (full-rank layers of more than 64 neurons; "
                   "qannealq.baselines)"),
    "custom": Preset("float", "tensor", "sign", "layer-sa", DEFAULT_WARM_START, {},
                     "explicit options (the defaults of `qannealq run` where none is given)"),
}


def parse_method(text: str, backend: str) -> tuple[str, str]:
    """``"rtn"`` -> ``("rtn", "")``; ``"qubo"`` -> ``("qubo", backend)``; ``"qubo:sa"`` -> ``("qubo", "sa")``."""
    method, _, name = text.partition(":")
    check_choice("--methods", method, METHODS)
    if name and method != "qubo":
        raise InvalidArgumentError(f"--methods {text!r}: only qubo takes a backend (qubo:BACKEND)")
    return method, (name or backend) if method == "qubo" else ""


@dataclass(frozen=True)
class SweepConfig:
    """``qannealq sweep``: validated settings (see :meth:`from_preset` for presets and overrides).

    Attributes:
        model: dataset, recipe overrides, base seed (training) and calibration size.
        bits, methods: bit widths and methods (``rtn``, ``gptq``, ``gptq-restricted``, ``qubo[:BACKEND]``).
        seeds: the number of seeds; seed ``s`` in ``0..seeds-1`` draws the calibration set (and seeds the
            samplers); with ``train_seeds`` it also trains the network.
        preset: the preset name whose settings were used (``custom`` when none).
        calibration, granularity, int1, backend, warm_start, sampler_options: the quantization settings;
            ``granularity="best"`` keeps the lower-error of ``tensor`` and ``channel`` per cell; a sampler option
            keyed ``BACKEND:KEY`` goes to that qubo backend alone (:meth:`options_for`), the others to each that
            takes them.
        objective, inactive_weight: the QUBOs' objective (``preact``, the paper's, or ``relu-aware``: see
            :mod:`qannealq.weighted`), for every method (RTN does not depend on it).
        memory_limit: ``relu-aware``: bytes a layer's samples and per-neuron matrices may hold (None: the
            default); not stored (it changes the time, not the results).
        out, resume: the results folder, and whether to continue the sweep stored there.
        keep_going: a cell that raises is recorded (``summary.md``, ``sweep.json``) and the sweep goes on with
            the others, then raises :class:`SweepCellsFailedError` naming the failed cells (``--resume``
            computes them again); without it the first failed cell stops the sweep. Not stored (it changes
            how far a run goes, not what a cell computes).
        download: fetch the dataset when it is found nowhere (SHA-256 checked).
        dry_run, qpu_budget: print the QPU plan of the cells left (their qubo backends that spend QPU time:
            ``dwave``, ``dwave-mock``) and stop; refuse a plan above ``qpu_budget`` seconds before any call.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    bits: tuple[int, ...] = (8, 6, 4, 3, 2, 1)
    methods: tuple[str, ...] = ("rtn", "gptq", "qubo")
    seeds: int = 3
    train_seeds: bool = False
    preset: str = "custom"
    calibration: str = "float"
    granularity: str = "tensor"
    int1: str = "sign"
    backend: str = "layer-sa"
    warm_start: str | None = DEFAULT_WARM_START
    sampler_options: Mapping[str, Any] = field(default_factory=dict)
    objective: str = "preact"
    inactive_weight: float | None = None
    memory_limit: int | None = None
    out: Path | None = None
    resume: bool = False
    keep_going: bool = False
    download: bool = False
    dry_run: bool = False
    qpu_budget: float | None = None

    def __post_init__(self) -> None:
        if self.qpu_budget is not None:
            object.__setattr__(self, "qpu_budget", check_qpu_budget(self.qpu_budget))
        object.__setattr__(self, "bits", as_values(self.bits, (numbers.Integral, str)))  # bits=4: (4,)
        object.__setattr__(self, "methods", as_values(self.methods))  # methods="rtn": ("rtn",)
        object.__setattr__(self, "sampler_options", dict(self.sampler_options))
        if not self.bits or not self.methods:
            raise InvalidArgumentError("--bits and --methods need at least one value each, e.g. 4,2 and rtn,qubo")
        for bits in self.bits:
            check_bits(bits)
        for method in self.methods:
            parse_method(method, self.backend)
        check_distinct("--bits", self.bits)
        from qannealq.backends import canonical_name

        resolved = [f"qubo:{canonical_name(b)}" if m == "qubo" else m for m, _, b in
                    (label.partition(":") for label in self.labels())]
        check_distinct("--methods", resolved, self.methods)  # qubo and qubo:layer-sa, qubo:sa and qubo:neal: one
        check_distinct_keys("--methods", self.labels())  # qubo:my-sa and qubo:my+sa: one cell file
        backends = self.qubo_backends()
        scoped_keys = [k for k in self.sampler_options if ":" in k]
        check_distinct("--sampler-option", [f"{canonical_name(k.partition(':')[0])}:{k.partition(':')[2]}"
                                            for k in scoped_keys], scoped_keys)  # sa:seed and neal:seed: one
        for key in self.sampler_options:
            name, scoped, option = key.partition(":")
            if scoped and (canonical_name(name) not in map(canonical_name, backends) or not option):
                shown = ",".join(self.methods)
                raise InvalidArgumentError(
                    f"--sampler-option {key}: BACKEND:KEY gives an option to one qubo backend, and "
                    f"{name!r} is not one of --methods {shown} ({', '.join(backends) or 'none'})" if option else
                    f"--sampler-option {key}: give BACKEND:KEY=VALUE, e.g. layer-sa:effort=fast")
        check_positive("--seeds", self.seeds)
        if self.seeds > 2 ** 31:  # 10**11 ended in a MemoryError traceback, listing the seeds
            raise InvalidArgumentError(f"--seeds={self.seeds} is more than 2**31: the seeds 0..N-1 draw the "
                                       "calibration sets and seed the samplers (and the training), which take "
                                       "seeds in 0..2**31-1; give a smaller --seeds")
        check_choice("--preset", self.preset, tuple(PRESETS))
        check_choice("--calibration", self.calibration, ("float", "sequential"))
        check_choice("--granularity", self.granularity, SWEEP_GRANULARITIES)
        check_choice("--int1", self.int1, INT1_SCHEMES)
        object.__setattr__(self, "warm_start", parse_warm_start(self.warm_start))
        check_flags(self.objective, self.inactive_weight, self.memory_limit)
        goal = self.goal()
        object.__setattr__(self, "inactive_weight", goal.inactive_weight if goal.weighted else None)
        if self.resume and self.out is None:
            raise InvalidArgumentError("resume=True needs the folder of the sweep to continue (--resume DIR)")

    @classmethod
    def from_preset(cls, preset: str | None = None, **options: Any) -> "SweepConfig":
        """A config from a preset's settings, overridden by the options given (None values are ignored)."""
        name = preset or "custom"
        check_choice("--preset", name, tuple(PRESETS))
        base = {k: v for k, v in asdict(PRESETS[name]).items() if k != "description"}
        given = {k: v for k, v in options.items() if v is not None}
        if "sampler_options" in given:
            given["sampler_options"] = {**base["sampler_options"], **given["sampler_options"]}
        return cls(**{**base, **given, "preset": name})

    @classmethod
    def from_stored(cls, settings: Mapping[str, Any], out: Path, **given: Any) -> "SweepConfig":
        """The config of the sweep stored in ``out`` (its :meth:`stored_settings`), resumed, with the options
        ``given`` (explicitly, e.g. on the command line) in place of the stored ones; ``model`` may be a dict of
        :class:`ModelConfig` fields to change. A given option that differs from the stored one makes the resume
        fail with the list of differences (see :meth:`ResultStore.open`)."""
        names = {f.name for f in fields(cls)}
        stored = {k: v for k, v in settings.items() if k in names}
        model = ModelConfig.from_stored(stored.pop("model", {}), **given.pop("model", {}))
        stored["sampler_options"] = unredact(stored.get("sampler_options", {}), given.pop("sampler_options", {}),
                                             f"--resume {out}")
        resumed_weight(stored, given)
        return cls(**{**stored, **given, "model": model, "out": Path(out), "resume": True})

    def labels(self) -> list[str]:
        """Method labels as in the results: ``rtn``, ``gptq``, ``qubo:layer-sa``..."""
        out = []
        for text in self.methods:
            method, backend = parse_method(text, self.backend)
            out.append(f"{method}:{backend}" if backend else method)
        return out

    def qubo_backends(self) -> list[str]:
        """The backends of the ``qubo`` methods, in order (``qubo`` alone is ``backend``'s)."""
        return list(dict.fromkeys(label.partition(":")[2] for label in self.labels() if label.startswith("qubo:")))

    def options_for(self, backend: str, sampler: Any = None) -> dict[str, Any]:
        """``backend``'s sampler options: those given without a backend, and those given to it as ``BACKEND:KEY``
        (in their place; under its name or an alias of it, ``neal:KEY`` for ``qubo:sa``), so that ``--methods
        qubo:sa,qubo:layer-sa`` can give ``layer-sa:effort=fast``. With
        several qubo backends, an option given without one goes to those that take it (``sampler``'s
        ``parameters`` say whether this one does): ``--effort fast`` to ``layer-sa``, not ``sa``."""
        from qannealq.backends import canonical_name

        common = {k: v for k, v in self.sampler_options.items() if ":" not in k}
        if sampler is not None and len(self.qubo_backends()) > 1:
            common = {k: v for k, v in common.items() if _takes(sampler, k)}
        own = {k.partition(":")[2]: v for k, v in self.sampler_options.items()
               if ":" in k and canonical_name(k.partition(":")[0]) == canonical_name(backend)}
        return {**common, **own}

    def seed_list(self) -> range:
        return range(self.seeds)

    def goal(self) -> Objective:
        """The QUBOs' :class:`~qannealq.weighted.Objective` (objective, inactive weight, memory limit)."""
        return make_objective(self.objective, self.inactive_weight, self.memory_limit)

    def stored_settings(self) -> dict:
        """What must match to resume (secrets redacted), and what the results spell out."""
        settings = asdict(self)
        settings.pop("out"), settings.pop("resume"), settings.pop("download"), settings.pop("memory_limit")
        settings.pop("keep_going")
        settings.pop("dry_run"), settings.pop("qpu_budget")  # how far to go now, not what is computed
        settings["sampler_options"] = redact(self.sampler_options)
        settings["methods"] = self.labels()
        settings["preset_means"] = PRESETS[self.preset].description
        if self.objective == "preact":  # the paper's: not spelled out (as in sweeps stored before the option)
            settings.pop("objective"), settings.pop("inactive_weight")
        return settings


@dataclass(frozen=True)
class SweepSummary:
    """What :func:`sweep` produced: the folder, every cell (sorted) and how many were computed now; ``failed``:
    the cells ``keep_going`` went past."""

    out: Path
    cells: list[CellResult]
    computed: int
    resumed: int
    failed: list[FailedCell] = field(default_factory=list)


class SweepCellsFailedError(QannealqError, RuntimeError):
    """``keep_going``: cells of the sweep failed (named in the message); the others are finished and stored.

    Attributes:
        summary: the :class:`SweepSummary` of the sweep, its ``failed`` cells included.
    """

    def __init__(self, message: str, summary: SweepSummary) -> None:
        super().__init__(message)
        self.summary = summary


def _samplers(config: SweepConfig, stack: ExitStack) -> dict[str, Any]:
    """Every qubo backend of the sweep, built once, its options checked, closed at the end."""
    from qannealq.backends import resolve_sampler

    samplers = {}
    for label in config.labels():
        method, _, backend = label.partition(":")
        if method == "qubo" and backend not in samplers:
            sampler = resolve_sampler(backend)
            if hasattr(sampler, "close"):
                stack.enter_context(closing(sampler))
            options = config.options_for(backend, sampler)
            check_parameters(backend, sampler, options)
            check_warm_rows(sampler, options, config.warm_start)
            check_qpu_ranges(sampler, options)  # num_reads=100000 on a QPU: refused before training, as in run
            samplers[backend] = sampler
    _check_common(config, samplers)
    return samplers


def _takes(sampler: Any, key: str) -> bool:
    known = accepted_options(sampler)
    return known is None or key in known  # None: the sampler checks its keys itself


def _check_common(config: SweepConfig, samplers: Mapping[str, Any]) -> None:
    """With several qubo backends, an option given without one goes to those that take it
    (:meth:`SweepConfig.options_for`): one that none takes is refused, naming them (a misspelt key)."""
    if len(samplers) < 2:
        return  # one backend: check_parameters named the key it does not take
    for key in (k for k in config.sampler_options if ":" not in k):
        if not any(_takes(sampler, key) for sampler in samplers.values()):
            raise InvalidArgumentError(f"--sampler-option {key}: none of the qubo backends of --methods "
                                       f"{','.join(config.methods)} ({', '.join(samplers)}) takes this option")


def _qpu_plan(config: SweepConfig, samplers: Mapping[str, Any], out: Path, trained: dict[int, Experiment],
              reporter: Reporter) -> None:
    """``--dry-run`` and ``--qpu-budget``: the QPU plan of every cell left of each qubo backend that spends QPU
    time, each seed's cells planned on the first seed's network and calibration (their sizes differ by a dead
    input at most; with ``--train-seeds`` the networks may differ more), summed over the backends; refused over
    the budget before any call."""
    flag = "--dry-run" if config.qpu_budget is None else f"--qpu-budget={config.qpu_budget:g}"
    planners = {name: qpu_planner(sampler) for name, sampler in samplers.items()}
    planners = {name: planner for name, planner in planners.items() if planner is not None}
    if not planners:
        raise InvalidArgumentError(f"{flag}: no qubo backend of --methods {','.join(config.methods)} spends QPU "
                                   "time; it applies to qubo:dwave and qubo:dwave-mock")
    stored = ResultStore(out, "sweep", {}) if config.resume else None
    seeds = config.seed_list()
    exp = _experiment(config, seeds[0], trained, reporter)
    stats = calibrate(exp)
    plans = []
    for name, planner in planners.items():
        label, layers = f"qubo:{name}", []
        for bits in config.bits:
            left = [s for s in seeds if stored is None or not stored.done(unit_key(method=label, bits=bits, seed=s))]
            if not left:
                continue
            problems = formulate_grids(exp, bits, config.granularity, config.int1, stats)
            plan = planner.plan(problems, warm_start=config.warm_start is not None,
                                **config.options_for(name, samplers[name]))
            layers += [replace(layer, name=f"{layer.name} s{seed}") for seed in left for layer in plan.layers]
        if layers:
            plans.append(type(plan)(name, plan.solver, tuple(layers)))
            reporter.message(plans[-1].table())
    if not plans:
        reporter.message("every cell of a QPU backend is finished: nothing will be sent to the QPU")
    elif config.qpu_budget is not None:
        check_plans_budget(plans, config.qpu_budget)
        reporter.message(f"--qpu-budget {config.qpu_budget:g} s: the plan fits")


def _experiment(config: SweepConfig, seed: int, trained: dict[int, Experiment], reporter: Reporter) -> Experiment:
    """The cell seed's experiment: its training seed's network and data, a calibration draw by ``seed``."""
    train_seed = seed if config.train_seeds else config.model.seed
    if train_seed not in trained:
        data = next(iter(trained.values())).data if trained else None
        trained[train_seed] = prepare(replace(config.model, seed=train_seed), data=data, reporter=reporter,
                                      download=config.download)
    exp = trained[train_seed]
    if seed == exp.config.seed:
        return exp
    return replace(exp, calibration=calibration_draw(exp.data, config.model.num_calibration, seed,
                                                     warn=False))  # prepare warned once


def _cell(exp: Experiment, config: SweepConfig, label: str, bits: int, seed: int, sampler, stats) -> CellResult:
    """Quantize the network with one method at one bit width (both grids under ``granularity="best"``)."""
    method, _, backend = label.partition(":")
    result = quantize_model(exp.model, exp.calibration, bits, method, sampler, config.calibration, config.granularity,
                            config.int1, warm_start=config.warm_start, seed=seed, float_stats=stats,
                            objective=config.goal(),
                            **(config.options_for(backend, sampler) if sampler is not None else {}))
    chosen = result.granularity
    return CellResult(
        dataset=exp.name, preset=config.preset, method=label, backend=backend, bits=bits, seed=seed,
        train_seed=exp.config.seed, calibration=config.calibration, granularity=chosen, int1=config.int1,
        num_calibration=len(exp.calibration), accuracy=exp.test_accuracy(result.model),
        float_accuracy=exp.float_accuracy, layer_error=result.layer_error,
        layer_errors={layer.name: layer.error for layer in result.layers},
        seconds=result.seconds,  # the model's own time: not the first loading of compiled code (its warm-ups)
        candidates=dict(result.settings.get("grid_errors", {})))


def sweep(config: SweepConfig, reporter: Reporter | None = None) -> SweepSummary:
    """Run (or continue) the sweep; each finished cell is stored at once; outputs rewritten after each.

    Every option, the folder and the backends (and their options) are checked before any training.

    Raises:
        SweepCellsFailedError: ``keep_going``, after every other cell and the outputs: the cells that failed.
    """
    reporter = reporter or LogReporter()
    out = Path(config.out) if config.out is not None else _default_out(config)
    settings = config.stored_settings()
    if config.resume and (out / "store.json").exists():  # the preset's words, not a setting: kept as stored
        settings["preset_means"] = ResultStore.stored_settings(out, "sweep").get("preset_means")
    ResultStore.check(out, "sweep", settings, config.resume, data_fingerprint)
    labels, seeds = config.labels(), config.seed_list()
    departures = _departures(config)
    with ExitStack() as stack:
        stack.enter_context(FolderLock.held(out if config.resume else None))
        samplers = _samplers(config, stack)
        trained: dict[int, Experiment] = {}
        if config.dry_run or config.qpu_budget is not None:
            _qpu_plan(config, samplers, out, trained, reporter)
            if config.dry_run:
                return SweepSummary(out, [], 0, 0)
        store = ResultStore.open(out, "sweep", settings, config.resume, data_fingerprint)
        stack.callback(store.close)
        if store.resumed:
            reporter.message(f"resuming {out}: {len(store.resumed)} finished cell(s) kept, not recomputed")
        reporter.message(f"sweep {config.model.dataset}, preset {config.preset}: {PRESETS[config.preset].description}"
                         + (f"; overridden here: {', '.join(departures)}" if departures else ""))
        cells = [CellResult(**r) for r in store.records()]
        failed: list[FailedCell] = []
        computed = 0
        goal = config.goal()
        total = len(labels) * len(config.bits) * len(seeds)
        with reporter.progress(total, "sweep", "cell") as bar:
            for seed in seeds:
                keys = [(label, bits, unit_key(method=label, bits=bits, seed=seed))
                        for bits in config.bits for label in labels]
                todo = [k for k in keys if not store.done(k[2])]
                bar.update(len(keys) - len(todo))
                if not todo:
                    continue
                exp = _experiment(config, seed, trained, reporter)
                stats = reusable_stats(exp, config.calibration, goal)  # once per seed
                for label, bits, key in todo:
                    bar.status(f"seed {seed} int{bits} {label}")
                    try:
                        cell = _cell(exp, config, label, bits, seed, samplers.get(label.partition(":")[2]), stats)
                    except Exception as exc:
                        if not (config.keep_going or isinstance(exc, QannealqError)):
                            raise  # a bug's traceback, as before --keep-going
                        failure = FailedCell(exp.name, label, bits, seed, _error_text(exc))
                        if not config.keep_going:
                            raise _failed(exc, failure, out, settings, cells, departures) from exc
                        failed.append(failure)
                        reporter.message(f"sweep cell {failure.name} failed (--keep-going: going on with the "
                                         f"others): {failure.error}")
                    else:
                        store.put(key, asdict(cell))
                        cells.append(cell)
                        computed += 1
                    write_outputs(out, settings, cells, plots=False, departures=departures, failed=failed)
                    bar.update(1)
    cells = write_outputs(out, settings, cells, plots=True, departures=departures, failed=failed)
    reporter.message(f"wrote {out}/sweep.csv, sweep.json, summary.md and plots ({computed} cell(s) computed, "
                     f"{len(store.resumed)} kept" + (f", {len(failed)} failed" if failed else "") + ")")
    summary = SweepSummary(out, cells, computed, len(store.resumed), failed)
    if failed:
        raise SweepCellsFailedError(
            f"{len(failed)} sweep cell(s) failed ({len(cells)} finished cell(s) kept in {out}; `qannealq sweep "
            f"--resume {out}` computes the failed ones again): "
            + "; ".join(f"{f.dataset} {f.name}: {f.error}" for f in failed), summary)
    return summary


def _error_text(exc: BaseException) -> str:
    """The error as a line: its message, with the exception's type where the message is not a qannealq one (a
    bare ``KeyError: 'x'`` read ``'x'``)."""
    return str(exc) if isinstance(exc, QannealqError) else f"{type(exc).__name__}: {exc}"


def _failed(exc: QannealqError, failure: FailedCell, out: Path, settings: dict, cells: list[CellResult],
            departures: list[str]) -> QannealqError:
    """``exc`` of the cell that failed, naming it and the resume (a backend's message alone named neither the
    method, bits and seed nor the finished cells kept); ``summary.md`` says which cell failed (it read
    "interrupted, or still running")."""
    write_outputs(out, settings, cells, plots=False, departures=departures, failed=[failure])
    return type(exc)(f"sweep cell {failure.name} failed ({len(cells)} finished cell(s) kept in {out}; `qannealq "
                     f"sweep --resume {out}` computes it again): {exc}")


def _departures(config: SweepConfig) -> list[str]:
    """The settings used where they differ from what the preset's words say (``calibration sequential``...), and
    an objective other than the paper's: ``summary.md`` names them after the preset's words, which alone said
    "float calibration; per-tensor max-scale grid" of a ``--preset paper --calibration sequential --granularity
    channel`` sweep."""
    preset = PRESETS[config.preset]
    out = [f"{name.replace('_', ' ')} {getattr(config, name) or 'none'}"
           for name in ("calibration", "granularity", "int1", "backend", "warm_start")
           if getattr(config, name) != getattr(preset, name)]
    if dict(config.sampler_options) != dict(preset.sampler_options):
        shown = ", ".join(f"{k}={v}" for k, v in redact(config.sampler_options).items())
        out.append(f"sampler options {shown or 'none'}")
    if config.goal().weighted:
        out.append(f"objective {config.objective} (inactive weight {config.inactive_weight:g})")
    return out


def _default_out(config: SweepConfig) -> Path:
    from qannealq.runner import default_out_dir

    return default_out_dir(f"sweep-{config.model.dataset}-{config.preset}")
