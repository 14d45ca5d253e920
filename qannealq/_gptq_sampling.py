"""Randomized GPTQ-restricted passes (compiled, numba): many diverse floor/ceil roundings from one factor.

:func:`sample_passes` runs ``k`` passes of GPTQ restricted to floor/ceil over every neuron of a layer that
shares one ``H`` and one factor ``U`` (the upper Cholesky factor of the damped ``H⁻¹`` in the passes' input
order), all ``k · n`` rows at once: the in-block sweep of each row in a compiled kernel (rows in parallel
threads, the GIL released), the lazy update of the inputs after a block as one float32 matrix product. A pass
differs from GPTQ in one place: each input is rounded to ``floor(x + 1/2 + η)``, ``x`` its error-corrected
position on the integer axis and ``η`` uniform on ``[-noise, noise]`` (drawn from the row's own xorshift64*
generator, seeded from ``seed`` and the row), then clipped to the input's floor/ceil. So near-ties go either
way, and every pass compensates its own choices downstream as GPTQ does: it is Klein's randomized
nearest-plane sampler (Babai's rounding with random ties), on the box of the QUBO.

Each row's energy comes from the pass itself, without a matrix product: with ``d = q − w`` (``w`` the float
weights, dead inputs zero) and ``e_j`` the error GPTQ spreads at input ``j`` (``w_j − q_j`` scaled by
``1 / U_jj``), ``w − q = Uᵀ e``, so ``dᵀ (H + λI) d = Σ e_j²`` (``U (H + λI) Uᵀ = I``) and

    E(q) = E(w) + Σ_j e_j² − λ Σ_j d_j² + 2 Σ_j d_j (H w − c)_j

over the live inputs (``λ`` the damping, ``c`` the layer's cross term). The kernel accumulates the three sums
per row (the ``score``, ``E(q) − E(w)``); with float32 updates it is within about 1e-6 of the QUBO energy
(relative) at 2-4 bits and 1e-5 at 8 bits, where the error is smallest against the weights: enough to choose
the best pass per neuron.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from qannealq._rng import uniform as _uniform

__all__ = ["sample_passes"]


@numba.njit(cache=True, nogil=True)
def _pass_block(w, w0, steps, lo, free, offset, u, inv_diag, grad, lam, noise, a, b, state, v, errs, score, rows):
    """Inputs ``a .. b − 1`` of the passes ``rows``: round each (randomized, clipped to floor/ceil), record
    the binary choice in ``v``, its spread error in ``errs`` and its share of the score, and update the block's
    later inputs of the row (the inputs after the block are updated by the caller, one product for all rows).

    Row ``r`` is pass ``r // n`` over neuron ``r % n`` (``n = w0.shape[0]``), with noise ``noise[r // n]``.
    """
    n = w0.shape[0]
    for r in rows:
        i = r % n
        width = noise[r // n]
        wr = w[r]
        total = 0.0
        for j in range(a, b):
            step = steps[i, j]
            if step == 0.0:  # a dead input (or a zero step): fixed at its floor, decoupled from the others
                v[r, j] = 0
                errs[r, j - a] = 0.0
                continue
            x = wr[j] / step - offset
            z = np.floor(x + 0.5 + width * (2.0 * _uniform(state, r) - 1.0)) if width > 0.0 else np.floor(x + 0.5)
            z = min(max(z, lo[i, j]), lo[i, j] + free[i, j])
            v[r, j] = np.uint8(z - lo[i, j])
            value = step * (z + offset)
            e = (wr[j] - value) * inv_diag[j]
            d = value - w0[i, j]
            total += e * e - lam * d * d + 2.0 * d * grad[i, j]
            errs[r, j - a] = e
            ef = wr.dtype.type(e)
            uj = u[j]
            for t in range(j + 1, b):
                wr[t] -= ef * uj[t]
        score[r] += total


def sample_passes(weights: np.ndarray, steps: np.ndarray, base: np.ndarray, free: np.ndarray, offset: float,
                  dead: np.ndarray, factor: np.ndarray, damp: float, grad: np.ndarray, noise: np.ndarray,
                  seed: int, block: int = 64, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``len(noise)`` randomized GPTQ-restricted passes over ``n`` neurons that share ``factor``, all arrays in
    the passes' input order.

    Args:
        weights: float weights ``(n, m)``; steps: grid steps ``(n, m)``; base: floor integers ``(n, m)``;
            free: which inputs may round up ``(n, m)``; offset: the grid's offset; dead: dead inputs ``(m,)``.
        factor: upper Cholesky factor ``U`` of the damped ``H⁻¹`` ``(m, m)``; damp: the damping ``λ`` added
            to ``H``'s diagonal.
        grad: ``H w − c`` ``(n, m)`` (``w`` the weights with dead inputs zero).
        noise: half-width of each pass's rounding noise ``(k,)`` (0: that pass is GPTQ-restricted's rounding,
            up to float32 arithmetic).
        seed: seeds every row's generator (the result does not depend on ``threads``).
        block: inputs per lazy update.
        threads: threads of the compiled sweeps (default: the CPU count).

    Returns:
        ``(v, score)``: binary choices ``(k, n, m)`` uint8 (1 = ceil) and ``E(q) − E(w)`` per pass ``(k, n)``.
    """
    n, m = weights.shape
    noise = np.ascontiguousarray(noise, dtype=np.float64)
    k = noise.size
    rows = k * n
    w0 = np.ascontiguousarray(np.where(dead, 0.0, weights), dtype=np.float64)
    stp = np.ascontiguousarray(np.where(dead, 0.0, steps), dtype=np.float64)
    w = np.ascontiguousarray(np.tile(w0, (k, 1)), dtype=np.float32)
    lo = np.ascontiguousarray(base, dtype=np.float64)
    up = np.ascontiguousarray(free & ~dead, dtype=np.float64)
    u = np.ascontiguousarray(factor, dtype=np.float32)
    inv_diag = 1.0 / np.diag(factor).astype(np.float64)
    g = np.ascontiguousarray(grad, dtype=np.float64)
    state = np.random.SeedSequence(int(seed)).generate_state(rows, np.uint64) | np.uint64(1)
    v = np.zeros((rows, m), np.uint8)
    score = np.zeros(rows)
    workers = max(1, int(threads or os.cpu_count() or 1))
    chunks = [c for c in np.array_split(np.arange(rows), 4 * workers) if c.size]
    with ThreadPoolExecutor(workers) as pool:
        for a in range(0, m, block):
            b = min(a + block, m)
            errs = np.zeros((rows, b - a), np.float32)
            args = (w, w0, stp, lo, up, float(offset), u, inv_diag, g, float(damp), noise, a, b, state, v, errs,
                    score)
            list(pool.map(lambda part: _pass_block(*args, part), chunks))
            if b < m:
                w[:, b:] -= errs @ u[a:b, b:]
    return v.reshape(k, n, m), score.reshape(k, n)
