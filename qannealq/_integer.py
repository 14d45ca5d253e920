"""Integer arithmetic of one quantized ``nn.Linear``: int8 weights, int32 accumulation, one rescale.

:class:`QuantizedLayer` holds a layer's grid integers and grid; :func:`integer_linear` is its forward pass
(the scheme is described in :mod:`qannealq.model_export`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qannealq.errors import InvalidArgumentError
from qannealq.grid import Grid

__all__ = ["QuantizedLayer", "integer_linear"]

_INT32_MAX = 2 ** 31 - 1


@dataclass(frozen=True)
class QuantizedLayer:
    """One quantized ``nn.Linear``: its grid integers and grid.

    Attributes:
        name: the module's name in the Sequential (``"0"``, ``"2"``...).
        integers: grid integers ``z`` ``(n, f + has_bias)``, int8.
        grid: bits, range, offset, steps.
        in_features: ``f``.
    """

    name: str
    integers: np.ndarray
    grid: Grid
    in_features: int

    @property
    def has_bias(self) -> bool:
        return self.grid.bias_step is not None

    @property
    def values(self) -> np.ndarray:
        """Dequantized augmented rows ``step * (z + offset)`` (float64), as the solve loop computed them."""
        return self.grid.dequantize(self.integers, self.grid.steps(self.in_features))

    @property
    def ratio(self) -> int:
        """``r``: 2 when the offset is ½ (integers ``2 (z + offset)``), else 1."""
        return 1 if float(self.grid.offset).is_integer() else 2

    @property
    def weight_integers(self) -> np.ndarray:
        """Integer weights ``(z + offset) * r``, int8, ``(n, f)``."""
        ints = (self.integers[:, :self.in_features].astype(np.int64) + self.grid.offset) * self.ratio
        return ints.astype(np.int8)

    @property
    def bias_integers(self) -> np.ndarray | None:
        if not self.has_bias:
            return None
        return ((self.integers[:, -1].astype(np.int64) + self.grid.offset) * self.ratio).astype(np.int8)

    @property
    def weight_scale(self) -> np.ndarray:
        """Per-row scale of :attr:`weight_integers` (``step / r``), ``(n,)``."""
        return self.grid.weight_step / self.ratio

    @property
    def bias_scale(self) -> float | None:
        return None if self.grid.bias_step is None else self.grid.bias_step / self.ratio

    @property
    def activation_bits(self) -> int:
        """The widest input width ``a`` (2..16) whose int32 accumulation cannot overflow for this layer."""
        worst = int(np.abs(self.weight_integers.astype(np.int64)).sum(axis=1).max(initial=1))
        for bits in range(16, 1, -1):
            if worst * (2 ** (bits - 1) - 1) <= _INT32_MAX:
                return bits
        raise InvalidArgumentError(f"layer {self.name}: {self.in_features} inputs are too many for an int32 "
                                   "accumulation of int8 weights; use the float model")


def integer_linear(layer: QuantizedLayer, x: np.ndarray, exact_inputs: bool = True) -> np.ndarray:
    """int32 accumulations of per-sample quantized inputs and int8 weights, one rescale, float bias.

    ``exact_inputs``: inputs as ``2p``-bit integers (``p = a - 1``) split into two ``p``-bit halves, each
    accumulated in int32 and combined exactly in int64; else one ``a``-bit pass.

    Each row is first scaled by a power of two (exact) to a largest magnitude in ``[0.5, 1)``, and the logits
    scaled back at the end: ``max|x| / Q`` of a row of tiny values (below ~1e-306) was a subnormal scale that
    held few bits, or zero, and ``x / s`` put integers past ``Q`` or infinities into the int32 sums.

    ``x`` of another dtype (float16, float32, integers) is first cast to float64, which holds each of its values
    exactly: in float16 the scale ``max|x| / Q`` (about ``2**-29``) was zero, and the logits garbage.
    """
    x = np.asarray(x, dtype=np.float64)
    bits = layer.activation_bits
    half = bits - 1
    qmax = 2 ** (2 * half - 1) - 1 if exact_inputs else 2 ** (bits - 1) - 1
    _, exponent = np.frexp(np.abs(x).max(axis=1, initial=0.0))
    x = np.ldexp(x, -exponent[:, None])
    amax = np.abs(x).max(axis=1, initial=0.0)
    scale = np.where(amax > 0, amax / qmax, 1.0)
    xq = np.rint(x / scale[:, None]).astype(np.int64)
    w = layer.weight_integers.astype(np.int32).T
    if exact_inputs:
        high = np.floor_divide(xq, 2 ** half)
        low = xq - high * 2 ** half  # in [0, 2**half)
        acc = (high.astype(np.int32) @ w).astype(np.int64) * 2 ** half + (low.astype(np.int32) @ w)
    else:
        acc = xq.astype(np.int32) @ w  # int32 accumulation: no overflow by activation_bits
    y = np.ldexp(acc * (scale[:, None] * layer.weight_scale[None, :]), exponent[:, None])
    return y if not layer.has_bias else y + layer.values[:, -1]
