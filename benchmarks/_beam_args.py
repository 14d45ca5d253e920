"""The beam search's arguments on some neurons of a layer, in an input order: shared by the beam benchmarks
(``beam_schedule.py``, ``beam_order.py``, ``beam_pairs.py``)."""

from __future__ import annotations

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np

from qannealq import baselines
from qannealq.formulation import LayerProblem


def beam_arguments(problem: LayerProblem, rows: np.ndarray, perm: np.ndarray, factor: np.ndarray,
                   percdamp: float) -> tuple:
    """:func:`qannealq._gptq_beam.beam_search`'s arguments before ``width`` for the neurons ``rows`` in the input
    order ``perm`` with its factor ``factor`` (``U`` of the damped ``H⁻¹`` in that order), damped by
    ``percdamp``."""
    dead = problem.dead
    grad = (problem.products(np.where(dead, 0.0, problem.weights)) - problem.stats.cross)[rows][:, perm]
    return (problem.weights[rows][:, perm], problem.steps[rows][:, perm], problem.base[rows][:, perm],
            problem.free[rows][:, perm], float(problem.grid.offset), dead[perm], factor,
            baselines._damping(problem.hessian, dead, percdamp), grad)


def float_floor(problem: LayerProblem, rows: np.ndarray) -> float:
    """``E(w)`` summed over the neurons ``rows`` (the float weights, dead inputs zero): the beam's scores are
    energies above it."""
    return float(problem.errors(np.where(problem.dead, 0.0, problem.weights))[rows].sum())
