"""One place that turns (dataset, seed, options) into data, a trained model and a calibration set.

``run``, every benchmark and the test fixtures get their models here, so that a model and its calibration
draw are the same wherever a dataset and seed are named:

* :data:`RECIPES`: the per-dataset training recipe (hidden sizes, epochs, learning rate, batch size, threads);
* :func:`prepare`: load the data, train (or load from the cache) the MLP, measure its float accuracy and
  draw the calibration set, with every option validated first (:class:`~qannealq.config.ModelConfig`);
* :func:`calibrate`: the float statistics of every Linear layer, computed once and reused for every
  (bits, method) pair;
* :func:`formulate`: the layer problems (grids and QUBOs) for one bit width.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from qannealq.calibration import as_calibration_tensor, collect_stats, linear_layers
from qannealq.config import ModelConfig
from qannealq.data import Dataset, accuracy, load_dataset, train_mlp
from qannealq.data.recipes import RECIPES, TINY_RECIPE, Recipe, recipe
from qannealq.formulation import LayerProblem, LayerStats
from qannealq.grid import GRANULARITIES, check_bits
from qannealq.pipeline import formulate_layer
from qannealq.report import Reporter
from qannealq.weighted import Objective
from qannealq.weighted_calibration import with_weighted_stats

__all__ = ["Recipe", "RECIPES", "TINY_RECIPE", "Experiment", "recipe", "prepare", "calibrate", "formulate",
           "formulate_grids", "calibration_draw"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Experiment:
    """A prepared experiment: the data, the trained float network and its calibration inputs.

    Attributes:
        config: the validated settings it was prepared from.
        recipe: the recipe actually used (``config.hidden`` and ``config.epochs`` applied).
        data: the dataset (flattened float32 inputs, int64 labels).
        model: the trained float MLP (eval mode).
        float_accuracy: its test accuracy.
        calibration: the calibration inputs ``(N, f)`` (a fixed draw from the training set, sorted).
    """

    config: ModelConfig
    recipe: Recipe
    data: Dataset
    model: torch.nn.Module
    float_accuracy: float
    calibration: np.ndarray

    @property
    def sizes(self) -> list[int]:
        """Layer widths ``[inputs, *hidden, classes]``."""
        return [self.data.num_inputs, *self.recipe.hidden, self.data.num_classes]

    @property
    def name(self) -> str:
        return self.data.name

    def layer_names(self) -> list[str]:
        """The Linear layers in forward order."""
        return linear_layers(self.model, as_calibration_tensor(self.calibration[:1]))

    def test_accuracy(self, model: torch.nn.Module) -> float:
        """Test accuracy of ``model`` (e.g. a quantized copy) on this experiment's test set."""
        return accuracy(model, self.data.x_test, self.data.y_test)


def calibration_draw(data: Dataset, num: int, seed: int, warn: bool = True) -> np.ndarray:
    """``min(num, N)`` training inputs drawn without replacement by ``seed``, in their original order (all ``N``,
    with a warning unless ``warn`` is False, when ``num`` is more)."""
    n_cal = min(num, len(data.x_train))
    if num > n_cal and warn:
        logger.warning("--num-calibration=%d is more than the %d training samples of %s: calibrating on all %d",
                       num, n_cal, data.name, n_cal)
    index = np.random.default_rng(seed).choice(len(data.x_train), n_cal, replace=False)
    return data.x_train[np.sort(index)]


def prepare(config: ModelConfig | None = None, *, cache: bool = True, data: Dataset | None = None,
            reporter: Reporter | None = None, download: bool = False, **options) -> Experiment:
    """Load, train (or load the cached model) and draw the calibration set.

    Args:
        config: the settings; or pass them as keywords (``prepare(dataset="mnist", seed=1)``).
        cache: load/store the trained model under the cache folder (``$QANNEALQ_CACHE``).
        data: the dataset already loaded (e.g. by an earlier ``prepare`` with another seed), else loaded here.
        reporter: where training shows its progress bar (default: the log, no bar).
        download: fetch the dataset from its canonical location when it is found nowhere (SHA-256 checked).
        **options: fields of :class:`~qannealq.config.ModelConfig`, when ``config`` is None (or to override).

    Raises:
        InvalidArgumentError: a bad option (before any loading or training).
    """
    config = ModelConfig(**options) if config is None else (replace(config, **options) if options else config)
    base = recipe(config.dataset, config.input_size)
    used = Recipe(config.hidden or base.hidden, config.epochs or base.epochs, base.lr, base.batch_size, base.threads)
    if data is None:
        data = load_dataset(config.dataset, config.data_dir, config.input_size, download=download)
    model = train_mlp(data, used.hidden, used.epochs, lr=used.lr, batch_size=used.batch_size, seed=config.seed,
                      cache=cache, reporter=reporter, threads=used.threads)
    float_acc = accuracy(model, data.x_test, data.y_test)
    calib = calibration_draw(data, config.num_calibration, config.seed)
    logger.info("%s: MLP %s, float accuracy %.4f, %d calibration samples", data.name,
                [data.num_inputs, *used.hidden, data.num_classes], float_acc, len(calib))
    return Experiment(config, used, data, model, float_acc, calib)


def calibrate(experiment: Experiment, layers: Sequence[str] | None = None,
              batch_size: int = 256) -> dict[str, LayerStats]:
    """Float statistics (``H``, ``g``, ``c``) of every Linear layer (or those named), in forward order."""
    x = as_calibration_tensor(experiment.calibration)
    names = linear_layers(experiment.model, x, layers)
    return collect_stats(experiment.model, experiment.model, names, x, batch_size)


def reusable_stats(experiment: Experiment, calibration: str, objective: Objective,
                   stats: dict[str, LayerStats] | None = None) -> dict[str, LayerStats]:
    """The float statistics a :func:`qannealq.pipeline.quantize_model` call can reuse (``float_stats=``), once
    for every bit width and method: every layer's with ``calibration="float"``, only the first layer's with
    ``"sequential"`` (its inputs are still the float network's), weighted by ``objective`` where it says so.
    ``stats``: every layer's float statistics when the caller already has them."""
    first = None if calibration == "float" else experiment.layer_names()[:1]
    if stats is None:
        stats = calibrate(experiment, first)
    elif first is not None:
        stats = {name: stats[name] for name in first}
    return with_weighted_stats(experiment.model, experiment.calibration, objective, stats)


def formulate(experiment: Experiment, bits: int, granularity: str = "tensor", int1: str = "sign",
              stats: dict[str, LayerStats] | None = None) -> list[LayerProblem]:
    """The layer problems of every Linear layer on a ``bits`` grid, float calibration, in forward order.

    Args:
        experiment: from :func:`prepare`.
        bits: 1..8.
        granularity, int1: grid options (see :func:`qannealq.grid.make_grid`).
        stats: float statistics from :func:`calibrate` (computed here when None).
    """
    check_bits(bits)
    stats = calibrate(experiment) if stats is None else stats
    modules = dict(experiment.model.named_modules())
    return [formulate_layer(modules[name], layer_stats, bits, granularity, int1, name)
            for name, layer_stats in stats.items()]


def formulate_grids(experiment: Experiment, bits: int, granularity: str, int1: str,
                    stats: dict[str, LayerStats] | None = None) -> list[LayerProblem]:
    """:func:`formulate` on each grid a quantization with ``granularity`` solves: its own, or both under
    ``best``, each problem then named with its grid (``0 tensor``), as a QPU plan lists them."""
    if granularity != "best":
        return formulate(experiment, bits, granularity, int1, stats)
    stats = calibrate(experiment) if stats is None else stats
    return [replace(problem, name=f"{problem.name} {grid}") for grid in GRANULARITIES
            for problem in formulate(experiment, bits, grid, int1, stats)]
