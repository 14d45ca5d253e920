"""``qannealq run``: the bits x methods sweep on one dataset, with progress and incremental results.

:func:`run` takes a validated :class:`~qannealq.config.RunConfig` and reports through a
:class:`~qannealq.report.Reporter`; it never parses arguments and never prints.
"""

from __future__ import annotations

import functools
import logging
import time
from contextlib import closing, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import dimod

from qannealq.config import QuantizeConfig, RunConfig
from qannealq.contract import check_parameters, check_qpu_ranges, layer_solver, qpu_planner, redact
from qannealq.data import data_fingerprint
from qannealq.executors import describe_executor, make_executor, portable_sampler
from qannealq.errors import InvalidArgumentError
from qannealq.experiment import Experiment, calibrate, formulate_grids, prepare, reusable_stats
from qannealq.pipeline import ModelResult, quantize_model, skipped_layers
from qannealq.report import LogReporter, Reporter, ResultRow, RunWriter, format_table, plot_accuracy
from qannealq.solve import accepts_parameter, check_warm_rows
from qannealq.checkpoint import StoreCheckpoint, is_batch_key
from qannealq.store import FolderLock, ResultStore, unit_key
from qannealq.weighted import make_objective

__all__ = ["run", "RunSummary", "default_out_dir", "resolve_backend", "model_path"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSummary:
    """What :func:`run` produced: the results folder, its rows and the float accuracy."""

    out: Path
    rows: list[ResultRow]
    float_accuracy: float


def default_out_dir(dataset: str, root: Path = Path("runs")) -> Path:
    """A new folder ``runs/<dataset>-<timestamp>[-k]`` that does not exist yet."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{dataset}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = root / f"{dataset}-{stamp}-{suffix}"
    return path


def resolve_backend(quant: QuantizeConfig, seed: int | None = None) -> dimod.Sampler | None:
    """The qubo method's sampler, built and its options checked before any training (None without qubo).

    A cloud backend comes wrapped in a :class:`~qannealq.backends.retry.RetryComposite` (``quant.retries``
    retries of transient failures, its jitter seeded by ``seed``); a backend with a capacity limit in the
    capacity-aware decomposition (:func:`qannealq.backends.auto_decompose`: larger neurons are decomposed).
    """
    if "qubo" not in quant.methods:
        return None
    from qannealq.backends import resolve_sampler

    sampler = wrap_backend(quant.backend, resolve_sampler(quant.backend), quant.retry_count, seed)
    check_parameters(quant.backend, sampler, quant.sampler_options)  # the decomposition's options included
    check_warm_rows(sampler, quant.sampler_options, quant.warm_start)  # generator 'none' without a warm start
    return sampler


def wrap_backend(name: str, sampler: dimod.Sampler, retries: int, seed: int | None) -> dimod.Sampler:
    """The composites :func:`resolve_backend` puts around a registry backend (retries of a cloud backend,
    capacity-aware decomposition); also applied in workers that build the backend by name."""
    from qannealq.backends import auto_decompose, with_retries

    return auto_decompose(with_retries(name, sampler, retries, seed))


def _qubo_line(backend: str, sampler: dimod.Sampler, warm: str | None) -> tuple[str, str | None]:
    """What the qubo method will do, and the warm start actually used (None if the backend takes none)."""
    whole = layer_solver(sampler) is not None
    how = "the whole-layer solver (all neurons of a layer at once)" if whole else "one BQM per neuron"
    if getattr(sampler, "decomposes_above_capacity", False):
        how += " (neurons above its capacity by capacity-aware decomposition)"
    if warm is not None and not (whole or accepts_parameter(sampler, "initial_states")):
        return f"backend {backend!r}, {how}, no warm start (the backend takes no initial states)", None
    return f"backend {backend!r}, {how}, warm start {warm}", warm


def model_path(models: Path, bits: int, method: str) -> Path:
    """Where ``qannealq run --save-model`` writes the model of one (bits, method) row."""
    return models / f"int{bits}-{method}.npz"


def _distribute(backend: str, sampler: dimod.Sampler, executor, retries: int,
                seed: int | None) -> tuple[dimod.Sampler, str]:
    """The sampler to send to ``executor``'s workers (by name if it does not pickle, rebuilt there with the
    same retries and decomposition), and where solves run."""
    if executor is None:
        return sampler, "neuron solves: serial, in this process"
    if layer_solver(sampler) is not None:
        return sampler, (f"--executor {describe_executor(executor)} is not used: backend {backend!r} solves whole "
                         "layers in this process (use a per-neuron backend such as sa to spread the solves)")
    wrap = functools.partial(wrap_backend, retries=retries, seed=seed)
    return portable_sampler(sampler, backend, executor, wrap), f"neuron solves on {describe_executor(executor)}"


def _layer_rows(result: ModelResult) -> list[dict]:
    return [{"name": l.name, "error": l.error, "seconds": l.seconds, "seed": l.seed, "neurons": int(l.errors.size),
             "variables": l.num_variables,
             "warm_start_error": None if l.warm_start_errors is None else float(l.warm_start_errors.sum()),
             **_decomposed(l),
             # a per-neuron backend's neurons whose best read was above the warm start they were handed
             **({"warm_start_kept": l.info["warm_start_kept"]} if "warm_start_kept" in l.info else {}),
             **({"qpu": l.info["qpu"]} if "qpu" in l.info else {})}  # QPU calls and per-neuron QPU time
            for l in result.layers]


def _check_qpu_options(config: RunConfig, sampler) -> None:
    """``--qpu-budget`` and ``--dry-run`` need a QPU backend: refused before any training otherwise (a dry run
    without one trained the model to say "nothing to plan"). A QPU backend's options are checked against its
    solver's ranges here too (``check_ranges``)."""
    check_qpu_ranges(sampler, config.quantize.sampler_options)
    if qpu_planner(sampler) is not None or (config.qpu_budget is None and not config.dry_run):
        return
    flag = "--dry-run" if config.qpu_budget is None else f"--qpu-budget={config.qpu_budget:g}"
    if sampler is None:
        raise InvalidArgumentError(f"{flag}: --methods {','.join(config.quantize.methods)} has no qubo method, so "
                                   "nothing spends QPU time; add qubo with --backend dwave or dwave-mock")
    raise InvalidArgumentError(f"{flag}: backend {config.quantize.backend!r} spends no QPU time (with the qubo "
                               "method); use --backend dwave or dwave-mock")


def _qpu_plan(config: RunConfig, exp: Experiment, sampler, stats, warm: str | None, reporter: Reporter,
              out: Path) -> None:
    """Print the QPU plan of every qubo row still to compute (``--dry-run``) and refuse it over ``--qpu-budget``,
    before any call. On ``--resume`` a finished row is left out (the budget bounds what this run will send);
    a row with some neuron batches stored is planned whole.

    Layer sizes come from the float-calibration problems (sequential calibration gives the same free variables
    up to rare clamps).
    """
    planner, q = qpu_planner(sampler), config.quantize
    stored = ResultStore(out, "run", {}) if config.resume else None
    done = [bits for bits in q.bits if stored is not None and stored.done(unit_key(bits=bits, method="qubo"))]
    if done:
        reporter.message(f"--resume: the qubo row(s) of {', '.join(f'int{b}' for b in done)} are finished: not "
                         "planned")
    left = [bits for bits in q.bits if bits not in done]
    if not left:
        reporter.message("every qubo row is finished: nothing will be sent to the QPU")
        return
    stats = stats if stats is not None else calibrate(exp)
    problems = [p for bits in left for p in formulate_grids(exp, bits, q.granularity, q.int1, stats)]
    plan = planner.plan(problems, warm_start=warm is not None, **q.sampler_options)
    reporter.message(plan.table())
    if config.qpu_budget is not None:
        plan.check_budget(config.qpu_budget)
        reporter.message(f"--qpu-budget {config.qpu_budget:g} s: the plan fits")


def _decomposed(layer) -> dict:
    """``{"decomposed": True, "decomposed_neurons": k}`` when ``k > 0`` neurons were solved by decomposition."""
    count = sum(bool(ss.info.get("decomposed")) for ss in layer.samplesets or () if ss is not None)
    return {"decomposed": True, "decomposed_neurons": count} if count else {}


def _say_decomposed(reporter: Reporter, bits: int, result: ModelResult) -> None:
    for layer in result.layers:
        if _decomposed(layer):
            reporter.message(f"int{bits} {layer.name}: {_decomposed(layer)['decomposed_neurons']} neuron(s) above "
                             "the backend's capacity solved by decomposition")
        if layer.info.get("warm_start_kept"):
            reporter.message(f"int{bits} {layer.name}: warm start kept for {layer.info['warm_start_kept']} of "
                             f"{layer.errors.size} neuron(s), the backend's best read above it (more reads or "
                             "sweeps may help)")


def _settings(config: RunConfig, exp: Experiment, warm: str | None) -> dict:
    q = config.quantize
    return {"dataset": exp.name, "model": exp.sizes, "epochs": exp.recipe.epochs,
            "float_accuracy": exp.float_accuracy, "num_calibration": len(exp.calibration), "backend": q.backend,
            "sampler_options": redact(q.sampler_options), "warm_start": warm, "calibration": q.calibration,
            "granularity": q.granularity, "int1": q.int1, "seed": config.model.seed, "bits": list(q.bits),
            "methods": list(q.methods), "objective": q.objective, "inactive_weight": q.inactive_weight,
            "skipped_layers": skipped_layers(exp.model, warn=False)}


def run(config: RunConfig, reporter: Reporter | None = None) -> RunSummary:
    """Quantize one dataset's model with every method at every bit width; write results as they finish.

    Every option is checked (and the backend built, its options checked against its ``parameters``) before
    any training. Float statistics are computed once and reused for every (bits, method) pair.
    """
    reporter = reporter or LogReporter()
    out = Path(config.out) if config.out is not None else default_out_dir(config.model.dataset)
    ResultStore.check(out, "run", config.stored_settings(), config.resume, data_fingerprint)
    with FolderLock.held(out if config.resume else None):
        return _run(config, reporter, out)


def _run(config: RunConfig, reporter: Reporter, out: Path) -> RunSummary:
    """:func:`run` once its folder is checked (and, on ``--resume``, locked)."""
    q = config.quantize
    sampler = resolve_backend(q, config.model.seed)
    _check_qpu_options(config, sampler)
    executor = make_executor(config.executor)  # a Dask scheduler is reached before any training
    with closing(sampler) if hasattr(sampler, "close") else nullcontext(), executor or nullcontext():
        exp = prepare(config.model)
        stats = calibrate(exp) if q.calibration == "float" else None
        warm = q.warm_start
        reporter.message(f"{exp.name}: MLP {exp.sizes}, float test accuracy {exp.float_accuracy:.4f}; "
                         f"{len(exp.calibration)} calibration samples; "
                         + ("a dry run: no results written" if config.dry_run else f"results -> {out}"))
        if sampler is not None:
            from qannealq.backends import retries_failures

            how, warm = _qubo_line(q.backend, sampler, warm)
            reporter.message(f"qubo method: {how}")
            if q.retries is not None and not retries_failures(sampler):
                reporter.message(f"--retries {q.retries} is not used: backend {q.backend!r} calls no cloud service "
                                 "(retries apply to dwave, dwave-hybrid, dwave-mock and backends that need a token)")
            sampler, where = _distribute(q.backend, sampler, executor, q.retry_count, config.model.seed)
            reporter.message(where)
        if config.dry_run or config.qpu_budget is not None:
            _qpu_plan(config, exp, sampler, stats, warm, reporter, out)
            if config.dry_run:
                return RunSummary(out, [], exp.float_accuracy)
        store = ResultStore.open(out, "run", config.stored_settings(), config.resume, data_fingerprint)
        try:
            if store.resumed:
                left = _discard_left(store, q)
                batches = sum(is_batch_key(key) and key not in left for key in store.resumed)
                reporter.message(f"resuming {out}: {len(store.resumed) - batches - len(left)} finished row(s) and "
                                 f"{batches} batch(es) of solved neurons kept, not recomputed"
                                 + (f"; {len(left)} batch(es) of finished rows removed" if left else ""))
            writer = RunWriter(out, _settings(config, exp, warm))
            models = out / "models" if config.save_model else None
            if models is not None:  # now, not with the first model: a resume cut short before it goes on saving
                models.mkdir(exist_ok=True)
            _sweep(exp, q, sampler, warm, stats, writer, store, reporter, executor=executor, models=models)
        finally:
            store.close()
    reporter.message(format_table(writer.rows, grids=q.granularity == "best"))
    reporter.message(f"float accuracy {exp.float_accuracy:.4f}")
    plot_accuracy(writer.rows, out / "accuracy_vs_bits.png", exp.float_accuracy,
                  f"{exp.name}, {q.calibration} calibration")
    reporter.message(f"wrote {out / 'results.csv'}, {out / 'results.json'}, {out / 'accuracy_vs_bits.png'}")
    return RunSummary(out, list(writer.rows), exp.float_accuracy)


def _discard_left(store: ResultStore, q: QuantizeConfig) -> set[str]:
    """The batches of the stored qubo rows among a resumed store's units, removed: a run stopped between storing a
    row and removing its batches left them (:meth:`StoreCheckpoint.discard_left`). Removed before the resume says
    what it keeps: counted among the kept batches, they made it announce neurons it would not use."""
    left: set[str] = set()
    for bits in q.bits:
        if "qubo" in q.methods and store.get(unit_key(bits=bits, method="qubo")) is not None:
            left.update(StoreCheckpoint(store, {"bits": bits, "method": "qubo"}).discard_left(store.resumed))
    return left


def _sweep(exp: Experiment, q: QuantizeConfig, sampler, warm: str | None, stats, writer: RunWriter,
           store: ResultStore, reporter: Reporter, executor=None, models: Path | None = None) -> None:
    """Every (bits, method) row not yet in the store, in order; each written to the store when finished.
    ``stats``: every layer's float statistics (float calibration), or None."""
    goal = make_objective(q.objective, q.inactive_weight, q.memory_limit)
    stats = reusable_stats(exp, q.calibration, goal, stats)  # once for every (bits, method)
    per_row = sum(exp.sizes[1:]) * (2 if q.granularity == "best" else 1)  # neurons a qubo row solves
    total = per_row * len(q.bits) * q.methods.count("qubo")
    with reporter.progress(total, "solving QUBOs", "neuron") as bar:
        for bits in q.bits:
            for method in q.methods:
                key = unit_key(bits=bits, method=method)
                qubo = method == "qubo"
                stored = store.get(key)
                if stored is not None:
                    writer.add(ResultRow(**stored))
                    if models is not None and not model_path(models, bits, method).is_file():
                        reporter.message(f"int{bits} {method} was finished by a run without --save-model: its "
                                         "model is not saved")
                    bar.update(per_row if qubo else 0)
                    continue
                bar.status(f"int{bits} {method}")
                checkpoint = StoreCheckpoint(store, {"bits": bits, "method": method}) if qubo else None
                result = quantize_model(exp.model, exp.calibration, bits, method, sampler if qubo else None,
                                        q.calibration, q.granularity, q.int1, warm_start=warm,
                                        seed=exp.config.seed, float_stats=stats, executor=executor if qubo else None,
                                        objective=goal,
                                        progress=(lambda name, k, n: bar.update(k)) if qubo else None,
                                        checkpoint=checkpoint,
                                        **(q.sampler_options if qubo else {}))
                if qubo:  # given the built sampler, quantize_model names its class (a saved model said so)
                    result = replace(result, backend=q.backend)
                for layer in result.layers if qubo else ():
                    if "qpu" in layer.info:
                        reporter.message(f"int{bits} {layer.name}: {layer.info['qpu']['summary']}")
                _say_decomposed(reporter, bits, result)
                row = ResultRow(exp.name, method, q.backend if qubo else "", bits, q.calibration, result.granularity,
                                exp.test_accuracy(result.model), result.layer_error, result.seconds,
                                _layer_rows(result))
                if models is not None:  # before the row: a stored row has its model file
                    result.save(model_path(models, bits, method), {"dataset": exp.name, "model": exp.sizes,
                                                                    "seed": exp.config.seed, "accuracy": row.accuracy})
                store.put(key, asdict(row))
                logger.info("solved and stored unit %s", key)
                if checkpoint is not None:
                    checkpoint.discard()  # its batches are in the row now
                writer.add(row)
