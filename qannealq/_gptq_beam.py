"""GPTQ as a beam search (compiled, numba): the ``width`` best floor/ceil roundings of every neuron at once.

GPTQ restricted to floor/ceil rounds one input at a time, in the order of its factor ``U`` (the upper Cholesky
factor of the damped ``H⁻¹``), and spreads each rounding error over the inputs not yet rounded. That is
Babai's nearest-plane decoder of the QUBO's box, and the QUBO energy splits over its steps: with ``d = q − w``
(``w`` the float weights, dead inputs zero) and ``e_j`` the error spread at input ``j`` (``w_j − q_j`` scaled by
``1 / U_jj``), ``w − q = Uᵀ e``, so ``dᵀ (H + λI) d = Σ e_j²`` (``U (H + λI) Uᵀ = I``) and

    E(q) = E(w) + Σ_j (e_j² − λ d_j² + 2 d_j (H w − c)_j)

over the live inputs (``λ`` the damping, ``c`` the layer's cross term). Once input ``j`` is rounded its term
is fixed, so every prefix of roundings has an exact partial energy. :func:`beam_search` keeps, per neuron, the
``width`` prefixes of lowest partial energy (the K-best or M-algorithm of sphere decoding in MIMO detection):
at each input every kept prefix branches into floor and ceil and the ``width`` lowest of the ``2 · width``
children survive, each carrying its own error-corrected positions of the inputs left. Width 1 is GPTQ-restricted
with each rounding chosen by its exact energy term instead of the nearest integer; a width of ``2^m`` keeps every
assignment of ``m`` free inputs, so it returns the optimum. On MNIST's first layer (785 inputs, int4) a width
of 64 started 0.6 % above the best energy long anneals had found before it, where GPTQ-restricted starts 31 %
above it and the best of 16 randomized GPTQ passes 28 % (docs/layer-sa.md).

The work is organised as GPTQ's: inputs in blocks of ``block``; within a block a kernel per neuron branches,
selects and updates the block's later inputs of each survivor, which shares its parent's row until a second
child of the same parent needs a copy; each row keeps the survivor's errors at the inputs done, and each
survivor its ancestor among those that entered the block. A block's positions are the float weights less the
products of the errors before it with ``U``'s block columns, and the survivors' paths soon merge: looking back
from any input, every survivor descends from one ancestor a few blocks earlier (on MNIST's and CIFAR-10's first
layers at a width of 128, a median 123 and 141 inputs back, 198 and 247 at the 90th percentile). So each neuron
keeps a trunk, the errors its survivors share, and each survivor only its errors since the trunk; the block's
positions are one product of the trunks' errors for the group of neurons and one per neuron of its survivors'
own, and the trunk moves on to the latest block boundary where the survivors' lineages meet. Updating every
survivor's positions of all the inputs left after each block, as GPTQ does its one row, cost ``width`` times
GPTQ's products: 2.5x the time of the trunk's search on CIFAR-10's first layer at a width of 128 (3073 inputs,
one thread), 1.15x on MNIST's (785; 1.43x with the one-pass bookkeeping of the selection, docs/layer-sa.md).
Back-pointers, one per input and survivor, give every neuron's best assignment at the end. Neurons go in groups
of :data:`GROUP` through every block, the groups in parallel threads, each group's whole loop over the blocks
compiled (:func:`_group_search`: its products call BLAS from compiled code, the GIL released throughout). Its
bookkeeping between the kernels in Python held the GIL: on MNIST's first layer (int4, 2 threads) a beam of 1
took 26-31 ms where it now takes 8-10, of 32 67-73 -> 43-62 ms; on CIFAR-10's of 64 2.6-2.8 -> 2.0-2.1 s
(docs/layer-sa.md). Memory per group in flight: its back-pointers (int16 below a width of 16384) and its
survivors' errors since their trunks (at most ``width · m`` float32 per neuron, where the survivors never share
a trunk); the groups in flight at once are as many as :data:`MEMORY_BYTES` holds, at least one.

Where the beam is full, two free inputs of a block make one step (``pairs``, the default): every survivor's four
grandchildren are priced exactly and the ``width`` lowest of the ``4 · width`` survive, so one selection, one
pass of bookkeeping and one rank-2 update serve both inputs. The survivors after the first input are then the
ancestors of those kept after the second, not the ``width`` best of its children: another search than the K-best
of one input a step (``pairs=False``), whose states differ. On MNIST's and CIFAR-10's first layers it ends as
close to the best known at each width (within the searches' spread) in 0.8-0.95 of the time
(``benchmarks/beam_pairs.py``, docs/layer-sa.md).

A beam may also change its width from block to block (``growth``, :func:`beam_widths`). Measured on MNIST's first
layer (``benchmarks/beam_schedule.py``), neither a beam that widens along the order nor one that narrows starts
closer to the best known than a constant width for the same time.

The kernels' copy and update loops run over row slices from index 0: indexed from a variable start, numba's
wraparound of negative indices keeps LLVM from vectorizing them, and the search took 1.7x as long.

The beam needs no inverse either (``form="cholesky"``): with ``R = U⁻¹`` (upper triangular, ``R Rᵀ`` the damped
``H`` in the beam's order; ``J L J`` of the pivoted Cholesky factor ``L``), the position of input ``j`` is ``w_j``
less ``Σ_{s<j} (q_s − w_s) R_sj / R_jj`` and its term ``R_jj² (x_j − q_j)²``: the same positions and terms, the
rows of ``R`` over their columns' diagonals in place of ``U``'s and the raw errors ``q − w`` in place of the scaled
ones (:func:`_beam_block`'s ``raw``), in the same time. Under a time limit the warm start's beams read it, so
the triangular inverse, 3-4 ms of the 10 before the beam on MNIST's first layer under 5 GPTQ times, is formed
only where GPTQ's own start asks for it (:class:`qannealq.baselines._LiveFactor`). Its float32 scores are as
close to the energies as ``U``'s (within 5e-7 relative on the first layers of the MNIST, Fashion-MNIST and
EMNIST-letters MLPs at a width of 36, 2e-5 on CIFAR-10's, rank-deficient, at a damping of 0.1 %).

GPTQ itself (width 1, each rounding to the nearest level) needs no inverse: :func:`nearest_plane_path` runs it
on the Cholesky factor of the damped ``H`` in pivot order (the baselines' ``gptq-pivot`` forms and ``layer-sa``'s
start without a beam), with the integers of :func:`gptq_path` on ``U``.

Deterministic: no random draws, and each product covers a fixed group of neurons (:data:`GROUP`) whatever the
thread count, so the result does not depend on ``threads``.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from qannealq import _pool
from qannealq._deadline import Deadline
from qannealq._pool import beam_thread_count, blas_threads
from qannealq.errors import InvalidArgumentError

__all__ = ["beam_search", "beam_widths", "check_growth", "gptq_path", "nearest_plane_path", "GROUP"]

#: Neurons per kernel call and matrix product (a fixed grouping: the result does not depend on the threads).
GROUP = 8
#: The first width at which a beam under a deadline times its first group (:func:`_waves`), and the factor by
#: which each later probe, and each wave, may widen on the widest timed before it.
PROBE_WIDTH = 8
PROBE_GROWTH = 8
#: Where a beam under a deadline times its first group at one width only, the share of that time its model of a
#: group's time (``a + b · width``, :func:`_waves`) takes as fixed, whatever the width (``a``). A group's time has
#: a large part that does not grow with the width (its trunk's products, each input's pricing and update of
#: ``U``'s row): in solves under a limit, two groups side by side, MNIST's first layer's groups took 0.75-0.82 ms
#: plus 0.066-0.073 ms a width (0.56-0.61 of the time at 8 fixed), CIFAR-10's 5.4-5.7 ms plus 0.15-0.16 ms a
#: width (0.81-0.82). Modelled through the origin (0, the rule until 2026-12-04), a lone probe at 8 over-predicted
#: a width of 40 about twice: the groups after it widened along the run as their measured times corrected the
#: level (widths of 16-18 first, 40-48 last, on MNIST's first layer under 5 GPTQ times), and after a slow group
#: ever narrower groups looked ever slower for their width (down to 1 in about one run in twelve). With 0.6 the
#: widths stay nearly even, and the default ended 8.11 % above the best known against 8.70 % (median of 40 runs
#: each, alternating; docs/layer-sa.md, "The probe's fixed share").
PROBE_FIXED = 0.6
#: The memory the groups in flight may hold at once, at their worst (back-pointers and errors since the trunks
#: of :data:`GROUP` neurons each): fewer threads than cores where a group needs more (at least one group runs).
MEMORY_BYTES = 1 << 30


@numba.njit(cache=True, nogil=True)
def _kth(values: np.ndarray, scratch: np.ndarray, k: int) -> float:
    """The ``k``-th smallest (0-based) of ``values``: quickselect on ``scratch`` with branch-free partitions
    (median-of-three pivots; where other elements equal the pivot, they split off in a second pass, so ties and
    infinities end it), then an insertion sort of the last few. Twice as fast as a branching quickselect on
    the beam's 2 x 64 children; the second pass only where needed, 1.6x as fast again on 2 x 128."""
    size = values.size
    for t in range(size):
        scratch[t] = values[t]
    lo, hi = 0, size
    while hi - lo > 16:
        mid = (lo + hi) // 2
        a, b, c = scratch[lo], scratch[mid], scratch[hi - 1]
        pivot = max(min(a, b), min(max(a, b), c))
        below, same = lo, 0
        for t in range(lo, hi):  # [lo, below) < pivot <= [below, t]
            x = scratch[t]
            scratch[t] = scratch[below]
            scratch[below] = x
            below += x < pivot
            same += x == pivot
        if k < below:
            hi = below
            continue
        if k == below:  # the least of the rest is the pivot
            return pivot
        if same == 1:  # the pivot alone equals itself: the rest without it (it is there, the least) goes on
            lo = below
            continue
        equal = below
        for t in range(below, hi):  # [below, equal) == pivot < [equal, t]
            x = scratch[t]
            scratch[t] = scratch[equal]
            scratch[equal] = x
            equal += x <= pivot
        if k < equal:
            return pivot
        lo = equal
    for t in range(lo + 1, hi):
        x = scratch[t]
        s = t - 1
        while s >= lo and scratch[s] > x:
            scratch[s + 1] = scratch[s]
            s -= 1
        scratch[s + 1] = x
    return scratch[k]


@numba.njit(cache=True, nogil=True, inline="always")
def _count_le(values: np.ndarray, g: float) -> int:
    """How many of ``values`` are ``<= g`` (one branch-free pass that LLVM vectorizes)."""
    c = 0
    for t in range(values.size):
        c += np.int64(values[t] <= g)
    return c


@numba.njit(cache=True, nogil=True)
def _bounds(values: np.ndarray) -> tuple[float, float, float]:
    """The least and the largest of ``values`` and the largest of the lower of each pair ``values[2 p],
    values[2 p + 1]`` (``p < size // 2``: a pair's lower value is at most that, so at least ``size // 2`` values
    are), in one pass, two accumulators each (one chain of compares made the beam's selection slower than the
    counting it starts)."""
    a0 = a1 = np.inf
    b0 = b1 = c0 = c1 = -np.inf
    n = values.size
    for p in range(0, n // 2 - 1, 2):
        x0, y0, x1, y1 = values[2 * p], values[2 * p + 1], values[2 * p + 2], values[2 * p + 3]
        low0, high0 = (x0, y0) if x0 < y0 else (y0, x0)
        low1, high1 = (x1, y1) if x1 < y1 else (y1, x1)
        a0 = low0 if low0 < a0 else a0
        a1 = low1 if low1 < a1 else a1
        b0 = high0 if high0 > b0 else b0
        b1 = high1 if high1 > b1 else b1
        c0 = low0 if low0 > c0 else c0
        c1 = low1 if low1 > c1 else c1
    for p in range(n // 2 - n // 2 % 2, n // 2):
        x0, y0 = values[2 * p], values[2 * p + 1]
        low0, high0 = (x0, y0) if x0 < y0 else (y0, x0)
        a0 = low0 if low0 < a0 else a0
        b0 = high0 if high0 > b0 else b0
        c0 = low0 if low0 > c0 else c0
    if n % 2:
        x0 = values[n - 1]
        a0 = x0 if x0 < a0 else a0
        b0 = x0 if x0 > b0 else b0
    return min(a0, a1), max(b0, b1), max(c0, c1)


#: :func:`_cut` reads the k-th smallest off the values left in its interval once this few are left there (16 until
#: 2026-12-05: with the early end of :func:`_cut_below`, 4-8 took 3-5 % fewer cycles a beam's step than 16).
ENDGAME = 6


@numba.njit(cache=True, nogil=True)
def _cut(values: np.ndarray, scratch: np.ndarray, k: int) -> float:
    """A cut ``g`` of finite ``values`` at their ``k``-th smallest (0-based): ``g`` is that value, as :func:`_kth`
    returns it, or any value with exactly ``k + 1`` of ``values`` ``<= g`` (the same ``k + 1`` lowest: the beam
    keeps the children ``<= g``, so either cut keeps the same ones), by counting: an interval ``(lo, hi]`` holding
    the ``k``-th smallest narrows by interpolation on the counts ``<= lo`` and ``<= hi`` (each a vectorized pass),
    each cut kept within the interval's middle nine tenths (interpolation alone crept up to it from one side on the
    beam's clustered children), until ``hi`` counts exactly ``k + 1`` (it is then the cut), or :data:`ENDGAME`
    values or fewer lie in it: those are gathered and :func:`_kth` picks among them. Where ``k < size // 2`` the
    interval starts below the largest of the pairs' lower values (:func:`_bounds`), not the largest value: the
    beam's children come in pairs (a parent's floor and ceil, one of them often far above the rest) and it keeps
    half of them. Where ties leave no float to split
    the interval, or after 24 passes, :func:`_kth` takes over. On the children of MNIST's first layer's beam (a
    width of 128) about 4 passes where interpolating from the largest value took a median 8 and a quarter of
    the calls ran out of passes: the selection in 0.5 against 0.75 us, the beam 5-12 % faster (docs/layer-sa.md).
    Ending as soon as a count is ``k + 1`` (until 2026-12-05 the values left were always gathered, a scalar pass
    over all of them) took the beam's steps 9-13 % fewer cycles on MNIST's first layer at widths of 40 and 128,
    the same states."""
    least, most, pairs = _bounds(values)
    if k == 0:
        return least
    if k == values.size - 1:
        return most
    if k < values.size // 2 and pairs < most:
        return _cut_below(values, scratch, k, least, pairs, -1)
    return _cut_below(values, scratch, k, least, most, values.size)


@numba.njit(cache=True, nogil=True)
def _cut_below(values: np.ndarray, scratch: np.ndarray, k: int, least: float, hi: float, c_hi: int) -> float:
    """:func:`_cut`'s counting from a known interval: ``least`` the smallest of ``values``, ``hi`` a value with
    more than ``k`` of them ``<= hi`` and ``c_hi`` how many (-1: counted here). A pair step finds both while
    pricing its grandchildren (the least, and the largest of each survivor's least), with no pass of
    :func:`_bounds`."""
    if k == 0:
        return least
    lo, c_lo = np.nextafter(least, -np.inf), 0  # count(<= lo) <= k < count(<= hi)
    if c_hi < 0:
        c_hi = _count_le(values, hi)
    for _ in range(24):
        if c_hi == k + 1:  # exactly the k + 1 lowest at or below hi: it cuts them off
            return hi
        if c_hi - c_lo <= ENDGAME and 2 * (c_hi - c_lo) <= scratch.size:  # read it off the values in (lo, hi]
            n = 0
            for t in range(values.size):
                x = values[t]
                scratch[n] = x
                n += (x > lo) & (x <= hi)
            return _kth(scratch[:n], scratch[n:2 * n], k - c_lo)
        f = min(max((k + 0.5 - c_lo) / (c_hi - c_lo), 0.05), 0.95)
        g = lo + (hi - lo) * f
        if not lo < g < hi:  # rounding or an overflow of hi − lo: halve instead
            g = 0.5 * lo + 0.5 * hi
            if not lo < g < hi:  # tied values, or no float found between: the quickselect decides
                return _kth(values, scratch, k)
        c = _count_le(values, g)
        if c <= k:
            lo, c_lo = g, c
        else:
            hi, c_hi = g, c
    return _kth(values, scratch, k)


@numba.njit(cache=True, nogil=True, inline="always")
def _grandchildren(child_cost, lows, k, c0, c1, y0, y1, n0, n1, scale2, tn0, tn1):
    """A pair step's pricing of survivor ``k``'s four grandchildren (:func:`_beam_block`), from its children's costs
    ``c0, c1`` and input ``j + 1``'s positions ``y0, y1`` after each: their costs into ``child_cost[4 k ..]``, the
    least into ``lows[k]``; returns the four scaled errors of ``j + 1``. Inlined into both forms' loops, which LLVM
    vectorizes (one loop with the forms' branches inside was not)."""
    g00, g01 = (y0 - n0) * scale2, (y0 - n1) * scale2
    g10, g11 = (y1 - n0) * scale2, (y1 - n1) * scale2
    h00, h01 = c0 + g00 * g00 + tn0, c0 + g01 * g01 + tn1
    h10, h11 = c1 + g10 * g10 + tn0, c1 + g11 * g11 + tn1
    child_cost[4 * k], child_cost[4 * k + 1] = h00, h01
    child_cost[4 * k + 2], child_cost[4 * k + 3] = h10, h11
    low0 = h00 if h00 < h01 else h01
    low1 = h10 if h10 < h11 else h11
    lows[k] = low0 if low0 < low1 else low1
    return g00, g01, g10, g11


@numba.njit(cache=True, nogil=True)
def _beam_block(pos, w0, steps, lo, free, offset, strict, inv_diag, grad, lam, a, b, cost, back, errors, ancestor,
                first, parents, pairs, raw):
    """Inputs ``a .. b − 1`` of the neurons ``first .. first + len(pos) − 1``: branch, select and update.

    ``pos[r, k]``: survivor ``k``'s positions of neuron ``first + r`` at the block's inputs (float32), for the
    ``parents`` survivors entering the block; ``cost[r, k]``: its partial energy (inf: no survivor). The block
    keeps ``width = cost.shape[1]`` survivors (at least ``parents``: a widening beam's slots beyond them start
    empty). Writes ``back[r, (j − a) · width + k]`` (``2 · parent + bit`` of survivor ``k`` after input ``j``),
    and for each survivor at the block's end its block errors ``errors[r, k]`` and its ``ancestor[r, k]`` among
    the survivors entering the block. ``strict``: the block's strict upper triangle of ``U`` (``U[a + s, a + t]``
    for ``t > s``, zeros elsewhere), all of ``U`` the block's steps read.

    Each survivor owns a row of the block: its errors at the inputs done, its positions at the inputs left (the
    error at input ``j`` takes the place of the position it was computed from). A parent's first child keeps
    its row; a later child copies it into the row of a parent no child kept. The survivors stay in the order
    of their children's indices, so a parent's children are neighbours: the bookkeeping is one pass.

    With ``pairs``, where the beam is full (``width`` survivors at finite costs, ``width`` > 1) and inputs ``j``
    and ``j + 1`` of the block are both live and free, the two inputs are one step: every survivor's four
    grandchildren (child index ``4 · parent + 2 · bit_j + bit_j+1``) are priced exactly (``j + 1``'s position
    moved by ``j``'s error) and the ``width`` lowest of the ``4 · width`` survive, with one selection, one pass
    of bookkeeping and one rank-2 update for both inputs. Survivor ``k``'s back-pointer after ``j`` is then
    ``2 · parent + bit_j`` and after ``j + 1`` ``2 · k + bit_j+1``: its prefix through ``j`` stands as survivor
    ``k`` after ``j``, so the paths trace back as before.

    ``raw``: the factor is ``R`` over its columns' diagonals (:func:`beam_search`'s ``form="cholesky"``;
    ``inv_diag`` then ``R``'s diagonal): each step's error, which moves the later positions and is kept in the
    survivor's row, is the raw ``q − w`` of the child's level, not the position's error scaled by ``1 / U_jj``.
    """
    width = cost.shape[1]
    size = b - a
    rows = np.empty((width, size), np.float32)
    slot, new_slot = np.empty(width, np.int64), np.empty(width, np.int64)
    anc, new_anc = np.empty(width, np.int64), np.empty(width, np.int64)
    child_cost, child_err, child_err2 = np.empty(4 * width), np.empty(4 * width), np.empty(4 * width)
    scratch = np.empty(4 * width)
    pick, spare, kept = np.empty(4 * width + 1, np.int64), np.empty(width, np.int64), np.empty(width, np.int64)
    copy_from, copy_to = np.empty(width, np.int64), np.empty(width, np.int64)
    new_cost, new_err, new_err2 = np.empty(width), np.empty(width, np.float32), np.empty(width, np.float32)
    xs, ys, lows = np.empty(width, np.float32), np.empty(width, np.float32), np.empty(width)
    for r in range(pos.shape[0]):
        i = first + r
        for k in range(width):
            slot[k] = k
            anc[k] = k
            if k < parents:
                source = pos[r, k, :size]
                for t in range(size):
                    rows[k, t] = source[t]
            else:  # an empty slot (inf cost): finite rows, so that its children stay at inf
                for t in range(size):
                    rows[k, t] = 0.0
        full = True  # every survivor at a finite cost: its children are finite where the input can rise
        for k in range(width):
            full &= cost[r, k] < np.inf
        j = a
        while j < b:
            jj = j - a
            step = steps[i, j]
            if step == 0.0:  # a dead input (or a zero step): fixed at its floor, decoupled from the others
                for k in range(width):
                    back[r, jj * width + k] = 2 * k
                    rows[slot[k], jj] = 0.0
                j += 1
                continue
            v0 = step * (lo[i, j] + offset)
            v1 = v0 + step
            d0, d1 = v0 - w0[i, j], v1 - w0[i, j]
            t0 = -lam * d0 * d0 + 2.0 * d0 * grad[i, j]
            t1 = -lam * d1 * d1 + 2.0 * d1 * grad[i, j]
            can_rise = free[i, j] > 0
            scale = inv_diag[j]
            pair = (pairs and full and can_rise and width > 1 and j + 1 < b and steps[i, j + 1] != 0.0
                    and free[i, j + 1] > 0)
            if pair:  # inputs j and j + 1 in one step: each survivor's four grandchildren
                step2 = steps[i, j + 1]  # the next input's levels and energy terms
                n0 = step2 * (lo[i, j + 1] + offset)
                n1 = n0 + step2
                dn0, dn1 = n0 - w0[i, j + 1], n1 - w0[i, j + 1]
                tn0 = -lam * dn0 * dn0 + 2.0 * dn0 * grad[i, j + 1]
                tn1 = -lam * dn1 * dn1 + 2.0 * dn1 * grad[i, j + 1]
                scale2 = inv_diag[j + 1]
                u01 = strict[jj, jj + 1]
                # the survivors' positions of j and j + 1, gathered from their rows, then priced in one loop over
                # contiguous arrays that LLVM vectorizes (one loop reading the rows took about 3x as long); a loop
                # per form: one loop with the forms' branches inside was not vectorized (the beam took 47 ms
                # against 41 on MNIST's first layer at a width of 40, one thread)
                for k in range(width):
                    row = rows[slot[k]]
                    xs[k] = row[jj]
                    ys[k] = row[jj + 1]
                if raw:  # the errors j and j + 1 spread: their levels' own, the same for every survivor
                    r0, r1 = np.float32(d0), np.float32(d1)
                    for k in range(width):
                        x, y = xs[k], ys[k]
                        e0, e1 = (x - v0) * scale, (x - v1) * scale
                        c0, c1 = cost[r, k] + e0 * e0 + t0, cost[r, k] + e1 * e1 + t1
                        y0, y1 = y - r0 * u01, y - r1 * u01  # j + 1's position after j
                        _grandchildren(child_cost, lows, k, c0, c1, y0, y1, n0, n1, scale2, tn0, tn1)
                        child_err[4 * k] = child_err[4 * k + 1] = d0
                        child_err[4 * k + 2] = child_err[4 * k + 3] = d1
                        child_err2[4 * k] = child_err2[4 * k + 2] = dn0
                        child_err2[4 * k + 1] = child_err2[4 * k + 3] = dn1
                else:  # the scaled errors of the positions
                    for k in range(width):
                        x, y = xs[k], ys[k]
                        e0, e1 = (x - v0) * scale, (x - v1) * scale
                        c0, c1 = cost[r, k] + e0 * e0 + t0, cost[r, k] + e1 * e1 + t1
                        y0, y1 = y - np.float32(e0) * u01, y - np.float32(e1) * u01
                        g00, g01, g10, g11 = _grandchildren(child_cost, lows, k, c0, c1, y0, y1, n0, n1, scale2,
                                                            tn0, tn1)
                        child_err[4 * k] = child_err[4 * k + 1] = e0
                        child_err[4 * k + 2] = child_err[4 * k + 3] = e1
                        child_err2[4 * k], child_err2[4 * k + 1] = g00, g01
                        child_err2[4 * k + 2], child_err2[4 * k + 3] = g10, g11
                least, bound = np.inf, -np.inf  # the least grandchild, the largest of each survivor's least
                for k in range(width):
                    least = lows[k] if lows[k] < least else least
                    bound = lows[k] if lows[k] > bound else bound
                shift, children = 2, 4 * width
                # the width lowest of the grandchildren: at least width of them (each survivor's least) <= bound
                cut = _cut_below(child_cost[:children], scratch, width - 1, least, bound, -1)
            else:
                for k in range(width):
                    x = rows[slot[k], jj]
                    e0, e1 = (x - v0) * scale, (x - v1) * scale
                    child_cost[2 * k] = cost[r, k] + e0 * e0 + t0
                    child_err[2 * k] = d0 if raw else e0
                    child_cost[2 * k + 1] = cost[r, k] + e1 * e1 + t1 if can_rise else np.inf
                    child_err[2 * k + 1] = d1 if raw else e1
                shift, children = 1, 2 * width
                # the width lowest children, ties to the lowest index, in index order
                if can_rise and full and width > 1:  # finite children: by counting
                    cut = _cut(child_cost[:children], scratch, width - 1)
                else:  # an unfilled beam's or a fixed input's infinities
                    cut = _kth(child_cost[:children], scratch, width - 1)
            full = cut < np.inf
            count = 0
            for c in range(children):
                pick[count] = c
                count += child_cost[c] <= cut
            if count != width:  # ties at the cut (an unfilled beam's infinities): the lowest indices of them
                count = 0
                for c in range(children):
                    pick[count] = c
                    count += child_cost[c] < cut
                for c in range(children):
                    if count == width:
                        break
                    if child_cost[c] == cut:
                        pick[count] = c
                        count += 1
                pick[:width].sort()
            # the rows of parents no child kept, for later children, in the parents' order (branch-free: on the
            # beam's children a branch per survivor on its sibling mispredicted)
            for k in range(width):
                kept[k] = 0
            for k in range(width):
                kept[pick[k] >> shift] = 1
            spares = 0
            for k in range(width):
                spare[spares] = slot[k]
                spares += 1 - kept[k]
            # each survivor's row: a parent's first child keeps its row, each later one takes the last spare,
            # copied from its elder sibling's (the parent's row) before any row moves on (copies in order, then
            # updates: a spare is no parent's row here)
            pick[width] = -2  # no parent: the last survivor has no sibling after it
            copies = 0
            after = 0  # the spare a child passes on to its next sibling
            previous = -1
            for k in range(width):
                c = pick[k]
                parent = c >> shift
                own = after if parent == previous else slot[parent]
                sibling = np.int64(pick[k + 1] >> shift == parent)
                spares -= sibling
                # used only where a sibling follows; in range (a sibling takes the row of a parent without one)
                after = spare[spares]
                copy_from[copies] = own
                copy_to[copies] = after
                copies += sibling
                new_slot[k] = own
                new_anc[k] = anc[parent]
                new_cost[k] = child_cost[c]
                new_err[k] = np.float32(child_err[c] if child_cost[c] < np.inf else 0.0)
                if pair:
                    back[r, jj * width + k] = 2 * parent + ((c >> 1) & 1)
                    back[r, (jj + 1) * width + k] = 2 * k + (c & 1)
                    new_err2[k] = np.float32(child_err2[c])
                else:
                    back[r, jj * width + k] = c
                previous = parent
            for q in range(copies):
                target, source = rows[copy_to[q]], rows[copy_from[q]]
                for t in range(size):
                    target[t] = source[t]
            # the update starts at the multiple of 8 at or below the first input left, on U's rows from there
            # with zeros up to the inputs just done (whole vectors: the errors before them stay as they are, their
            # own take their places after): 5-12 % faster than from the first input left on the first layers of
            # MNIST and CIFAR-10, the same results. Those rows are the block's strict upper triangle of U
            # (``strict``, formed once per search), read in place: each neuron's step copied them before
            done = 2 if pair else 1
            s0 = (jj + done) & ~7
            uj = strict[jj, s0:size]
            if pair:
                uk = strict[jj + 1, s0:size]
                for k in range(width):
                    e, e2 = new_err[k], new_err2[k]
                    row = rows[new_slot[k]]
                    target = row[s0:]
                    for t in range(target.size):  # as two rank-1 updates, in their order
                        target[t] = (target[t] - e * uj[t]) - e2 * uk[t]
                    row[jj] = e
                    row[jj + 1] = e2
            else:
                for k in range(width):
                    e = new_err[k]
                    row = rows[new_slot[k]]
                    target = row[s0:]
                    for t in range(target.size):
                        target[t] -= e * uj[t]
                    row[jj] = e
            for k in range(width):
                cost[r, k] = new_cost[k]
                slot[k] = new_slot[k]
                anc[k] = new_anc[k]
            j += done
        for k in range(width):  # each survivor's block errors and ancestor
            source = rows[slot[k]]
            for t in range(size):
                errors[r, k, t] = source[t]
            ancestor[r, k] = anc[k]


@numba.njit(cache=True, nogil=True)
def _extend(history, lineage, errors, ancestor, cost, block):
    """One neuron's survivors after a block: each one's errors since the trunk, ``history[ancestor] + errors``,
    and its ancestors at the block boundaries since the trunk, ``lineage[ancestor] + [ancestor]`` (a survivor at
    inf cost, an empty slot: zeros and -1), both less what moves into the trunk: the blocks before the latest
    boundary at which every survivor at a finite cost descends from one survivor (they share their choices and
    errors before it). Built in one pass from that boundary on (a second copy to move the trunk took half of
    this bookkeeping's time on MNIST's first layer).

    Returns:
        ``(history, lineage, span, moved)``: the survivors' errors after the new trunk ``(width, L + size −
        span)`` and their ancestors from the boundary on, the inputs ``span`` (``block`` per boundary passed; 0:
        the trunk stays) that move into the trunk, and their errors ``moved`` ``(span,)``.
    """
    width, length, size, bounds = errors.shape[0], history.shape[1], errors.shape[1], lineage.shape[1]
    lines = np.empty((width, bounds + 1), np.int64)
    first = -1
    for k in range(width):
        if cost[k] == np.inf:
            lines[k, :] = -1
            continue
        if first < 0:
            first = k
        s = ancestor[k]
        lines[k, :bounds] = lineage[s]
        lines[k, bounds] = s
    shared = 0
    for t in range(bounds, 0, -1):
        same = True
        for k in range(width):
            if cost[k] < np.inf and lines[k, t] != lines[first, t]:
                same = False
                break
        if same:
            shared = t
            break
    span = shared * block
    out = np.empty((width, length + size - span), np.float32)
    for k in range(width):
        if cost[k] == np.inf:
            out[k, :] = 0.0
            continue
        out[k, :length - span] = history[ancestor[k], span:]
        out[k, length - span:] = errors[k]
    moved = history[ancestor[first], :span].copy() if span else np.empty(0, np.float32)
    return out, np.ascontiguousarray(lines[:, shared:]), span, moved


@numba.njit(cache=True, nogil=True)
def _group_search(w32, ucols, ucol_at, starts, widths, offsets, block, w0, steps, lo, free, offset, strict,
                  inv_diag, grad, lam, first, back, pairs, raw):
    """Every block of the neurons ``first .. first + len(w32) − 1`` (one group) at the blocks' ``widths``: the
    loop of :func:`beam_search` over its blocks, compiled, so that a group's bookkeeping between the kernels
    (its products, :func:`_extend`, the trunk) runs without the GIL.

    Each neuron's survivors share their choices before its trunk ``trunk[r]`` (a block boundary): those errors
    are ``common[r, :trunk[r]]``, each survivor's since then ``history[r][k]``. A block's positions are the
    float weights (``w32``, float32) less both errors' products with ``U``'s block columns: one product for the
    group (the common errors), one per neuron (the survivors' own). ``U``'s block ``q`` columns, rows ``0 .. b −
    1``, are ``ucols[ucol_at[q]:]`` in C order (contiguous, as BLAS takes them), and ``strict[q]`` its diagonal
    block's strict upper triangle (:func:`_beam_block`). Writes the back-pointers
    ``back`` ``(rows, offsets[-1])``.

    Returns:
        ``(cost, moved)``: the survivors' partial energies after the last input ``(rows, widths[-1])`` and the
        most inputs one extension moved into a trunk (0: no trunk ever moved).
    """
    rows, m = w32.shape
    common = np.zeros((rows, m), np.float32)
    trunk = np.zeros(rows, np.int64)
    history = [np.zeros((1, 0), np.float32) for _ in range(rows)]
    lineage = [np.zeros((1, 0), np.int64) for _ in range(rows)]
    cost = np.zeros((rows, 1))
    narrowed = np.zeros((rows, 1), np.int64)
    was_narrowed = False
    most = 0
    for q in range(starts.size):
        a = starts[q]
        b = min(a + block, m)
        size, k, parents = b - a, widths[q], cost.shape[1]
        if k > parents:  # a widening beam: the new slots start empty
            wider = np.full((rows, k), np.inf)
            wider[:, :parents] = cost
            cost = wider
        ub = ucols[ucol_at[q]:ucol_at[q] + b * size].reshape((b, size))
        deepest = trunk.max()  # each trunk's errors beyond its own end are zeros
        shared = w32[:, a:b] - np.dot(np.ascontiguousarray(common[:, :deepest]), ub[:deepest])
        pos = np.empty((rows, parents, size), np.float32)
        for r in range(rows):
            own = history[r]
            if own.shape[1]:
                pos[r] = shared[r] - np.dot(own, ub[trunk[r]:a])
            else:
                for s in range(parents):
                    pos[r, s] = shared[r]
        errors = np.empty((rows, k, size), np.float32)
        ancestor = np.empty((rows, k), np.int64)
        _beam_block(pos, w0, steps, lo, free, offset, strict[q], inv_diag, grad, lam, a, b, cost,
                    back[:, offsets[q]:offsets[q + 1]], errors, ancestor, first, parents, pairs, raw)
        if was_narrowed:  # the block's parents were the best of the last block's survivors
            for r in range(rows):
                for s in range(k):
                    c = back[r, offsets[q] + s]
                    back[r, offsets[q] + s] = 2 * narrowed[r, c // 2] + c % 2
        was_narrowed = False
        if b < m:
            following = widths[q + 1]
            if following < k:  # a narrowing beam: the next block starts from the best survivors
                narrowed = np.empty((rows, following), np.int64)
                kept_cost = np.empty((rows, following))
                kept_anc = np.empty((rows, following), np.int64)
                kept_err = np.empty((rows, following, size), np.float32)
                for r in range(rows):
                    narrowed[r] = np.argsort(cost[r], kind="mergesort")[:following]
                    for s in range(following):
                        t = narrowed[r, s]
                        kept_cost[r, s] = cost[r, t]
                        kept_anc[r, s] = ancestor[r, t]
                        kept_err[r, s] = errors[r, t]
                cost, ancestor, errors = kept_cost, kept_anc, kept_err
                was_narrowed = True
            for r in range(rows):
                history[r], lineage[r], span, moved = _extend(history[r], lineage[r], errors[r], ancestor[r],
                                                              cost[r], block)
                if span:  # the survivors share the blocks before that boundary: into the trunk
                    common[r, trunk[r]:trunk[r] + span] = moved
                    trunk[r] += span
                    most = max(most, span)
    return cost, most


@numba.njit(cache=True, nogil=True)
def _trace(back, offsets, widths, starts, r, s, out):
    """The binary choices ``out`` of neuron ``r``'s survivor ``s`` of the last block, traced back through every
    block's back-pointers (block ``q`` from ``offsets[q]`` in ``back``, of width ``widths[q]``, inputs from
    ``starts[q]``)."""
    blocks = widths.size
    m = out.size
    for q in range(blocks - 1, -1, -1):
        stop = starts[q + 1] if q + 1 < blocks else m
        for j in range(stop - 1, starts[q] - 1, -1):
            c = back[r, offsets[q] + (j - starts[q]) * widths[q] + s]
            out[j] = c % 2
            s = c // 2


@numba.njit(cache=True, nogil=True)
def _spread_paths(back, offsets, widths, starts, cost, v):
    """Each neuron's survivors at ranks ``t · (finite survivors // paths)`` of the last block, ``t < paths``
    (``v`` ``(rows, paths, m)``; rank 0, the lowest energy, first; ties by index), traced back: paths spread
    over the beam, not only its best few (where fewer survivors than paths, ranks repeat). One path: each
    neuron's lowest-energy survivor (the first of equals)."""
    paths = v.shape[1]
    for r in range(back.shape[0]):
        order = np.argsort(cost[r], kind="mergesort")
        finite = 0
        for k in range(order.size):
            finite += cost[r, order[k]] < np.inf
        stride = max(finite // paths, 1)
        for t in range(paths):
            rank = min(t * stride, max(finite - 1, 0))
            _trace(back, offsets, widths, starts, r, order[rank], v[r, t])


def check_growth(growth: object, name: str = "growth") -> None:
    """Refuse a beam ``growth`` (its last block's width over its first's) that is not a finite number > 0,
    naming it ``name``."""
    if isinstance(growth, bool) or not isinstance(growth, (int, float, np.integer, np.floating)) or not (
            np.isfinite(growth) and growth > 0):
        raise InvalidArgumentError(f"{name}={growth!r} must be a finite number > 0 (the beam's last block's width "
                                   "over its first's; 1: a constant width)")


def beam_widths(width: int, growth: float, m: int, block: int = 64) -> np.ndarray:
    """The beam's width in each block of ``block`` inputs out of ``m``: ``width`` in the last block, growing
    geometrically from ``width / growth`` in the first (each at least 1; ``growth`` 1: a constant width, below 1
    a narrowing beam, which keeps the best survivors of a block for the next)."""
    for name, value, meaning in (("width", width, "survivors per neuron"), ("block", block, "inputs per lazy update")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidArgumentError(f"{name}={value!r} must be an integer >= 1 (the beam's {meaning})")
    check_growth(growth)
    blocks = max(1, -(-m // block))
    if blocks == 1:
        return np.array([width], np.int64)
    powers = (blocks - 1 - np.arange(blocks)) / (blocks - 1)
    return np.maximum(1, np.round(width * float(growth) ** -powers)).astype(np.int64)


def beam_search(weights: np.ndarray, steps: np.ndarray, base: np.ndarray, free: np.ndarray, offset: float,
                dead: np.ndarray, factor: np.ndarray, damp: float, grad: np.ndarray, width: int,
                block: int = 64, threads: int | None = None, growth: float = 1.0,
                paths: int = 1, deadline: Deadline | None = None, pairs: bool = True,
                form: str = "inverse") -> tuple[np.ndarray, np.ndarray]:
    """A beam search of ``width`` over ``n`` neurons that share ``factor``, all arrays in its input order.

    Args:
        weights: float weights ``(n, m)``; steps: grid steps ``(n, m)``; base: floor integers ``(n, m)``;
            free: which inputs may round up ``(n, m)``; offset: the grid's offset; dead: dead inputs ``(m,)``.
        factor: upper Cholesky factor ``U`` of the damped ``H⁻¹`` ``(m, m)``; damp: the damping ``λ`` added
            to ``H``'s diagonal.
        grad: ``H w − c`` ``(n, m)`` (``w`` the weights with dead inputs zero).
        width: prefixes kept per neuron in the last block (1: GPTQ-restricted, each rounding by its energy).
        block: inputs per lazy update.
        threads: threads of the compiled kernels (default: :func:`qannealq._pool.beam_thread_count`, the CPU count
            outside :func:`qannealq._pool.beam_threads`; the result does not depend on it).
        growth: the last block's width over the first's (:func:`beam_widths`; 1: a constant width).
        paths: survivors returned per neuron (1: the best); more: the best and others spread over the final
            beam (:func:`_spread_paths`: ranks ``t · (width // paths)``), e.g. distinct starts for the reads of
            a population.
        deadline: when the search should end (None: no bound). The first group is then timed at narrower
            widths, and the others run in waves, one group per thread, each wave at the widest width (its last
            block's) up to ``width`` whose predicted time fits the time left shared by the waves left
            (:func:`_waves`); groups not started by the deadline are not searched (their ``score`` is ``inf``,
            their choices all floor). Where it narrows or stops the beam it sets ``deadline.cut``: the result
            then depends on timing. A deadline the beam meets at ``width`` changes nothing.
        pairs: take two free inputs in one step where the beam is full (:func:`_beam_block`: each survivor's
            four grandchildren, the ``width`` lowest kept); False: one input a step, the plain K-best.
        form: what ``factor`` is. "inverse" (the default): GPTQ's ``U``, the upper Cholesky factor of the damped
            ``H⁻¹``. "cholesky": ``R``, upper triangular with ``R Rᵀ`` the damped ``H`` (in pivot order, ``J L J``
            of the pivoted Cholesky factor ``L``, before its inverse ``U = R⁻¹`` is formed): the same search on
            the same positions, without the triangular inverse (:func:`_beam_block`'s ``raw``).

    Returns:
        ``(v, score)``: each neuron's best binary choices ``(n, m)`` uint8 (1 = ceil), or with ``paths`` > 1
        its paths ``(n, paths, m)`` (the best first), and the best's ``E(q) − E(w)`` ``(n,)``, from float32
        updates: within about 1e-6 of the QUBO energy (relative) at 2-4 bits.
    """
    n, m = weights.shape
    widths = beam_widths(width, growth, m, block)
    starts = np.arange(0, m, block, dtype=np.int64)
    if deadline is not None and not isinstance(deadline, Deadline):
        raise InvalidArgumentError(f"deadline={deadline!r} must be a qannealq._deadline.Deadline (or None: none)")
    if form not in ("inverse", "cholesky"):
        raise InvalidArgumentError(f"form={form!r} must be 'inverse' (factor: U of the damped H⁻¹) or 'cholesky' "
                                   "(factor: R with R Rᵀ the damped H)")
    if not isinstance(pairs, (bool, np.bool_)):
        raise InvalidArgumentError(f"pairs={pairs!r} must be True or False (two free inputs a step where the beam is "
                                   "full, or one)")

    def plan(last: int) -> tuple[np.ndarray, np.ndarray]:  # each block's width and its back-pointers' offsets
        ws = widths if last == width else beam_widths(last, growth, m, block)
        return ws, np.concatenate([[0], np.cumsum(ws * np.diff(np.append(starts, m)))]).astype(np.int64)

    offsets = plan(width)[1]
    w0 = np.ascontiguousarray(np.where(dead, 0.0, weights), dtype=np.float64)
    stp = np.ascontiguousarray(np.where(dead, 0.0, steps), dtype=np.float64)
    lo = np.ascontiguousarray(base, dtype=np.float64)
    up = np.ascontiguousarray(free & ~dead, dtype=np.uint8)
    raw = form == "cholesky"
    if raw:  # positions less the raw errors q − w times R's rows over their columns' diagonals (R⁻¹ = U)
        diag = np.diag(factor).astype(np.float64)
        u = _pool.scratch(np.shape(factor), np.float32)  # the upper triangle is all the search reads
        np.divide(factor, diag, out=u, casting="same_kind")
        inv_diag = diag
    else:
        u = _pool.kept_copy(factor, np.float32)
        inv_diag = 1.0 / np.diag(factor).astype(np.float64)
    g = np.ascontiguousarray(grad, dtype=np.float64)
    if isinstance(paths, bool) or not isinstance(paths, (int, np.integer)) or paths < 1:
        raise InvalidArgumentError(f"paths={paths!r} must be an integer >= 1 (survivors returned per neuron)")
    v = np.zeros((n, int(paths), m), np.uint8)
    score = np.full(n, np.inf)
    pointer = np.int16 if 2 * widths.max() < 2 ** 15 else np.int32
    workers = max(1, int(threads or beam_thread_count()))
    group_bytes = min(GROUP, n) * (offsets[-1] * np.dtype(pointer).itemsize + 4 * int(widths.max()) * (m + block))
    workers = max(1, min(workers, MEMORY_BYTES // max(1, group_bytes)))  # bounded memory on wide beams

    w32 = w0.astype(np.float32)
    # U's block columns, rows 0 .. b − 1 of each block (the rest are zeros: U is upper triangular), contiguous for
    # the products of the compiled group loop; half of U's size in all
    columns = [u[:min(a + block, m), a:a + block].ravel() for a in starts]
    ucol_at = np.concatenate([[0], np.cumsum([c.size for c in columns])]).astype(np.int64)
    # (in a kept work array of u's shape, fresh pages otherwise: :func:`qannealq._pool.scratch`)
    ucols = np.concatenate([np.zeros(0, np.float32), *columns],  # none on a layer without live inputs
                           out=_pool.scratch(u.shape, np.float32).reshape(-1)[:ucol_at[-1]])
    # each block's strict upper triangle of U (its diagonal block, zeros on and below the diagonal): the rows the
    # kernel's updates read (:func:`_beam_block`)
    strict = np.zeros((len(starts), block, block), np.float32)
    for q, a in enumerate(starts):
        b = min(a + block, m)
        strict[q, :b - a, :b - a] = np.triu(u[a:b, a:b], 1)

    def search(first: int, widths: np.ndarray = widths, offsets: np.ndarray = offsets) -> None:
        """Every block of the neurons ``first .. first + GROUP − 1``, at the blocks' ``widths``
        (:func:`_group_search`, compiled, the GIL released), then each neuron's paths traced back."""
        rows = min(GROUP, n - first)
        back = np.empty((rows, offsets[-1]), pointer)
        cost, _ = _group_search(w32[first:first + rows], ucols, ucol_at, starts, widths, offsets, int(block), w0, stp,
                                lo, up, float(offset), strict, inv_diag, g, float(damp), int(first), back,
                                bool(pairs), raw)
        _spread_paths(back, offsets, widths, starts, cost, v[first:first + rows])
        score[first:first + rows] = cost.min(axis=1)

    # the workers' products run on one BLAS thread each: BLAS threads of their own would oversubscribe the cores
    # (with 2 BLAS threads beside 2 workers, the search took 1.5x as long on MNIST's first layer)
    firsts = list(range(0, n, GROUP))
    with blas_threads(1), ThreadPoolExecutor(workers) as pool:
        if deadline is None:
            list(pool.map(search, firsts))
        else:
            _waves(pool, search, plan, firsts, workers, width, deadline)
    return (v[:, 0] if paths == 1 else v), score


def _waves(pool: ThreadPoolExecutor, search, plan, firsts: list[int], workers: int, width: int,
           deadline: Deadline) -> None:
    """:func:`beam_search`'s groups under a deadline: the first group probed at widths growing from
    :data:`PROBE_WIDTH`, then the others one at a time by whichever of the ``workers`` threads is free, each at
    the widest width up to ``width`` whose predicted time fits its share of the time left; nothing after the
    deadline.

    The probes time the first group at 8, 64, 512, ... (:data:`PROBE_GROWTH` times the last), up to ``width``,
    while the next one's time (the last's, scaled by the width) fits one wave's share (``workers`` groups side by
    side); where a probe reaches ``width``, it is that group's search. A group's time is modelled as ``a + b ·
    width`` through the last two probes (one probe: :data:`PROBE_FIXED` of its time is ``a``), each prediction
    scaled by the groups' measured time so far over their predicted time (groups side by side, the machine's
    load), and no group is wider than :data:`PROBE_GROWTH`
    times the widest timed yet (the time grows faster than the width on wide beams: on CIFAR-10's first layer
    one group at ``thorough``'s 1536 takes seconds). A group's share is the threads' time left, less what the
    groups in flight are still predicted to take, over the groups left, and at most the time left.

    Until 2026-12-04 the groups ran in waves of ``workers``, each wave at one width: a wave waited for its slower
    group (on MNIST's first layer under 5 GPTQ times the two groups of a wave often took unequal times, up to
    2x), and a wave that overran shrank every later one, the last down to a width of 1 in some runs
    (docs/layer-sa.md). A deadline the full width meets changes nothing: the first group ends at ``width``, and
    every group runs at it, whichever thread takes it.
    """
    times: list[tuple[int, float]] = []
    w = min(width, PROBE_WIDTH)
    waves_after = -(-(len(firsts) - 1) // workers)
    while True:
        left = deadline.left()
        if left <= 0:
            deadline.mark_cut()
            return
        if times and times[-1][1] * w / times[-1][0] > left / max(1, waves_after + 1):
            break  # the next probe would not fit a wave's share
        t0 = time.perf_counter()
        search(firsts[0], *plan(w))
        times.append((w, time.perf_counter() - t0))
        if w == width:
            break
        w = min(width, PROBE_GROWTH * w)
    # one probe: a share of its time is the group's fixed costs, the rest grows with the width (PROBE_FIXED)
    (w1, t1), (w2, t2) = times[-2] if len(times) > 1 else (0, PROBE_FIXED * times[-1][1]), times[-1]
    b = max((t2 - t1) / (w2 - w1), t2 / w2 / PROBE_GROWTH, 1e-12)
    a = max(t2 - b * w2, 0.0)
    widest = times[-1][0]
    left_groups = firsts[1:] if widest == width else firsts[:]  # the probe at the full width is its search
    lock = threading.Lock()
    took = predicted = 0.0  # the groups' measured and predicted seconds so far
    running: dict[int, float] = {}  # each busy thread's group's predicted end

    def take() -> tuple[int, int] | None:
        """The next group and its width (under ``lock``): the widest whose predicted time fits its share of the
        time left, the threads' time (less what the groups in flight are still predicted to take) shared by the
        groups left, at most the time left and :data:`PROBE_GROWTH` times the widest timed; None once none is left
        or the deadline has passed."""
        if not left_groups:
            return None
        clock = time.perf_counter()
        left = deadline.at - clock
        if left <= 0:
            deadline.mark_cut()
            left_groups.clear()
            return None
        scale = took / predicted if predicted else 1.0
        busy = sum(max(0.0, end - clock) for end in running.values())
        share = min(left, max(0.0, workers * left - busy) / len(left_groups))
        now = int(min(width, PROBE_GROWTH * widest, max(1.0, (share / scale - a) / b)))
        if now < width:
            deadline.mark_cut()
        running[threading.get_ident()] = clock + scale * (a + b * now)
        return left_groups.pop(0), now

    def worker(_: int) -> None:
        nonlocal took, predicted, widest
        while True:
            with lock:
                job = take()
            if job is None:
                return
            first, now = job
            t0 = time.perf_counter()
            search(first, *plan(now))
            with lock:
                took, predicted = took + time.perf_counter() - t0, predicted + a + b * now
                widest = max(widest, now)  # timed: the next may be PROBE_GROWTH times wider
                running.pop(threading.get_ident(), None)

    list(pool.map(worker, range(workers)))


@numba.njit(cache=True, nogil=True)
def _gptq_block(w, steps, lo, hi, offset, u, start, stop, ints, errs):
    """GPTQ's inputs ``start .. stop − 1`` of every row of ``w`` (float64): each rounded to the nearest level
    clipped to ``[lo, hi]`` (the grid's range, or its floor/ceil for GPTQ-restricted), its error spread over the
    block's later inputs (in a copy of the row's block: the columns after the block are updated by the product
    after it); the errors divided by ``U_jj`` into ``errs``. The operations of
    :func:`qannealq.baselines._gptq_rows`, row by row."""
    size = stop - start
    row = np.empty(size)
    for i in range(w.shape[0]):
        for t in range(size):
            row[t] = w[i, start + t]
        for jj in range(size):
            j = start + jj
            x = row[jj]
            z = np.floor(x / steps[i, j] - offset + 0.5)
            z = min(max(z, lo[i, j]), hi[i, j])
            ints[i, j] = np.int64(z)
            err = (x - steps[i, j] * (z + offset)) / u[j, j]
            errs[i, jj] = err
            uj, target = u[j, j + 1:stop], row[jj + 1:]
            for t in range(target.size):
                target[t] -= err * uj[t]


def gptq_path(weights: np.ndarray, steps: np.ndarray, lo: np.ndarray, hi: np.ndarray, offset: float,
              dead: np.ndarray, factor: np.ndarray, block: int = 128,
              squares: np.ndarray | None = None) -> np.ndarray:
    """GPTQ on a shared ``factor``, all arrays in its input order (as :func:`beam_search`'s), each input rounded
    to its nearest level clipped to ``[lo, hi]`` (``(n, m)``: the grid's range for GPTQ, each coordinate's
    floor/ceil for GPTQ-restricted): the grid integers ``(n, m)`` of :func:`qannealq.baselines._gptq_rows`, the
    in-block steps compiled (6-10x faster than that numpy loop on MNIST's first layer, 3x on CIFAR-10's), dead
    inputs left as they come out (the caller fills them). ``squares`` ``(n,)``, where given, receives each row's
    sum of its live inputs' squared scaled errors ``Σ e_j²``: ``dᵀ (H + λI) d`` of the rounding ``d = q − w``
    (the module's first paragraph), from which the caller has its energy without a product with ``H``."""
    w = np.ascontiguousarray(np.where(dead, 0.0, weights), dtype=np.float64)  # row-major: [:, perm] is not
    low = np.ascontiguousarray(np.broadcast_to(lo, w.shape), dtype=np.float64)
    high = np.ascontiguousarray(np.broadcast_to(hi, w.shape), dtype=np.float64)
    stp = np.ascontiguousarray(steps, dtype=np.float64)
    u = np.ascontiguousarray(factor, dtype=np.float64)
    ints = np.empty(w.shape, np.int64)
    m = w.shape[1]
    if squares is not None:
        squares[:] = 0.0
    for start in range(0, m, block):
        stop = min(start + block, m)
        errs = np.empty((w.shape[0], stop - start))
        _gptq_block(w, stp, low, high, float(offset), u, start, stop, ints, errs)
        w[:, stop:] -= errs @ u[start:stop, stop:]
        if squares is not None:
            squares += np.einsum("ij,ij->i", errs, errs * ~np.asarray(dead[start:stop], bool))
    return ints


#: Multiply-adds (``n m²``) from which :func:`nearest_plane_path` splits its neurons over the CPU's cores.
PLANE_WORK = 1 << 28


@numba.njit(cache=True, nogil=True)
def _plane_block(w, steps, lo, hi, offset, lt, start, stop, sums, ints, errs):
    """The nearest-plane steps of positions ``stop − 1`` down to ``start`` of every row of ``w``: each target is
    the weight plus the errors of the positions after it weighted by ``L``'s column (``sums`` holds those after
    the block, from the product before it), rounded as :func:`_gptq_block` rounds, its error ``w − q`` into
    ``errs``."""
    size = stop - start
    coef = np.empty((size, size))  # coef[t, s] = L[t, s] (lt[s, t]): position t's weight in the targets before it
    inv = np.empty(size)
    for tt in range(size):
        inv[tt] = 1.0 / lt[start + tt, start + tt]
        for ss in range(tt):
            coef[tt, ss] = lt[start + ss, start + tt]
    row = np.empty(size)
    for i in range(w.shape[0]):
        for tt in range(size):
            row[tt] = sums[i, tt]
        for tt in range(size - 1, -1, -1):
            t = start + tt
            x = w[i, t] + row[tt] * inv[tt]
            z = np.floor(x / steps[i, t] - offset + 0.5)
            z = min(max(z, lo[i, t]), hi[i, t])
            ints[i, t] = np.int64(z)
            err = w[i, t] - steps[i, t] * (z + offset)
            errs[i, t] = err
            c = coef[tt]
            for ss in range(tt):
                row[ss] += c[ss] * err


def nearest_plane_path(weights: np.ndarray, steps: np.ndarray, lo: np.ndarray, hi: np.ndarray, offset: float,
                       dead: np.ndarray, lt: np.ndarray, block: int = 128, threads: int | None = None) -> np.ndarray:
    """GPTQ on the Cholesky factor of the damped ``H`` itself, no inverse: Babai's nearest plane.

    With ``H = L Lᵀ`` (``L`` lower; all arrays in ``L``'s order, ``lt`` its transpose as
    :func:`qannealq._pivot.pivoted_cholesky` leaves it: ``lt[t, s] = L[s, t]``), ``(w − q)ᵀ H (w − q) = Σ_t
    L_tt² (e_t + Σ_{s > t} L_st e_s / L_tt)²`` with ``e = w − q``. Rounding the positions from the last to the
    first, each to the level nearest its target ``w_t + Σ_{s > t} L_st e_s / L_tt``, is GPTQ in the reversed
    order on the factor ``J L⁻¹ J`` (:func:`gptq_path`): GPTQ is the nearest-plane decoder, and its updated
    weight at ``t`` is this target. The same integers to rounding of the targets, without the triangular
    inverse (half the time of pivot order's factor on MNIST's first layer). Blocks of ``block`` positions
    from the end; the errors after a block reach its targets by one product with ``L``'s rows. The neurons are
    independent: ``threads`` groups of them run their whole paths side by side, one BLAS thread each (the
    in-block steps are compiled loops, one thread each); None: one group per CPU core from :data:`PLANE_WORK`
    multiply-adds on (CIFAR-10's first layer: 0.26 s of work), one below (MNIST's, 1.5 ms: handing work to
    threads cost more than it saved).

    Returns:
        the grid integers ``(n, m)`` in ``L``'s order, dead inputs as they come out (the caller fills them).
    """
    w = np.ascontiguousarray(np.where(dead, 0.0, weights), dtype=np.float64)
    low = np.ascontiguousarray(np.broadcast_to(lo, w.shape), dtype=np.float64)
    high = np.ascontiguousarray(np.broadcast_to(hi, w.shape), dtype=np.float64)
    stp = np.ascontiguousarray(steps, dtype=np.float64)
    n, m = w.shape
    ints = np.empty((n, m), np.int64)
    if threads is None:
        threads = (os.cpu_count() or 1) if n * m * m >= PLANE_WORK else 1
    groups = [g for g in np.array_split(np.arange(n), max(1, min(n, int(threads)))) if g.size]

    def path(rows: np.ndarray) -> None:
        a, b = int(rows[0]), int(rows[-1]) + 1  # contiguous
        errs = np.empty((b - a, m))
        out = ints[a:b]
        for stop in range(m, 0, -block):
            start = max(0, stop - block)
            sums = errs[:, stop:] @ lt[start:stop, stop:].T if stop < m else np.zeros((b - a, stop - start))
            _plane_block(w[a:b], stp[a:b], low[a:b], high[a:b], float(offset), lt, start, stop,
                         np.ascontiguousarray(sums), out, errs)

    if len(groups) == 1:
        path(groups[0])
        return ints
    from qannealq._pool import shared_pool

    with blas_threads(1):
        list(shared_pool(len(groups)).map(path, groups))
    return ints
