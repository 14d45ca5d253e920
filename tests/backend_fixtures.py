"""Real neuron BQMs of the tiny digits model (4x4 inputs, 16 hidden), shared by the backend tests.

Plain cached functions; the model and its calibration draw come from :mod:`qannealq.experiment`, exactly as
``qannealq run --dataset digits --input-size 4`` makes them. Fixtures live in ``conftest.py``.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import dimod
import numpy as np

from qannealq.experiment import Experiment, formulate, prepare
from qannealq.formulation import LayerProblem

__all__ = ["tiny_digits", "digits_layer", "digits_neurons", "optimum", "mock_qpu", "FAKE_TOKEN"]

FAKE_TOKEN = "DEV-fake0token0never0to0leak-8c1d2e"


@lru_cache(maxsize=None)
def tiny_digits() -> Experiment:
    """The tiny classroom experiment: digits pooled to 4x4, MLP 16-16-10, seed 0, 1024 calibration images."""
    return prepare(dataset="digits", input_size=4, seed=0)


@lru_cache(maxsize=None)
def digits_layer(bits: int) -> LayerProblem:
    """The first layer (16 -> 16) of the tiny digits model on a ``bits`` grid, float calibration."""
    problem = formulate(tiny_digits(), bits)[0]
    return replace(problem, name=f"fc1-int{bits}")


def digits_neurons(max_variables: int, count: int = 3, bits: tuple[int, ...] = (1, 2, 3, 4),
                   min_variables: int = 2) -> list[dimod.BinaryQuadraticModel]:
    """Up to ``count`` distinct neuron BQMs with ``min_variables..max_variables`` variables."""
    found = []
    for b in bits:
        problem = digits_layer(b)
        sizes = problem.free.sum(axis=1)
        for i in np.argsort(-sizes, kind="stable"):
            if min_variables <= sizes[i] <= max_variables:
                found.append(problem.neuron_bqm(int(i)))
            if len(found) == count:
                return found
    return found


def optimum(bqm: dimod.BinaryQuadraticModel) -> float:
    """Lowest energy of a small BQM, by dimod's brute force."""
    return float(dimod.ExactSolver().sample(bqm).first.energy)


@lru_cache(maxsize=None)
def mock_qpu():
    """One shared ``dwave-mock`` sampler (building the P16 graph and its clique cache takes ~2 s)."""
    from qannealq.backends import get_sampler

    return get_sampler("dwave-mock")
