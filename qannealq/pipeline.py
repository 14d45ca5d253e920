"""Whole-model quantization: calibrate, formulate and solve every Linear layer in forward order."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import dimod
import numpy as np
import torch

from qannealq.calibration import CALIBRATION_MODES, as_calibration_tensor, collect_stats, linear_layers
from qannealq.errors import InvalidArgumentError
from qannealq.formulation import LayerProblem, build_problem
from qannealq.grid import check_bits, make_grid
from qannealq.solve import METHODS, LayerResult, quantize_layer

__all__ = ["ModelResult", "quantize_model", "formulate_layer", "ProgressCallback"]

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(layer_name, neurons_done_now, neurons_in_layer)``."""


@dataclass
class ModelResult:
    """A quantized network and its per-layer results.

    Attributes:
        model: a quantized copy of the network (the input network is left unchanged).
        layers: one :class:`LayerResult` per quantized Linear layer, in forward order.
        method, backend, bits, calibration, granularity: the settings.
        seconds: wall time of calibration, formulation and solving.
        formulate_seconds: of which spent accumulating statistics and formulating.
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


def formulate_layer(layer: torch.nn.Linear, stats, bits: int, granularity: str, int1: str,
                    name: str) -> LayerProblem:
    """Grid and QUBOs of one ``nn.Linear`` layer from its calibration statistics."""
    weight = layer.weight.detach().double().cpu().numpy()
    bias = None if layer.bias is None else layer.bias.detach().double().cpu().numpy()
    return build_problem(stats, weight, bias, make_grid(weight, bias, bits, granularity, int1), name)


def _write_back(layer: torch.nn.Linear, values: np.ndarray) -> None:
    f = layer.in_features
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(values[:, :f], dtype=layer.weight.dtype))
        if layer.bias is not None:
            layer.bias.copy_(torch.as_tensor(values[:, f], dtype=layer.bias.dtype))


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


def quantize_model(model: torch.nn.Module, calibration_data: object, bits: int, method: str = "qubo",
                   sampler: "str | dimod.Sampler | None" = "layer-sa", calibration: str = "float",
                   granularity: str = "tensor", int1: str = "sign", layers: Sequence[str] | None = None,
                   warm_start: str | None = "gptq-restricted", seed: int | None = None, batch_size: int = 256,
                   progress: ProgressCallback | None = None, **sampler_kwargs: Any) -> ModelResult:
    """Quantize every ``nn.Linear`` layer of ``model`` (or those named in ``layers``).

    Args:
        model: the trained float network (its weights are not modified; its train/eval mode is restored).
        calibration_data: inputs ``(N, ...)``, array or tensor.
        bits: 1..8.
        method: ``rtn``, ``gptq``, ``gptq-restricted`` or ``qubo``.
        sampler: backend name or ``dimod.Sampler`` for ``qubo``.
        calibration: ``"float"`` (paper) or ``"sequential"``.
        granularity: ``"tensor"`` or ``"channel"``.
        int1: int1 scheme, ``"sign"`` or ``"paper"``.
        layers: names of the Linear layers to quantize; all by default.
        warm_start: baseline used as initial state for samplers that accept one.
        seed: base seed; layer ``l`` uses ``seed + l``.
        batch_size: calibration batch size.
        progress: see :data:`ProgressCallback`.
        **sampler_kwargs: passed to the sampler.
    """
    from qannealq.backends import resolve_sampler

    if method not in METHODS:
        raise InvalidArgumentError(f"method={method!r} is unknown: choose one of {', '.join(METHODS)}")
    if calibration not in CALIBRATION_MODES:
        raise InvalidArgumentError(f"calibration={calibration!r} must be one of {', '.join(CALIBRATION_MODES)}")
    t0 = time.perf_counter()
    solver = resolve_sampler(sampler) if method == "qubo" else None
    backend = "" if solver is None else (sampler if isinstance(sampler, str) else type(sampler).__name__)
    run = _Run(check_bits(bits), method, backend, calibration, granularity, int1, warm_start, seed, batch_size,
               sampler_kwargs)
    data = as_calibration_tensor(calibration_data, dtype=next(model.parameters()).dtype)
    was_training = model.training
    try:
        names = linear_layers(model.eval(), data, layers)
        quant_model, results, t_form = _quantize_layers(model, names, data, run, solver, progress)
    finally:
        model.train(was_training)
    settings = {"layers": names, "warm_start": warm_start, "seed": seed, "int1": int1,
                "num_calibration": int(data.shape[0]),
                "sampler_kwargs": {k: repr(v) for k, v in sampler_kwargs.items()}}
    return ModelResult(quant_model, results, method, backend, run.bits, calibration, granularity,
                       time.perf_counter() - t0, t_form, settings)


def _quantize_layers(float_model: torch.nn.Module, names: list[str], data: torch.Tensor, run: _Run,
                     solver: dimod.Sampler | None,
                     progress: ProgressCallback | None) -> tuple[torch.nn.Module, list[LayerResult], float]:
    """Formulate and solve each layer in forward order; write its values into a copy of the model."""
    quant_model = copy.deepcopy(float_model).eval()
    modules = dict(quant_model.named_modules())
    float_stats = collect_stats(float_model, float_model, names, data, run.batch_size) \
        if run.calibration == "float" else {}
    results, t_form = [], 0.0
    for index, name in enumerate(names):
        tf = time.perf_counter()
        stats = float_stats.get(name) or collect_stats(quant_model, float_model, [name], data, run.batch_size)[name]
        problem = formulate_layer(modules[name], stats, run.bits, run.granularity, run.int1, name)
        t_form += time.perf_counter() - tf
        step = None if progress is None else (lambda k, _n=name, _t=problem.num_neurons: progress(_n, k, _t))
        result = quantize_layer(problem, run.method, solver, run.backend, run.warm_start,
                                None if run.seed is None else run.seed + index, progress=step, **run.sampler_kwargs)
        _write_back(modules[name], result.values)
        results.append(result)
    return quant_model, results, t_form
