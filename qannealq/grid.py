"""Quantization grids: integer ranges and steps for weights and biases (int1 ... int8).

A grid maps an integer ``z`` in ``[lo, hi]`` to the value ``step * (z + offset)``.

* ``"paper"`` scheme (arXiv 2510.16075, every width): symmetric, ``step = max|w| / 2**(bits-1)`` and
  ``z`` in ``[-2**(bits-1), 2**(bits-1) - 1]``, ``offset = 0``. At int1 its levels are ``{-max|w|, 0}``.
* ``"sign"`` scheme for int1 (the default at int1): two levels ``±alpha`` with ``alpha = mean|w|`` (the
  least-squares scale of sign quantization, as in XNOR-Net); stored as ``z`` in ``[-1, 0]``,
  ``offset = 0.5`` and ``step = 2 * alpha``.

Granularity ``"tensor"`` uses one weight step per layer, ``"channel"`` one per output neuron (row).
The bias (the last coordinate of the augmented row ``[W_i, b_i]``) is rounded on a grid with the same bits
and scheme whose step comes from the bias vector of the whole layer (``max|b| / 2**(bits-1)``, or
``2 * mean|b|`` for the sign scheme; an all-zero vector or row gets levels of zero there,
:data:`ZERO_SIGN_STEP`); a per-neuron bias step would be degenerate (every bias exactly at a
level), so the bias step is per tensor under both granularities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qannealq._defaults import GRANULARITIES, GRANULARITY_CHOICES, INT1_SCHEMES
from qannealq.errors import InvalidArgumentError, NonFiniteError

__all__ = ["Grid", "make_grid", "held_grid", "check_bits", "GRANULARITIES", "GRANULARITY_CHOICES", "INT1_SCHEMES"]

ZERO_SIGN_STEP = 2.0 ** -40
"""The sign scheme's step for an all-zero row or bias vector: levels of ±4.5e-13, zero to float32 rounding next to
any weight, whose square (a BQM coefficient's factor) is still a normal float32."""


def check_bits(bits: object) -> int:
    """Return ``bits`` as an int in 1..8 or raise a clear error."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= int(bits) <= 8:
        raise InvalidArgumentError(
            f"bits={bits!r} is not supported: use an integer from 1 to 8 (int1 ... int8)"
        )
    return int(bits)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidArgumentError(f"{name}={value!r} is not one of {', '.join(allowed)}")


@dataclass(frozen=True)
class Grid:
    """An integer grid for the augmented rows ``[W_i, b_i]`` of one layer.

    Attributes:
        bits: bit width, 1..8.
        lo: smallest integer.
        hi: largest integer.
        offset: level value is ``step * (z + offset)``.
        weight_step: per-row weight step, shape ``(n,)`` (all equal for per-tensor grids).
        bias_step: the bias step (per tensor), or ``None`` for a layer without bias.
        scheme: ``"paper"`` or ``"sign"``.
        granularity: ``"tensor"`` or ``"channel"``.
    """

    bits: int
    lo: int
    hi: int
    offset: float
    weight_step: np.ndarray
    bias_step: float | None
    scheme: str
    granularity: str

    @property
    def num_levels(self) -> int:
        return self.hi - self.lo + 1

    def steps(self, num_inputs: int) -> np.ndarray:
        """The step of every coordinate, shape ``(n, num_inputs + has_bias)``."""
        n = self.weight_step.shape[0]
        cols = [np.broadcast_to(self.weight_step[:, None], (n, num_inputs))]
        if self.bias_step is not None:
            cols.append(np.full((n, 1), self.bias_step))
        return np.ascontiguousarray(np.concatenate(cols, axis=1), dtype=np.float64)

    def scaled(self, values: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """``values / steps - offset``: the real-valued position on the integer axis."""
        return values / steps - self.offset

    def nearest(self, values: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Round to the nearest level (halves up: floor(t + 0.5), -2.5 -> -2), clipped to range."""
        t = self.scaled(values, steps)
        return np.clip(np.floor(t + 0.5), self.lo, self.hi).astype(np.int64)

    def floor(self, values: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Floor integers ``k`` (clipped) and the mask of coordinates free to round up.

        A coordinate is fixed (not free) when its floor was clipped into range, or when ``k + 1``
        would leave the range.
        """
        raw = np.floor(self.scaled(values, steps))
        k = np.clip(raw, self.lo, self.hi)
        free = (raw == k) & (k < self.hi)
        return k.astype(np.int64), free

    def dequantize(self, integers: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Values of grid integers: ``steps * (integers + offset)``."""
        return steps * (np.asarray(integers, dtype=np.float64) + self.offset)


def _step(values: np.ndarray, bits: int, scheme: str, axis: int | None) -> np.ndarray:
    mags = np.abs(values)
    if scheme == "sign":
        step = 2.0 * (mags.mean(axis=axis) if mags.size else np.float64(0.0))
    else:
        step = (mags.max(axis=axis) if mags.size else np.float64(0.0)) / 2.0 ** (bits - 1)
    step = np.asarray(step, dtype=np.float64)
    # An all-zero row or tensor: under "paper" any positive step represents it exactly (0 is a level, or the
    # nearest one); the sign scheme's levels are ±step/2, with no 0, so its step is one whose levels are 0 to
    # rounding (a step of 1 made a zero bias ±0.5, whatever the layer's scale).
    return np.where(step > 0, step, 1.0 if scheme == "paper" else ZERO_SIGN_STEP)


def make_grid(
    weight: np.ndarray,
    bias: np.ndarray | None,
    bits: int,
    granularity: str = "tensor",
    int1: str = "sign",
) -> Grid:
    """Build the grid of a layer from its float weights.

    Args:
        weight: ``(n, f)`` float weights.
        bias: ``(n,)`` float bias or ``None``.
        bits: 1..8.
        granularity: ``"tensor"`` (one weight step, the paper's) or ``"channel"`` (one per row).
        int1: scheme at ``bits == 1``: ``"sign"`` (±alpha, default) or ``"paper"`` ({-max|w|, 0}).

    Returns:
        The grid.
    """
    bits = check_bits(bits)
    _check_choice("granularity", granularity, GRANULARITIES)
    _check_choice("int1", int1, INT1_SCHEMES)
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim != 2:
        raise InvalidArgumentError(f"weight must be 2-D (n, f), got shape {weight.shape}")
    if not np.all(np.isfinite(weight)):
        raise NonFiniteError("weight contains NaN or infinity: fix or retrain the model before quantizing")
    if bias is not None:
        bias = np.asarray(bias, dtype=np.float64)
        if bias.shape != (weight.shape[0],):
            raise InvalidArgumentError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}")
        if not np.all(np.isfinite(bias)):
            raise NonFiniteError("bias contains NaN or infinity: fix or retrain the model before quantizing")
    scheme = "sign" if bits == 1 and int1 == "sign" else "paper"
    if scheme == "sign":
        lo, hi, offset = -1, 0, 0.5
    else:
        lo, hi, offset = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1, 0.0
    n = weight.shape[0]
    if granularity == "channel":
        wstep = _step(weight, bits, scheme, axis=1)
    else:
        wstep = np.full(n, float(_step(weight, bits, scheme, axis=None)))
    bstep = None if bias is None else float(_step(bias, bits, scheme, axis=None))
    return Grid(bits, lo, hi, offset, wstep, bstep, scheme, granularity)


def _odd_part(n: int) -> int:
    """``n`` without its factors of two (12: 3, 0: 0)."""
    return n // (n & -n) if n else 0


def _held_step(step: np.ndarray, ratio: int, widest: int, bits: int, smallest: float) -> np.ndarray:
    """``step`` rounded up to the least one whose units ``u = step / ratio`` are ``m 2**k`` with an odd ``m`` of at
    most ``(2**bits - 1) // widest`` and multiples of ``smallest``."""
    most = (2 ** bits - 1) // widest
    width = most.bit_length()
    unit = np.asarray(step, dtype=np.float64) / ratio
    # every such u in [2**e, 2**(e+1)) is a multiple of 2**(e + 1 - width): the least multiple >= unit, or the next
    # one where its odd part is too wide (then even, its odd part at most 2**(width-1) <= most)
    quantum = np.maximum(np.ldexp(1.0, np.frexp(unit)[1] - width), smallest)
    count = np.ceil(unit / quantum)
    count += (np.mod(count, 2) == 1) & (count > most)
    return count * quantum * ratio


def held_grid(grid: Grid, weight_bits: int, bias_bits: int, weight_smallest: float = 0.0,
              bias_smallest: float = 0.0) -> Grid:
    """``grid`` with its steps rounded up to the least ones whose every level is a float of ``weight_bits``
    (``bias_bits``) significand bits, a multiple of ``weight_smallest`` (``bias_smallest``): levels that a model of
    that precision holds exactly (float16: 11 bits, smallest ``2**-24``; bfloat16: 8 bits, ``2**-133``).

    A level is ``u * n`` with the unit ``u = step / r`` and the integer ``n = r (z + offset)`` (``r = 2`` for the
    offset ½). With ``u = m 2**k`` (``m`` odd), ``u * n`` has the significand ``m`` times ``n``'s odd part: it fits
    ``p`` bits for every ``n`` exactly where ``m <= (2**p - 1) // w``, ``w`` the widest odd part of an ``n``
    (bfloat16 at int8: 255 // 127, ``m = 1``, a power of two; at int4: 255 // 7, ``m`` up to 35, where a bound of
    ``p - 3`` bits allowed 31 only, and steps up to 6 % coarser than needed). Rounding up, never down, keeps every
    weight that was inside the range inside it. Overflow is the caller's to check.
    """
    ratio = 1 if float(grid.offset).is_integer() else 2
    widest = max(_odd_part(abs(int(round(ratio * (z + grid.offset))))) for z in range(grid.lo, grid.hi + 1))
    if 2 ** min(weight_bits, bias_bits) <= widest:
        raise InvalidArgumentError(f"a grid of {grid.bits} bits needs more than {min(weight_bits, bias_bits)} "
                                   "significand bits: quantize a float32 copy of the model")
    weight_step = _held_step(grid.weight_step, ratio, widest, weight_bits, weight_smallest)
    bias_step = None if grid.bias_step is None else float(_held_step(grid.bias_step, ratio, widest, bias_bits,
                                                                     bias_smallest))
    return Grid(grid.bits, grid.lo, grid.hi, grid.offset, weight_step, bias_step, grid.scheme, grid.granularity)
