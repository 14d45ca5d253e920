"""scipy's BLAS and LAPACK routines called from compiled code (numba): the GIL released, no copies.

scipy's Python wrappers of LAPACK (``scipy.linalg.lapack.dtrtri``, ``dpotrf``) hold the GIL while they run, so two
factorizations in threads side by side took as long as one after the other (two triangular inverses of 3073 × 3073,
the size of CIFAR-10's first layer: 0.46 s against 0.25 s for one; compiled here, 0.26 s). These kernels call the
same routines (``scipy.linalg.cython_blas`` / ``cython_lapack``: the same results, bit for bit) from numba, with
the GIL released; they also work on a matrix's own storage with its leading dimension, where the Python wrappers
copy a strided block.

Each routine is bound by a symbol name, not a ctypes pointer, so that numba caches the kernels that call it
(the name is bound again in each process, here at import). Every matrix is a C-contiguous ``(m, m)`` array
``a`` read column-major, as LAPACK reads it: its column-major view is ``a.T``, so LAPACK's lower triangle is
``a``'s upper triangle.
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import types
from numba.extending import get_cython_function_address

__all__ = ["cholesky_lower", "invert_lower", "syrk_update"]


def _bind(module: str, name: str, arguments: int) -> types.ExternalFunction:
    symbol = f"qannealq_{module}_{name}"
    llvm.add_symbol(symbol, get_cython_function_address(f"scipy.linalg.{module}", name))
    return types.ExternalFunction(symbol, types.void(*([types.voidptr] * arguments)))


_dsyrk = _bind("cython_blas", "dsyrk", 10)
_dpotrf = _bind("cython_lapack", "dpotrf", 5)
_dtrtri = _bind("cython_lapack", "dtrtri", 6)


@numba.njit(cache=True, nogil=True)
def syrk_update(a: np.ndarray, start: int, stop: int) -> None:
    """``A(stop:, stop:) −= P Pᵀ`` on the lower triangle of the column-major ``A`` (``a.T``), with ``P =
    A(stop:, start:stop)``: BLAS ``dsyrk('L', 'N')`` on ``a``'s own storage (leading dimension m)."""
    m = a.shape[0]
    flat = a.reshape(m * m)
    chars = np.array([ord("L"), ord("N")], np.uint8)
    ints = np.array([m - stop, stop - start, m], np.int32)
    scalars = np.array([-1.0, 1.0])
    _dsyrk(chars[0:].ctypes, chars[1:].ctypes, ints[0:].ctypes, ints[1:].ctypes, scalars[0:].ctypes,
           flat[start * m + stop:].ctypes, ints[2:].ctypes, scalars[1:].ctypes, flat[stop * m + stop:].ctypes,
           ints[2:].ctypes)


@numba.njit(cache=True, nogil=True)
def cholesky_lower(a: np.ndarray) -> int:
    """LAPACK ``dpotrf('L')`` in place on the symmetric ``a`` (its column-major view is ``a`` itself): ``L`` in
    the lower triangle of ``a.T``; the other triangle is left as it was. Returns LAPACK's ``info`` (0: done)."""
    m = a.shape[0]
    chars = np.array([ord("L")], np.uint8)
    ints = np.array([m, max(m, 1), 0], np.int32)
    _dpotrf(chars.ctypes, ints[0:].ctypes, a.ctypes, ints[1:].ctypes, ints[2:].ctypes)
    return ints[2]


@numba.njit(cache=True, nogil=True)
def invert_lower(a: np.ndarray) -> int:
    """LAPACK ``dtrtri('L', 'N')`` in place: the lower triangle of ``a.T``, ``L``, becomes ``L⁻¹``; the other
    triangle is left as it was. Returns LAPACK's ``info`` (0: done; ``k`` > 0: ``L[k − 1, k − 1]`` is zero)."""
    m = a.shape[0]
    chars = np.array([ord("L"), ord("N")], np.uint8)
    ints = np.array([m, max(m, 1), 0], np.int32)
    _dtrtri(chars[0:].ctypes, chars[1:].ctypes, ints[0:].ctypes, a.ctypes, ints[1:].ctypes, ints[2:].ctypes)
    return ints[2]
