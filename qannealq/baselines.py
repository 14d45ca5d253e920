"""Baselines on the same grid and objective as the QUBO: RTN, GPTQ and GPTQ restricted to floor/ceil.

GPTQ (Frantar et al., 2023) quantizes one coordinate at a time and spreads the rounding error over the
not-yet-quantized coordinates with the upper Cholesky factor of ``H⁻¹`` (damped by ``percdamp`` times the
mean diagonal, as in the GPTQ paper), in blocks with lazy batch updates. Its floor/ceil-restricted variant
chooses, for each free coordinate, between the clipped floor ``k`` and ``k + 1`` of the *original* weight,
so it is a valid QUBO assignment (and a strong warm start).

``act_order`` (``gptq-act``, ``gptq-restricted-act``) quantizes the inputs in order of decreasing ``H_jj``
(the GPTQ reference code's ``--act-order``, AutoGPTQ's ``desc_act``) instead of index order: the inputs
with the most signal are rounded first, while the most others are left to absorb their error. On the first
layers of ``benchmarks/frontier.py`` it lowers GPTQ's error above the best-known QUBO optimum from 51 to
38 % (MNIST int4) and from 852 to 359 % (CIFAR-10 int2), GPTQ-restricted's from 65 to 48 % and from 1053
to 703 % (the README's frontier table), so ``gptq-restricted-act`` is the default warm start
(:data:`DEFAULT_WARM_START`). On per-neuron ``H_i`` (the relu-aware objective) each neuron has its own order.
"""

from __future__ import annotations

import numpy as np
import torch

from qannealq.errors import InvalidArgumentError
from qannealq.formulation import LayerProblem, submatrix

__all__ = ["rtn", "gptq", "gptq_restricted", "gptq_act", "gptq_restricted_act", "BASELINES",
           "DEFAULT_WARM_START", "warm_start_integers"]


def rtn(problem: LayerProblem) -> np.ndarray:
    """Round-to-nearest grid integers ``(n, m)``."""
    return problem.grid.nearest(problem.weights, problem.steps)


#: Bytes of stacked per-neuron factors GPTQ holds at once on per-neuron ``H_i`` (rows advance together).
_CHUNK_BYTES = 2 ** 28


def _inverse_cholesky(hessian: np.ndarray, dead: np.ndarray, percdamp: float) -> np.ndarray:
    """Upper Cholesky factor of the damped inverse Hessian (dead inputs given a unit diagonal)."""
    h = hessian.copy()
    h[dead, dead] = 1.0
    damp = percdamp * float(np.mean(np.diag(h)))
    h[np.diag_indices_from(h)] += damp
    lower = np.linalg.cholesky(h)
    inv_lower = np.linalg.solve(lower, np.eye(h.shape[0]))
    hinv = inv_lower.T @ inv_lower
    return np.linalg.cholesky(hinv).T


def _gptq(problem: LayerProblem, restricted: bool, percdamp: float, block_size: int,
          act_order: bool = False) -> np.ndarray:
    if not percdamp >= 0:
        raise InvalidArgumentError(f"percdamp={percdamp!r} must be >= 0 (GPTQ uses 0.01)")
    n, m = problem.weights.shape
    if problem.per_neuron:  # one H_i per neuron (qannealq.weighted): each row on its own Cholesky factor (of
        # its own act order), rows in chunks of stacked factors: _CHUNK_BYTES, or an eighth of a smaller limit
        limit = getattr(getattr(problem.stats, "objective", None), "memory_limit", None)
        chunk = max(1, min(_CHUNK_BYTES, limit // 8 if limit else _CHUNK_BYTES) // (8 * m * m))
        return np.concatenate([_gptq_neurons(problem, np.arange(a, min(a + chunk, n)), restricted, percdamp,
                                             block_size, act_order) for a in range(0, n, chunk)])
    if not act_order:
        u = _inverse_cholesky(problem.hessian, problem.dead, percdamp)
        return _gptq_rows(problem, np.broadcast_to(np.arange(m), (n, m)), u, problem.dead, restricted, block_size)
    order = np.argsort(-np.diag(problem.hessian), kind="stable")
    u = _inverse_cholesky(submatrix(problem.hessian, order), problem.dead[order], percdamp)
    ints = _gptq_rows(problem, np.broadcast_to(order, (n, m)), u, problem.dead[order], restricted, block_size)
    return ints[:, np.argsort(order)]


def _gptq_neurons(problem: LayerProblem, rows: np.ndarray, restricted: bool, percdamp: float, block_size: int,
                  act_order: bool) -> np.ndarray:
    """GPTQ of the neurons ``rows`` of a per-neuron problem, each in its own order (its ``H_i``'s decreasing
    diagonal under ``act_order``)."""
    n, m = problem.weights.shape
    orders = np.empty((rows.size, m), np.int64)
    factors = np.empty((rows.size, m, m))
    for r, i in enumerate(rows):
        order, factors[r] = _neuron_factor(problem, i, percdamp, act_order)
        orders[r] = order
    dead = np.take_along_axis(problem.dead[rows], orders, axis=1)
    ints = _gptq_rows(problem, orders, factors, dead, restricted, block_size, rows)
    out = np.empty_like(ints)
    np.put_along_axis(out, orders, ints, axis=1)
    return out


def _reversed_inverse_cholesky(hessian: np.ndarray, dead: np.ndarray, percdamp: float) -> np.ndarray:
    """:func:`_inverse_cholesky` in 2m³/3 flops instead of ~5m³ (it runs once per neuron on per-neuron ``H_i``).

    With ``J`` the order reversal and ``J H J = L Lᵀ``, ``H = R Rᵀ`` with ``R = J L J`` upper, so
    ``H⁻¹ = R⁻ᵀ R⁻¹`` and the upper Cholesky factor of ``H⁻¹`` is ``R⁻¹ = J L⁻¹ J``: one Cholesky, one
    triangular inverse, over the live coordinates only (a dead one is decoupled: its factor is diagonal).
    """
    damp = percdamp * float(np.mean(np.where(dead, 1.0, np.diag(hessian))))
    live = np.flatnonzero(~dead)[::-1]
    h = submatrix(hessian, live) + damp * np.eye(live.size)
    lower = torch.linalg.cholesky(torch.from_numpy(h))
    inverse = torch.linalg.solve_triangular(lower, torch.eye(live.size, dtype=lower.dtype), upper=False).numpy()
    u = np.diag(np.full(hessian.shape[0], 1.0 / np.sqrt(1.0 + damp)))
    u[np.ix_(live, live)] = inverse
    return u


def _neuron_factor(problem: LayerProblem, i: int, percdamp: float, act_order: bool) -> tuple[np.ndarray, np.ndarray]:
    """Neuron ``i``'s input order (decreasing ``diag(H_i)`` under ``act_order``, else index order) and the
    factor of its ``H_i`` in that order, kept beside the ``H_i`` when memory allows (the same for every bit
    width: it depends on ``H_i`` and ``percdamp`` only)."""
    def form() -> tuple[np.ndarray, np.ndarray]:
        hessian = problem.neuron_hessian(i)
        m = hessian.shape[0]
        if not act_order:
            return np.arange(m), _reversed_inverse_cholesky(hessian, problem.dead[i], percdamp)
        order = np.argsort(-np.diag(hessian), kind="stable")
        return order, _reversed_inverse_cholesky(submatrix(hessian, order), problem.dead[i][order], percdamp)
    return problem.stats.kept(("gptq-act" if act_order else "gptq", percdamp), i, form)


def _gptq_rows(problem: LayerProblem, orders: np.ndarray, u: np.ndarray, dead: np.ndarray, restricted: bool,
               block_size: int, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """GPTQ of the neurons ``rows``, each row's inputs taken in its order (``orders`` ``(r, m)``): on the
    inverse Cholesky factor ``u`` ``(m, m)`` and ``dead`` inputs ``(m,)`` they share, or on one factor and mask
    per row (``u`` ``(r, m, m)``, ``dead`` ``(r, m)``), all rows advancing position by position together. The
    integers come back in the rows' orders."""
    grid = problem.grid

    def ordered(a: np.ndarray) -> np.ndarray:  # row-major: the in-block row updates ran 5x slower column-major
        return np.ascontiguousarray(np.take_along_axis(a[rows], orders, axis=1))
    steps = ordered(problem.steps)
    own = u.ndim == 3
    w = np.where(dead, 0.0, ordered(problem.weights))
    lo = ordered(problem.base)
    hi = lo + ordered(problem.free)
    ints = np.empty_like(lo)
    m = w.shape[1]
    for start in range(0, m, block_size):
        stop = min(start + block_size, m)
        errs = np.zeros((w.shape[0], stop - start))
        for j in range(start, stop):
            col = w[:, j]
            if restricted:
                z = np.clip(np.floor(grid.scaled(col, steps[:, j]) + 0.5), lo[:, j], hi[:, j]).astype(np.int64)
            else:
                z = grid.nearest(col, steps[:, j])
            ints[:, j] = z
            if own:
                err = (col - grid.dequantize(z, steps[:, j])) / u[:, j, j]
                w[:, j + 1:stop] -= err[:, None] * u[:, j, j + 1:stop]
            else:
                err = (col - grid.dequantize(z, steps[:, j])) / u[j, j]
                w[:, j + 1:stop] -= np.outer(err, u[j, j + 1:stop])
            errs[:, j - start] = err
        if own:
            w[:, stop:] -= (errs[:, None, :] @ u[:, start:stop, stop:])[:, 0]
        else:
            w[:, stop:] -= errs @ u[start:stop, stop:]
    return np.where(dead, lo, ints)


def gptq(problem: LayerProblem, percdamp: float = 0.01, block_size: int = 128, act_order: bool = False) -> np.ndarray:
    """GPTQ grid integers ``(n, m)`` (nearest level of the error-corrected weight); ``act_order``: inputs in
    order of decreasing ``H_jj`` (see the module docstring)."""
    return _gptq(problem, False, percdamp, block_size, act_order)


def gptq_restricted(problem: LayerProblem, percdamp: float = 0.01, block_size: int = 128,
                    act_order: bool = False) -> np.ndarray:
    """GPTQ restricted to each coordinate's floor/ceil: a valid QUBO assignment, as integers ``(n, m)``."""
    return _gptq(problem, True, percdamp, block_size, act_order)


def gptq_act(problem: LayerProblem) -> np.ndarray:
    """``gptq-act``: :func:`gptq` with ``act_order=True``."""
    return gptq(problem, act_order=True)


def gptq_restricted_act(problem: LayerProblem) -> np.ndarray:
    """``gptq-restricted-act``: :func:`gptq_restricted` with ``act_order=True`` (a method and a warm start)."""
    return gptq_restricted(problem, act_order=True)


BASELINES = {"rtn": rtn, "gptq": gptq, "gptq-restricted": gptq_restricted, "gptq-act": gptq_act,
             "gptq-restricted-act": gptq_restricted_act}

#: The warm start of every sampler that takes one, unless told otherwise: GPTQ-restricted in act order, which
#: starts ``layer-sa``'s default anneal closer to the best known (the README's frontier table).
DEFAULT_WARM_START = "gptq-restricted-act"

#: The baselines whose integers are each coordinate's floor or ceil already (valid QUBO states as they are).
_RESTRICTED = ("gptq-restricted", "gptq-restricted-act")


def warm_start_integers(problem: LayerProblem, name: str = DEFAULT_WARM_START) -> np.ndarray:
    """Grid integers ``(n, m)`` of baseline ``name`` restricted to each coordinate's floor/ceil: a valid QUBO
    state, the warm start the solve loop (and ``layer-sa`` without ``initial_states``) starts from."""
    ints = BASELINES[name](problem)
    return ints if name in _RESTRICTED else problem.restrict(ints)
