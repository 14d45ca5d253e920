"""Compiled annealing kernel of the ``layer-sa`` backend (numba), shared by all neurons of a layer.

Every row ``r`` of the state is one read of one neuron ``i = owner[r]``. With the shared symmetric matrix
``M`` (zero diagonal is *not* required), the per-neuron steps ``d_i`` and linear coefficients ``a_i``, a row's
energy is ``E(v) = e_i + Σ_j a_ij v_j + Σ_{j≠l} d_ij d_il M_jl v_j v_l``; for a layer ``M = H`` and this is
exactly the BQM of ARCHITECTURE.md §1 (``b_jl = 2 d_j d_l H_jl``). The kernel keeps each row's field
``G_r = M (d_i ∘ v_r)`` (initialised by one GEMM outside), so flipping ``j`` costs

    ΔE = (1 − 2 v_j) (a_ij + 2 d_ij (G_rj − M_jj d_ij v_j)),     and on acceptance  G_r += ±d_ij M_j,:

one row of the shared matrix per accepted flip, never a per-neuron matrix. Each row has its own
xorshift64* generator seeded from the call's seed, so results do not depend on the thread schedule.
"""

from __future__ import annotations

import numba
import numpy as np

from ._layer_dense import MAX_EXPONENT

__all__ = ["anneal_rows"]

_MULT = np.uint64(0x2545F4914F6CDD1D)


@numba.njit(cache=True, inline="always")
def _uniform(state: np.ndarray, r: int) -> float:
    x = state[r]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[r] = x
    return float((x * _MULT) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True, inline="always")
def _flip(r, j, v, u, g, mat, d):
    delta = d if v[r, j] == 0 else -d
    v[r, j] = 1 - v[r, j]
    u[r, j] += delta
    row = mat[j]
    gr = g[r]
    for k in range(gr.shape[0]):
        gr[k] += delta * row[k]


@numba.njit(cache=True, inline="always")
def _flip_pair(r, j, l, v, u, g, mat, d_j, d_l):
    """Flip ``j`` and ``l`` together: one pass over the field instead of two."""
    delta_j = d_j if v[r, j] == 0 else -d_j
    delta_l = d_l if v[r, l] == 0 else -d_l
    v[r, j] = 1 - v[r, j]
    v[r, l] = 1 - v[r, l]
    u[r, j] += delta_j
    u[r, l] += delta_l
    row_j = mat[j]
    row_l = mat[l]
    gr = g[r]
    for k in range(gr.shape[0]):
        gr[k] += delta_j * row_j[k] + delta_l * row_l[k]


@numba.njit(cache=True, inline="always")
def _delta(r, i, j, v, u, g, diag, lin, steps):
    d = steps[i, j]
    field = lin[i, j] + 2.0 * d * (g[r, j] - diag[j] * u[r, j])
    return field if v[r, j] == 0 else -field


@numba.njit(cache=True, inline="always")
def _accept(de, beta, tol, state, r):
    """Metropolis test; with ``beta = inf`` only moves improving by more than ``tol`` pass."""
    if beta == np.inf:
        return de < -tol
    if de <= 0.0:
        return True
    x = beta * de
    return x < MAX_EXPONENT and _uniform(state, r) < np.exp(-x)


@numba.njit(cache=True)
def _sweep(r, i, cols, free, nbr, coup, v, u, g, mat, diag, lin, steps, beta, tol, state):
    """One Metropolis sweep over ``cols``: a single flip of ``j``, then pair flips of ``j`` with its partners.

    A pair flip changes the energy by ``ΔE_j + ΔE_l + 2 M_jl δ_j δ_l`` (``δ = ±d``, the value changes): it
    moves along strongly coupled directions that single flips cross only uphill.

    Returns:
        ``(total ΔE, number of accepted moves)``.
    """
    total = 0.0
    moves = 0
    for j in cols:
        de_j = _delta(r, i, j, v, u, g, diag, lin, steps)
        if _accept(de_j, beta, tol, state, r):
            _flip(r, j, v, u, g, mat, steps[i, j])
            total += de_j
            moves += 1
            de_j = -de_j
        for k in range(nbr.shape[1]):
            l = nbr[j, k]
            if l < 0 or not free[i, l]:
                continue
            dj = steps[i, j] if v[r, j] == 0 else -steps[i, j]
            dl = steps[i, l] if v[r, l] == 0 else -steps[i, l]
            de = de_j + _delta(r, i, l, v, u, g, diag, lin, steps) + 2.0 * coup[j, k] * dj * dl
            if _accept(de, beta, tol, state, r):
                _flip_pair(r, j, l, v, u, g, mat, steps[i, j], steps[i, l])
                total += de
                moves += 1
                de_j = _delta(r, i, j, v, u, g, diag, lin, steps)
    return total, moves


@numba.njit(cache=True)
def _polish(r, i, cols, free, nbr, coup, v, u, g, mat, diag, lin, steps, tol, state, max_sweeps):
    """Greedy sweeps (single and pair flips improving by more than ``tol``) until none; returns the ΔE."""
    total = 0.0
    for _ in range(max_sweeps):
        de, moves = _sweep(r, i, cols, free, nbr, coup, v, u, g, mat, diag, lin, steps, np.inf, tol, state)
        total += de
        if moves == 0:
            break
    return total


@numba.njit(cache=True, nogil=True)
def anneal_rows(mat, diag, lin, steps, free, nbr, coup, indptr, indices, owner, v, u, g, betas, tol,
                seeds, polish_sweeps, best_v, row_start, row_stop):
    """Anneal rows ``row_start:row_stop`` in place; write the best state seen per row into ``best_v``.

    Releases the GIL: callers run disjoint row ranges in threads (each row has its own generator, so the
    result does not depend on how rows are split).

    Args:
        mat: shared matrix ``M`` ``(m, m)`` float64, symmetric.
        lin: linear coefficients ``a`` ``(n, m)``; steps: ``d`` ``(n, m)``; free: ``(n, m)`` bool.
        nbr: ``(m, K)`` partner coordinates for pair flips (``-1`` = none).
        indptr, indices: CSR lists of each neuron's free coordinates (only these are ever flipped).
        owner: neuron of every row ``(R,)``.
        v: binary states ``(R, m)`` uint8; u: ``d ∘ v`` float64; g: ``u @ M`` float64 (all updated in place).
        betas: inverse temperature of every row's sweeps ``(R, S)``.
        tol: per row, the least energy decrease a greedy move must bring (guards against rounding cycles).
        seeds: one nonzero uint64 per row.
        polish_sweeps: cap on the greedy sweeps before and after the anneal.
        best_v: output ``(R, m)`` uint8.
        row_start, row_stop: the rows to process.
    """
    state = seeds
    best_delta = np.zeros(v.shape[0])
    for r in range(row_start, row_stop):
        i = owner[r]
        cols = indices[indptr[i]:indptr[i + 1]]
        energy = _polish(r, i, cols, free, nbr, coup, v, u, g, mat, diag, lin, steps, tol[r], state, polish_sweeps)
        best_delta[r] = min(energy, 0.0)
        best_v[r] = v[r]
        for s in range(betas.shape[1]):
            de, _ = _sweep(r, i, cols, free, nbr, coup, v, u, g, mat, diag, lin, steps, betas[r, s],
                           tol[r], state)
            energy += de
            if energy < best_delta[r]:
                best_delta[r] = energy
                best_v[r] = v[r]
        if betas.shape[1] > 0:
            energy += _polish(r, i, cols, free, nbr, coup, v, u, g, mat, diag, lin, steps, tol[r], state, polish_sweeps)
            if energy < best_delta[r]:
                best_delta[r] = energy
                best_v[r] = v[r]
