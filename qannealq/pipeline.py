"""Whole-model quantization: calibrate, formulate and solve every Linear layer in forward order.

Layers with weights that are not ``nn.Linear`` (``Conv2d``, ``Embedding``, normalisations...) stay in float: a
warning says so once per call and ``ModelResult.settings["skipped_layers"]`` lists them (name -> type).
"""

from __future__ import annotations

import copy
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field, is_dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import dimod
import numpy as np
import torch

from qannealq.baselines import DEFAULT_WARM_START
from qannealq.calibration import CALIBRATION_MODES, collect_stats, linear_layers, model_inputs
from qannealq.checks import check_positive
from qannealq.contract import check_keywords, check_parameters, draw_seed, redact_values, sampler_name
from qannealq.errors import InvalidArgumentError, NonFiniteError
from qannealq.formulation import LayerProblem, LayerStats, build_problem
from qannealq.grid import (GRANULARITIES, GRANULARITY_CHOICES, INT1_SCHEMES, ZERO_SIGN_STEP, Grid, check_bits,
                           held_grid, make_grid)
from qannealq.solve import (METHODS, LayerResult, NeuronCheckpoint, check_warm_rows, parse_warm_start,
                            quantize_layer)
from qannealq.weighted import Objective, WeightedLayerStats, build_weighted_problem, make_objective
from qannealq.weighted_calibration import collect_weighted_stats, relu_fed_layers, stale_weighted

__all__ = ["ModelResult", "quantize_model", "formulate_layer", "ProgressCallback", "skipped_layers"]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(layer_name, neurons_done_now, neurons_in_layer)``."""


@dataclass
class ModelResult:
    """A quantized network and its per-layer results.

    Attributes:
        model: a quantized copy of the network (the input network is left unchanged).
        layers: one :class:`LayerResult` per quantized Linear layer, in forward order.
        method, backend, bits, calibration, granularity: the settings.
        seconds: wall time of calibration, formulation and solving (less the layers' warm-ups, the first
            loading of their compiled code in the process: :func:`qannealq.solve.warm_up`).
        formulate_seconds: of which spent accumulating statistics and formulating.
        settings: the other options (``sampler_kwargs`` as JSON values, secrets redacted:
            :func:`~qannealq.contract.redact_values`), and ``skipped_layers`` (layers with weights left in float:
            name -> type).
    """

    model: torch.nn.Module
    layers: list[LayerResult]
    method: str
    backend: str
    bits: int
    calibration: str
    granularity: str
    seconds: float
    formulate_seconds: float = 0.0
    settings: dict = field(default_factory=dict)

    @property
    def layer_error(self) -> float:
        """Sum over layers of each layer's reconstruction error."""
        return float(sum(layer.error for layer in self.layers))

    def save(self, path: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
        """Write the quantized model (int8 grid integers, steps, offsets, bits, redacted settings, checksum).

        Load it with :func:`qannealq.load_quantized`; see :mod:`qannealq.model_export` for the format.
        ``extra`` adds settings to record (dataset, accuracy...); one the result records already (``bits``,
        ``method``...) only with the same value.
        """
        from qannealq.model_export import save_quantized

        return save_quantized(self, path, extra)


def formulate_layer(layer: torch.nn.Linear, stats, bits: int, granularity: str, int1: str,
                    name: str) -> LayerProblem:
    """Grid and QUBOs of one ``nn.Linear`` layer from its calibration statistics.

    A layer in float16 or bfloat16 gets a grid whose levels its dtype holds exactly (:func:`_held`): the quantized
    model's weights are then ``step * (z + offset)`` as the errors are reported and the file stores them.
    """
    weight = layer.weight.detach().double().cpu().numpy()
    bias = None if layer.bias is None else layer.bias.detach().double().cpu().numpy()
    build = build_weighted_problem if isinstance(stats, WeightedLayerStats) else build_problem
    return build(stats, weight, bias, _held(make_grid(weight, bias, bits, granularity, int1), layer, name), name)


def _significand(dtype: torch.dtype) -> tuple[int, float]:
    """Significand bits and smallest positive value (subnormal) of a floating ``dtype``."""
    info = torch.finfo(dtype)
    return 1 - int(np.log2(info.eps)), float(info.tiny) * float(info.eps)


def _held(grid: Grid, layer: torch.nn.Linear, name: str) -> Grid:
    """``grid`` with steps whose levels ``layer``'s dtype holds exactly, where it has fewer significand bits than
    float32 (float16, bfloat16): the grid's levels cast to it were up to 0.05 (float16) and 0.4 (bfloat16) of a
    step off their level at int8, while the errors were reported for the levels. float32 and float64 keep the
    grid: they hold each level to their own rounding (2**-24 of it, or less)."""
    weight_bits, weight_smallest = _significand(layer.weight.dtype)
    bias_bits, bias_smallest = (weight_bits, weight_smallest) if layer.bias is None else \
        _significand(layer.bias.dtype)
    if min(weight_bits, bias_bits) >= _significand(torch.float32)[0]:
        return grid
    held = held_grid(grid, weight_bits, bias_bits, weight_smallest, bias_smallest)
    plain = np.append(grid.weight_step, [] if grid.bias_step is None else grid.bias_step)  # the bias's grows apart
    steps = np.append(held.weight_step, [] if held.bias_step is None else held.bias_step)
    # an all-zero row's sign levels stand for zero on either step (±2**-41 -> ±2**-24 in float16)
    real = (plain != ZERO_SIGN_STEP) | (grid.scheme != "sign")
    coarser = float(np.max(steps[real] / plain[real], initial=1.0)) - 1.0
    if coarser > 0:  # a coarser grid than asked for raises the error: said where a user sees it by default
        logger.warning("layer %r (%s): grid steps rounded up, by up to %.3g %%, to ones whose levels it holds "
                       "exactly; quantize a float32 copy (model.float()) for the plain grid", name,
                       layer.weight.dtype, 100 * coarser)
    return held


def _write_back(layer: torch.nn.Linear, values: np.ndarray, name: str) -> None:
    """Write the quantized values; refuse one past the layer's dtype (a float16 grid's steps rounded up: weights
    near -65504 on level -128 became -inf)."""
    f = layer.in_features
    parts = [("weight", layer.weight, values[:, :f])] + ([] if layer.bias is None else [("bias", layer.bias,
                                                                                          values[:, f])])
    for kind, param, part in parts:
        held = torch.as_tensor(part, dtype=param.dtype)
        if not bool(torch.isfinite(held).all()):
            raise InvalidArgumentError(f"layer {name!r}: its quantized {kind} reaches {np.abs(part).max():.6g}, past "
                                       f"the range of its {param.dtype}: quantize a float32 copy of the model "
                                       "(model.float())")
        with torch.no_grad():
            param.copy_(held)


@dataclass(frozen=True)
class _Run:
    """The settings of one model quantization (plain data: picklable for executors)."""

    bits: int
    method: str
    backend: str
    calibration: str
    granularity: str
    int1: str
    warm_start: str | None
    seed: int | None
    batch_size: int
    sampler_kwargs: dict
    objective: Objective = Objective()
    weighted: tuple[str, ...] = ()  # layers with the relu-aware objective


def quantize_model(model: torch.nn.Module, calibration_data: object, bits: int, method: str = "qubo",
                   sampler: "str | dimod.Sampler | None" = "layer-sa", calibration: str = "float",
                   granularity: str = "tensor", int1: str = "sign", layers: Sequence[str] | None = None,
                   warm_start: str | None = DEFAULT_WARM_START, seed: int | None = None, batch_size: int = 256,
                   progress: ProgressCallback | None = None, checkpoint: NeuronCheckpoint | None = None,
                   float_stats: Mapping[str, LayerStats] | None = None, executor: Executor | None = None,
                   objective: "str | Objective" = "preact", inactive_weight: float | None = None,
                   memory_limit: int | None = None, **sampler_kwargs: Any) -> ModelResult:
    """Quantize every ``nn.Linear`` layer of ``model`` (or those named in ``layers``).

    Args:
        model: the trained float network (its weights are not modified; each module's train/eval mode is
            restored).
        calibration_data: inputs ``(N, ...)``, array or tensor; or a ``DataLoader`` whose batches are inputs or
            ``(inputs, labels)`` (every batch is taken).
        bits: 1..8.
        method: ``rtn``, ``gptq``, ``gptq-restricted`` or ``qubo``.
        sampler: backend name or ``dimod.Sampler`` for ``qubo``.
        calibration: ``"float"`` (paper) or ``"sequential"``.
        granularity: ``"tensor"``, ``"channel"``, or ``"best"``: both grids solved (a ``checkpoint`` keeps each
            grid's batches apart) and the one with the lower summed layer error returned, its seconds the sum,
            ``settings["grid_errors"]`` each grid's summed layer error.
        int1: int1 scheme, ``"sign"`` or ``"paper"``.
        layers: names of the Linear layers to quantize; all by default.
        warm_start: baseline used as initial state for samplers that accept one (None or ``"none"``: no warm
            start).
        seed: base seed; layer ``l`` uses ``seed + l``.
        batch_size: calibration batch size.
        progress: see :data:`ProgressCallback`.
        checkpoint: keeps each finished batch of neuron rows of the qubo solves (see
            :class:`qannealq.solve.NeuronCheckpoint`), so that an interrupted call resumes.
        float_stats: float statistics of the layers, computed once by the caller (e.g.
            :func:`qannealq.experiment.calibrate`) and reused here when ``calibration="float"``, and by the
            first quantized layer with ``calibration="sequential"`` (its inputs are still the float network's).
        executor: runs the per-neuron solves of a per-neuron sampler (see :mod:`qannealq.executors`); a
            whole-layer sampler (``layer-sa``) ignores it. Results equal the serial run's for a fixed seed.
        objective: ``"preact"`` (the paper's) or ``"relu-aware"``: layers followed by a ReLU weight each
            sample by whether the float neuron is active (:mod:`qannealq.weighted`); or an ``Objective``.
        inactive_weight: ``relu-aware``: the weight of inactive samples (default
            :data:`qannealq.weighted.DEFAULT_INACTIVE_WEIGHT`; 0 ignores them).
        memory_limit: ``relu-aware``: bytes a layer's samples and per-neuron matrices may hold (default
            :data:`qannealq.weighted.DEFAULT_MEMORY_LIMIT`; ``--memory-limit``); the time changes, not the results.
            Taken as a sampler option, it was refused as one the backend does not take.
        **sampler_kwargs: passed to the qubo method's sampler (a backend given by name must list each in its
            ``parameters``; with another method they are refused, as they would be ignored).

    Raises:
        InvalidArgumentError: a bad option, raised before the calibration pass.
    """
    from qannealq.backends import resolve_sampler

    warm_start = parse_warm_start(warm_start, "warm_start")  # as --warm-start says it
    _check_options(method, calibration, granularity, int1, batch_size, seed, progress)
    _check_float_stats(float_stats)
    goal = make_objective(objective, inactive_weight, memory_limit)
    t0 = time.perf_counter()
    if sampler_kwargs and method != "qubo":  # they would be ignored (a misspelt calibration= among them)
        raise InvalidArgumentError(f"{', '.join(sorted(sampler_kwargs))}: method {method!r} takes no sampler options "
                                   "(keywords quantize_model does not know go to the qubo method's sampler): check "
                                   "the spelling, or use method='qubo'")
    solver = resolve_sampler(sampler) if method == "qubo" else None
    if isinstance(sampler, str) and solver is not None:  # a backend of ours lists every option it takes
        check_parameters(sampler, solver, sampler_kwargs, given="quantize_model keyword")
    elif solver is not None:  # a sampler object: a backend of ours refuses unknown keys, another warns
        check_keywords("", solver, sampler_kwargs, given="quantize_model keyword")  # values before any calibration
    if solver is not None:
        check_warm_rows(solver, sampler_kwargs, warm_start, given="quantize_model keyword")
    backend = "" if solver is None else sampler_name(solver, sampler if isinstance(sampler, str) else "")
    if granularity == "best":
        data = model_inputs(model, calibration_data)  # a loader read once
        results = {grid: quantize_model(model, data, bits, method, solver if solver is not None else sampler,
                                        calibration, grid, int1, layers, warm_start, seed, batch_size, progress,
                                        _grid_checkpoint(checkpoint, grid), float_stats, executor, goal,
                                        **sampler_kwargs)
                   for grid in GRANULARITIES}
        best = results[min(results, key=lambda grid: results[grid].layer_error)]
        return replace(best, backend=backend, seconds=sum(r.seconds for r in results.values()),
                       formulate_seconds=sum(r.formulate_seconds for r in results.values()),
                       settings={**best.settings, "grid_errors": {g: r.layer_error for g, r in results.items()}})
    run = _Run(check_bits(bits), method, backend, calibration, granularity, int1, warm_start, seed, batch_size,
               sampler_kwargs, goal)
    data = model_inputs(model, calibration_data)
    modes = [(module, module.training) for module in model.modules()]  # each module's (a frozen BatchNorm's eval)
    try:
        names = linear_layers(model.eval(), data, layers)
        _check_finite(model, names)
        skipped = skipped_layers(model)
        run = replace(run, weighted=tuple(relu_fed_layers(model, data, names)) if goal.weighted else ())
        quant_model, results, t_form = _quantize_layers(model, names, data, run, solver, progress, checkpoint,
                                                        dict(float_stats or {}), executor)
    finally:
        _restore_modes(modes)
    settings = {"layers": names, "skipped_layers": skipped, "warm_start": warm_start, "seed": seed, "int1": int1,
                "num_calibration": int(data.shape[0]),
                "sampler_kwargs": redact_values(sampler_kwargs), **goal.describe(),
                "weighted_layers": list(run.weighted)}
    warm_ups = sum(result.info.get("warm_up_seconds", 0.0) for result in results)  # once per process: not the run's
    return ModelResult(quant_model, results, method, backend, run.bits, calibration, granularity,
                       time.perf_counter() - t0 - warm_ups, t_form, settings)


def _restore_modes(modes: Sequence[tuple[torch.nn.Module, bool]]) -> None:
    """Each module's train/eval mode as recorded (parents first: ``train(mode)`` sets the children too, then their
    own); ``model.train(was_training)`` put a BatchNorm the user had frozen in eval back in train mode."""
    for module, mode in modes:
        module.train(mode)


def _grid_checkpoint(checkpoint: NeuronCheckpoint | None, grid: str) -> NeuronCheckpoint | None:
    """``checkpoint`` for one grid of ``granularity="best"``: its batches under keys of their own (the two grids'
    batches of a layer are different problems, and would replace each other)."""
    if checkpoint is None:
        return None
    unit = getattr(checkpoint, "unit", None)
    if not isinstance(unit, Mapping) or not is_dataclass(checkpoint):
        raise InvalidArgumentError("granularity='best' solves both grids, and checkpoint has no unit to keep their "
                                   "batches apart: give a qannealq.checkpoint.StoreCheckpoint, or one granularity")
    return replace(checkpoint, unit={**unit, "granularity": grid})  # its lists shared: discard() sees both grids


def skipped_layers(model: torch.nn.Module, warn: bool = True) -> dict[str, str]:
    """Layers with weights of their own that are not ``nn.Linear`` (they stay in float): name -> type.

    Logs one warning listing them, when there are any (unless ``warn`` is False).
    """
    skipped = {name: type(module).__name__ for name, module in model.named_modules()
               if not isinstance(module, torch.nn.Linear) and any(True for _ in module.parameters(recurse=False))}
    if skipped and warn:
        logger.warning("only torch.nn.Linear layers are quantized: %s stay in float",
                       ", ".join(f"{name} ({kind})" for name, kind in skipped.items()))
    return skipped


def _check_finite(model: torch.nn.Module, names: Sequence[str]) -> None:
    """Refuse, before any calibration, a layer whose weight or bias holds NaN or infinity."""
    modules = dict(model.named_modules())
    for name in names:
        for kind in ("weight", "bias"):
            tensor = getattr(modules[name], kind, None)
            if tensor is not None and not bool(torch.isfinite(tensor).all()):
                raise NonFiniteError(f"layer {name!r}: its {kind} contains NaN or infinity; fix or retrain the "
                                     "model before quantizing it")


def _check_options(method: str, calibration: str, granularity: str, int1: str, batch_size: int,
                   seed: int | None = None, progress: Any = None) -> None:
    """Every option of :func:`quantize_model` checked before any work (the seed was checked only when the first
    layer's sampler drew it, after the calibration pass)."""
    for name, value, allowed in (("method", method, METHODS), ("calibration", calibration, CALIBRATION_MODES),
                                 ("granularity", granularity, GRANULARITY_CHOICES), ("int1", int1, INT1_SCHEMES)):
        if value not in allowed:
            shown = ", ".join(repr(a) for a in allowed)
            raise InvalidArgumentError(f"{name}={value!r} is unknown: choose one of {shown}")
    check_positive("batch_size", batch_size)
    if seed is not None:
        draw_seed(seed)
    if progress is not None and not callable(progress):
        raise InvalidArgumentError(f"progress={progress!r} must be a function (layer name, neurons done now, neurons "
                                   "in the layer) or None")


def _check_float_stats(float_stats: object) -> None:
    """``float_stats`` a mapping of layer names to statistics (``float_stats=3`` ended in a bare ``TypeError``)."""
    if float_stats is None:
        return
    if not isinstance(float_stats, Mapping) or not all(
            isinstance(s, (LayerStats, WeightedLayerStats)) for s in float_stats.values()):
        raise InvalidArgumentError(f"float_stats must map layer names to the statistics calibrate(exp) computes "
                                   f"({{name: LayerStats}}), got {type(float_stats).__name__}: pass calibrate(exp)'s "
                                   "result for this model, or leave float_stats out")


#: The share of a layer's energy at zero weights (its targets' own) that its float weights may leave in statistics
#: given as ``float_stats``: the targets are the float layer's outputs, which its weights reproduce to float32
#: rounding (about 1e-14 of it), where another model's statistics of the same shapes leave about all of it.
STATS_MISMATCH = 1e-3


def _check_stats_belong(problem: LayerProblem, name: str) -> None:
    """Refuse ``float_stats`` of another model (or layer) for layer ``name``: the float weights must reproduce the
    statistics' targets. Statistics of another MLP of the digits' shapes were used silently (a layer error of 230
    where this model's give 0.41). A few neurons' errors, spread over the layer: a product of a few rows."""
    rows = np.unique(np.linspace(0, problem.num_neurons - 1, min(4, problem.num_neurons)).astype(int))
    dead = problem.dead if problem.dead.ndim == 1 else problem.dead[rows]  # per-neuron H_i: each its own
    own = problem.neuron_errors(np.where(dead, 0.0, problem.weights[rows]), rows)
    zero = problem.neuron_errors(np.zeros((rows.size, problem.num_coordinates)), rows)
    if own.sum() > STATS_MISMATCH * zero.sum():
        raise InvalidArgumentError(f"float_stats[{name!r}] are not this model's layer {name!r}: its float weights "
                                   f"leave {own.sum() / zero.sum():.3g} of the targets' energy in them, where they "
                                   "reproduce their own targets exactly; compute them with calibrate(exp) for this "
                                   "model, or leave float_stats out")


def _fresh(float_stats: Mapping[str, LayerStats], name: str, run: _Run) -> bool:
    """Whether ``float_stats`` holds ``name``'s statistics as ``run`` needs them (weighted by its objective)."""
    return name in float_stats and (name not in run.weighted or not stale_weighted(float_stats, [name], run.objective))


def _quantize_layers(float_model: torch.nn.Module, names: list[str], data: torch.Tensor, run: _Run,
                     solver: dimod.Sampler | None,
                     progress: ProgressCallback | None, checkpoint: NeuronCheckpoint | None,
                     float_stats: dict[str, LayerStats],
                     executor: Executor | None = None) -> tuple[torch.nn.Module, list[LayerResult], float]:
    """Formulate and solve each layer in forward order; write its values into a copy of the model."""
    quant_model = copy.deepcopy(float_model).eval()
    modules = dict(quant_model.named_modules())
    given = set(float_stats)  # the caller's (before any computed here): checked against the layer once formulated
    missing = [n for n in names if n not in float_stats]
    if run.calibration == "float" and missing:
        float_stats.update(collect_stats(float_model, float_model, missing, data, run.batch_size))
    stale = stale_weighted(float_stats, run.weighted, run.objective) if run.calibration == "float" else []
    given -= set(stale)
    if stale:
        float_stats.update(collect_weighted_stats(float_model, float_model, stale, data, run.objective,
                                                  run.batch_size))
    results, t_form = [], 0.0
    for index, name in enumerate(names):
        tf = time.perf_counter()
        check = False
        if run.calibration == "float" or (index == 0 and _fresh(float_stats, name, run)):
            # sequential calibration's first layer sees the float network's inputs: its float statistics hold
            stats = float_stats[name]
            stats = stats if name in run.weighted or not isinstance(stats, WeightedLayerStats) else stats.plain
            check = name in given
        elif name in run.weighted:
            stats = collect_weighted_stats(quant_model, float_model, [name], data, run.objective, run.batch_size)[name]
        else:
            stats = collect_stats(quant_model, float_model, [name], data, run.batch_size)[name]
        problem = formulate_layer(modules[name], stats, run.bits, run.granularity, run.int1, name)
        if check:
            _check_stats_belong(problem, name)
        t_form += time.perf_counter() - tf
        step = None if progress is None else (lambda k, _n=name, _t=problem.num_neurons: progress(_n, k, _t))
        result = quantize_layer(problem, run.method, solver, run.backend, run.warm_start,
                                None if run.seed is None else run.seed + index, executor=executor, progress=step,
                                checkpoint=checkpoint,
                                **run.sampler_kwargs)
        _write_back(modules[name], result.values, name)
        results.append(result)
    return quant_model, results, t_form
