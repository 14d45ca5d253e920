"""The compiled ranking of a dense matrix's couplings for ``layer-sa``'s partner lists
(:func:`._layer_dense.ranked_partners`); below every other layer module (it imports none of them)."""

from __future__ import annotations

import numba

__all__ = ["strongest_rows"]


@numba.njit(cache=True, nogil=True)
def strongest_rows(mat, scale, part, value, lo, hi):
    """Rows ``lo:hi`` of :func:`._layer_dense.ranked_partners`: each coordinate's ``k = part.shape[1]`` largest
    ``|M_jl| / (s_j s_l)`` over ``l ≠ j``, strongest first, ties to the lower index (one pass over the row,
    an insertion into the ``k`` kept)."""
    m, k = mat.shape[0], part.shape[1]
    for j in range(lo, hi):
        kept = 0
        for col in range(m):
            if col == j:
                continue
            s = abs(mat[j, col]) / (scale[j] * scale[col])
            if kept == k and not s > value[j, k - 1]:
                continue
            p = kept if kept < k else k - 1  # the slot it takes before moving up past weaker ones
            while p > 0 and s > value[j, p - 1]:
                value[j, p], part[j, p] = value[j, p - 1], part[j, p - 1]
                p -= 1
            value[j, p], part[j, p] = s, col
            if kept < k:
                kept += 1
