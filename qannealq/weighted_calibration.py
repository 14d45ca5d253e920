"""Calibration for the relu-aware objective: which layers feed a ReLU, and their samples and weights by hooks.

The weights ``m_si`` always come from the FLOAT network's pre-activations (the targets), in both calibration
modes; the inputs ``X̂`` come from the float network (``float``) or the partly quantized one (``sequential``).
One pass of :func:`qannealq.calibration.collect_stats` fills the plain accumulator (the same ``H``, ``g``,
``c`` as the plain path) and keeps the samples, within ``Objective.memory_limit`` (see :mod:`qannealq.weighted`).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from qannealq.calibration import Accumulator, as_rows, collect_stats, model_inputs
from qannealq.errors import InvalidArgumentError
from qannealq.formulation import LayerStats
from qannealq.weighted import Objective, WeightedLayerStats

__all__ = ["relu_fed_layers", "collect_weighted_stats", "with_weighted_stats", "stale_weighted"]


def relu_fed_layers(model: torch.nn.Module, data: torch.Tensor, names: Sequence[str]) -> list[str]:
    """Those of ``names`` whose output is the input of a ``torch.nn.ReLU`` module (one forward pass).

    A ReLU applied as a function (``torch.relu`` in ``forward``) is not seen: such a layer keeps the plain
    objective, like the last layer and layers followed by anything else.
    """
    modules = dict(model.named_modules())
    outputs: dict[str, torch.Tensor] = {}
    fed: set[str] = set()

    def seen_by_relu(module, inputs, output) -> None:
        fed.update(n for n, out in outputs.items() if inputs and inputs[0] is out)

    handles = [modules[n].register_forward_hook(lambda mod, inp, out, _n=n: outputs.__setitem__(_n, out))
               for n in names]
    handles += [m.register_forward_hook(seen_by_relu) for m in modules.values() if isinstance(m, torch.nn.ReLU)]
    try:
        with torch.no_grad():
            model(data[:1])
    finally:
        for handle in handles:
            handle.remove()
    return [n for n in names if n in fed]


class _WeightedAccumulator:
    """The plain accumulator, plus the samples and their weights kept for the per-neuron terms."""

    def __init__(self, name: str, bias: bool, objective: Objective,
                 weigh: Callable[[np.ndarray], np.ndarray]) -> None:
        self.name, self.bias, self.objective, self.weigh = name, bias, objective, weigh
        self.plain = Accumulator(bias)
        self.xs: list[np.ndarray] = []
        self.ys: list[np.ndarray] = []
        self.nbytes = 0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.plain.add(x, y)
        x, y = as_rows(x, y, self.bias)
        self.nbytes += 8 * (x.numel() + 2 * y.numel())
        if self.nbytes > self.objective.memory_limit:
            raise InvalidArgumentError(
                f"relu-aware objective: layer {self.name!r} keeps its calibration samples ({x.shape[1]} inputs, "
                f"{y.shape[1]} neurons: 8(m + 2n) bytes each), over memory_limit={self.objective.memory_limit} "
                "bytes after {} samples; use fewer calibration samples (--num-calibration) or a larger limit "
                "(--memory-limit GIB; Objective(memory_limit=...) in Python)".format(
                    sum(len(a) for a in self.xs) + x.shape[0]))
        self.xs.append(x.numpy())
        self.ys.append(y.numpy())

    def stats(self) -> WeightedLayerStats:
        y = np.concatenate(self.ys)
        return WeightedLayerStats(self.plain.stats(), np.concatenate(self.xs), y,
                                  np.asarray(self.weigh(y), np.float64), self.objective)


def collect_weighted_stats(input_model: torch.nn.Module, target_model: torch.nn.Module, names: Sequence[str],
                           data: torch.Tensor, objective: Objective, batch_size: int = 256,
                           weigh: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, WeightedLayerStats]:
    """:class:`WeightedLayerStats` of layers ``names``: inputs from ``input_model``, the targets and the
    weights from the float ``target_model`` (``weigh(Y)``, default ``objective.sample_weights``)."""
    weigh = weigh or objective.sample_weights
    return collect_stats(input_model, target_model, names, data, batch_size,
                         lambda name, layer: _WeightedAccumulator(name, layer.bias is not None, objective, weigh))


def with_weighted_stats(model: torch.nn.Module, data: object, objective: Objective,
                        stats: Mapping[str, LayerStats], batch_size: int = 256) -> dict:
    """Float statistics ``stats`` with those of the ReLU-fed layers replaced by weighted ones (computed once,
    reused for every bit width and method); ``stats`` unchanged for the ``preact`` objective."""
    out = dict(stats)
    if objective.weighted:
        data = model_inputs(model, data)
        fed = relu_fed_layers(model, data, list(stats))
        out.update(collect_weighted_stats(model, model, fed, data, objective, batch_size))
    return out


def stale_weighted(stats: Mapping[str, object], names: Sequence[str], objective: Objective) -> list[str]:
    """Those of ``names`` whose ``stats`` are missing or not weighted by ``objective`` (to collect again)."""
    return [n for n in names if not (isinstance(stats.get(n), WeightedLayerStats) and stats[n].objective == objective)]
