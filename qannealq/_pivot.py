"""The pivoted Cholesky factorization behind GPTQ's ``pivot`` order, compiled (numba), with LAPACK's layout.

:func:`qannealq.baselines._pivot_factor` calls :func:`pivoted_cholesky` once. It is LAPACK's blocked pivoted
Cholesky (``?pstrf``, lower storage) with the opposite pivot rule: the smallest remaining diagonal. The matrix is
held as LAPACK holds it, column-major with ``L`` overwriting the lower triangle, which in this C-order array is
its upper triangle: ``a[c, r]`` is ``A(r, c)`` for ``r >= c``, so every column of ``L`` and of the Schur
complement is a contiguous row of ``a``. Within a block of ``block`` pivots each pivot is chosen on the exact
Schur complement (the diagonal updated column by column), and its column is the trailing column less the block's
earlier columns (a sum of contiguous rows, vectorized); after the block one BLAS ``dsyrk`` updates the trailing
triangle in place, on its own storage (scipy's BLAS called from compiled code, :mod:`qannealq._lapack`: no
temporary, half the flops of a full product, the GIL released). The swaps of a pivot touch the Schur complement
and the block's own columns of ``L``; the earlier columns' rows are permuted once at the end, from each block's
pivots.

Before this kernel the in-block steps were compiled but the trailing updates were numpy products on a row-major
lower triangle (a temporary per update, and over the whole trailing block below 1024 rows):
``benchmarks/gptq_speed.py`` times both side by side (docs/layer-sa.md). The factor agrees to rounding.
"""

from __future__ import annotations

import numba
import numpy as np

from qannealq._lapack import syrk_update

__all__ = ["pivoted_cholesky"]


@numba.njit(cache=True, nogil=True)
def pivoted_cholesky(a: np.ndarray, pivots: np.ndarray, block: int) -> int:
    """Factors the symmetric ``a`` ``(m, m)`` (C-contiguous; its upper triangle is read) in place: ``P A Pᵀ =
    L Lᵀ`` with each pivot the smallest remaining diagonal of the Schur complement, ties to the lowest input
    index in ``pivots`` (position -> input, permuted alongside).

    On return ``a``'s upper triangle holds ``Lᵀ`` (``a[c, r] = L[r, c]``) and its strict lower triangle zeros:
    ``a.T`` is ``L``, column-major.

    Returns:
        -1 when all pivots are placed, else the position whose pivot is not positive (``H`` singular).
    """
    m = a.shape[0]
    diagonal = np.empty(m)
    for r in range(m):
        diagonal[r] = a[r, r]
    blocks = (m + block - 1) // block
    kept = np.empty((blocks, m), np.int64)  # the pivots at each block's end, for the earlier columns' rows
    for q in range(blocks):
        start, stop = q * block, min((q + 1) * block, m)
        for t in range(start, stop):
            k = t
            for s in range(t + 1, m):
                if diagonal[s] < diagonal[k] or (diagonal[s] == diagonal[k] and pivots[s] < pivots[k]):
                    k = s
            if k != t:  # LAPACK's ?pstrf swaps, on the Schur complement and the block's columns of L
                for y in range(k + 1, m):
                    a[t, y], a[k, y] = a[k, y], a[t, y]
                for x in range(t + 1, k):
                    a[t, x], a[x, k] = a[x, k], a[t, x]
                a[t, t], a[k, k] = a[k, k], a[t, t]
                for c in range(start, t):
                    a[c, t], a[c, k] = a[c, k], a[c, t]
                diagonal[t], diagonal[k] = diagonal[k], diagonal[t]
                pivots[t], pivots[k] = pivots[k], pivots[t]
            column = a[t]
            c = start  # less the block's earlier columns (the trailing update has the others), four at a time
            while c + 4 <= t:
                w0, w1, w2, w3 = a[c, t], a[c + 1, t], a[c + 2, t], a[c + 3, t]
                e0, e1, e2, e3 = a[c], a[c + 1], a[c + 2], a[c + 3]
                for r in range(t, m):
                    column[r] -= (w0 * e0[r] + w1 * e1[r]) + (w2 * e2[r] + w3 * e3[r])
                c += 4
            while c < t:
                weight, earlier = a[c, t], a[c]
                for r in range(t, m):
                    column[r] -= weight * earlier[r]
                c += 1
            head = column[t]
            if not head > 0.0:
                return t
            scale = np.sqrt(head)
            column[t] = scale
            for r in range(t + 1, m):
                value = column[r] / scale
                column[r] = value
                diagonal[r] -= value * value
        kept[q] = pivots
        if stop < m:
            syrk_update(a, start, stop)
    # the rows of each block's columns below it, into the final order (their swaps after the block were not done)
    where = np.empty(m, np.int64)
    row = np.empty(m)
    for q in range(blocks - 1):
        start, stop = q * block, min((q + 1) * block, m)
        for s in range(stop, m):
            where[kept[q, s]] = s
        for c in range(start, stop):
            for s in range(stop, m):
                row[s] = a[c, where[pivots[s]]]
            for s in range(stop, m):
                a[c, s] = row[s]
    for r in range(m):
        for c in range(r):
            a[r, c] = 0.0
    return -1
