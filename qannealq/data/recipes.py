"""The per-dataset training recipes (hidden sizes, epochs, learning rate, batch size, threads): below
:mod:`qannealq.config`, which reads them to tell a resume's ``--hidden 16`` from the recipe's own 16, and
:mod:`qannealq.experiment`, which trains by them (and re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Recipe", "RECIPES", "TINY_RECIPE", "recipe"]


@dataclass(frozen=True)
class Recipe:
    """How a dataset's MLP is trained: hidden sizes, epochs, Adam's learning rate, batch size, and the torch
    threads training runs under (the thread count changes torch's summation order, hence the network: fixed
    here, a seed trains the same network on any machine of the same instruction set)."""

    hidden: tuple[int, ...]
    epochs: int
    lr: float
    batch_size: int
    threads: int = 1


RECIPES: dict[str, Recipe] = {
    "digits": Recipe((32,), 60, 1e-2, 64),
    "mnist": Recipe((128,), 3, 1e-3, 128),
    "fashion-mnist": Recipe((128,), 5, 1e-3, 128),
    "emnist-letters": Recipe((256,), 5, 1e-3, 128),
    "cifar10": Recipe((512,), 10, 1e-3, 128, threads=2),  # the network of the README's CIFAR-10 figures
    **{f"emnist-{split}": Recipe((256,), 5, 1e-3, 128)
       for split in ("balanced", "byclass", "bymerge", "digits", "mnist")},
}
TINY_RECIPE = Recipe((16,), 60, 1e-2, 64)
"""Digits pooled to 4x4 or less: the 16-16-10 classroom model, at most 17 variables per neuron, so every
backend (qaoa and exact included) can quantize the whole network."""


def recipe(dataset: str, input_size: int | None = None) -> Recipe:
    """The training recipe of ``dataset`` (the tiny model for digits at ``input_size <= 4``)."""
    if dataset == "digits" and input_size is not None and input_size <= 4:
        return TINY_RECIPE
    if dataset not in RECIPES:
        raise KeyError(dataset)
    return RECIPES[dataset]
