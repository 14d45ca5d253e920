"""The compiled kernels' random numbers: one xorshift64* generator per row (numba), so that a row's draws
depend on its seed alone, not on which thread runs it (``layer-sa``'s anneal)."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["uniform"]

_MULT = np.uint64(0x2545F4914F6CDD1D)


@numba.njit(cache=True, inline="always")
def uniform(state: np.ndarray, r: int) -> float:
    """The next draw in ``[0, 1)`` of row ``r``'s generator ``state[r]`` (nonzero; advanced in place)."""
    x = state[r]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[r] = x
    return float((x * _MULT) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
