"""The product ``q H`` of rows ``q`` near rows whose product is known: the known product plus each changed
entry's change times its row of ``H`` (compiled, numba).

:meth:`qannealq.formulation.LayerProblem.errors` forms a solution's errors this way where it differs from a
remembered result (the warm start's, whose product the problem keeps) in few entries: after a polish or a short
search most neurons keep most of their start. On MNIST's first layer under 5 GPTQ times the solution differs from
its warm start in about 0.5 % of its entries; its product took 1.8-1.9 ms of the layer's 48 (on the one BLAS
thread a narrow layer's solve runs on), formed from the start's in 0.26-0.3 ms (with the comparison and the copy),
the same to rounding (within 7e-16 of the largest entry).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["products_near", "add_rows", "load"]


@numba.njit(cache=True, nogil=True)
def _add_rows(out: np.ndarray, hessian: np.ndarray, rows: np.ndarray, cols: np.ndarray, delta: np.ndarray) -> None:
    """``out[rows[t]] += delta[t] · hessian[cols[t]]`` for every ``t``, in order."""
    m = hessian.shape[1]
    for t in range(rows.size):
        target, source, d = out[rows[t]], hessian[cols[t]], delta[t]
        for s in range(m):
            target[s] += d * source[s]


def products_near(values: np.ndarray, known: np.ndarray, known_products: np.ndarray, hessian: np.ndarray,
                  rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``values @ hessian`` ``(k, m)`` from ``known @ hessian`` (``known_products``), where ``values`` and
    ``known`` differ only at the entries ``(rows, cols)`` (``np.nonzero`` of their difference)."""
    out = np.array(known_products, dtype=np.float64, order="C")
    add_rows(out, hessian, rows, cols, values[rows, cols] - known[rows, cols])
    return out


def add_rows(out: np.ndarray, hessian: np.ndarray, rows: np.ndarray, cols: np.ndarray, delta: np.ndarray) -> None:
    """``out[rows[t]] += delta[t] · hessian[cols[t]]`` for every ``t``, in place (``out``: C-ordered float64):
    a product's rows moved by changed entries, :func:`products_near`'s, and ``layer-sa``'s fields of rows near
    known ones (:meth:`qannealq.backends._layer_run._Run.start_near`)."""
    _add_rows(out, np.ascontiguousarray(hessian, dtype=np.float64), rows.astype(np.int64), cols.astype(np.int64),
              np.ascontiguousarray(delta, dtype=np.float64))


def load() -> None:
    """Call the compiled loop once on no rows, with the types of :func:`products_near`'s calls: a warm-up
    (:func:`qannealq.solve.warm_up`) loads it before a layer's clock starts, whether or not its stand-in's solve
    ended near a remembered result."""
    empty = np.zeros((1, 1))
    products_near(empty, empty, empty, empty, np.zeros(0, np.int64), np.zeros(0, np.int64))
