"""Baselines on the same grid and objective as the QUBO: RTN, GPTQ and GPTQ restricted to floor/ceil.

GPTQ (Frantar et al., 2023) quantizes one coordinate at a time and spreads the rounding error over the
not-yet-quantized coordinates with the upper Cholesky factor of ``H⁻¹`` (damped by ``percdamp`` times the
mean diagonal, as in the GPTQ paper), in blocks with lazy batch updates. Its floor/ceil-restricted variant
chooses, for each free coordinate, between the clipped floor ``k`` and ``k + 1`` of the *original* weight,
so it is a valid QUBO assignment (and a strong warm start).

``order`` sets the order in which the inputs are quantized:

* ``"index"`` (``gptq``, ``gptq-restricted``): the inputs' own order, as in the GPTQ paper.
* ``"act"`` (``gptq-act``, ``gptq-restricted-act``): decreasing ``H_jj`` (the GPTQ reference code's
  ``--act-order``, AutoGPTQ's ``desc_act``): the inputs with the most signal are rounded first, while the most
  others are left to absorb their error.
* ``"pivot"`` (``gptq-pivot``, ``gptq-restricted-pivot``): the order of a Cholesky factorization of ``H`` that
  pivots on the *smallest* remaining diagonal, read backwards. An input's rounding error costs its variance
  left unexplained by the inputs quantized after it (the later ones absorb the rest), so the sum of those
  costs is what the order decides. Built from the end, the pivoted factorization gives the last input the
  smallest variance, the one before it the smallest variance given the last, and so on: each input is
  rounded while the inputs left to absorb its error explain as much of it as a greedy choice can make them.
  Act order is this choice made on the diagonal alone. The pivoted factorization also gives GPTQ's factor
  (one triangular inverse), so pivot order takes less time than index order, which forms ``H⁻¹`` and
  factors it again.

On the first layers of ``benchmarks/frontier.py`` act order lowers GPTQ's error above the best-known QUBO
optimum from 51 to 38 % (MNIST int4) and from 866 to 366 % (CIFAR-10 int2), and pivot order further to 32
and 318 % (the frontier tables of docs/layer-sa.md); ``gptq-restricted-pivot`` is the default warm start
(:data:`DEFAULT_WARM_START`). On per-neuron ``H_i`` (the relu-aware objective) each neuron has its own order.
A warm start on a rank-deficient ``H`` also tries a tenth of GPTQ's damping, and may widen its GPTQ into a beam
search (:func:`warm_start_integers`, :mod:`qannealq._gptq_beam`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from functools import partial

import numpy as np

from qannealq import _pool
from qannealq._deadline import RESERVE, Deadline
from qannealq._defaults import DEFAULT_WARM_START
from qannealq._pool import beam_thread_count, blas_threads, helper_pool
from qannealq.checks import is_count, is_number
from qannealq.errors import InvalidArgumentError
from qannealq.formulation import LayerProblem, check_single_precision, submatrix

__all__ = ["rtn", "gptq", "gptq_restricted", "ORDERS", "BASELINES", "BEAM_STARTS", "DEFAULT_WARM_START",
           "GPTQ_PERCDAMP", "RANK_DEFICIENT_PERCDAMP", "PILOT_NEURONS", "PILOT_MARGIN", "DEADLINE_PILOT_WIDTH",
           "rank_deficient", "warm_start_integers"]


def rtn(problem: LayerProblem) -> np.ndarray:
    """Round-to-nearest grid integers ``(n, m)``."""
    return problem.grid.nearest(problem.weights, problem.steps)


#: GPTQ's damping (the GPTQ paper's): ``percdamp`` times the mean diagonal of ``H`` is added to its diagonal.
GPTQ_PERCDAMP = 0.01

#: Bytes of the per-neuron factors GPTQ and the beam hold at once on per-neuron ``H_i`` (a batch of neurons).
_CHUNK_BYTES = 2 ** 28


def _damping(hessian: np.ndarray, dead: np.ndarray, percdamp: float) -> float:
    """The damping ``λ`` GPTQ adds to ``H``'s diagonal: ``percdamp`` times its mean diagonal, dead inputs
    counted as 1 (the unit diagonal they are given)."""
    return _diagonal_damping(np.diag(hessian), dead, percdamp)


def _diagonal_damping(diagonal: np.ndarray, dead: np.ndarray, percdamp: float) -> float:
    """:func:`_damping` from ``H``'s diagonal alone; a damping that overflows is refused (percdamp=1e308 had raised a
    ZeroDivisionError in index and act order, its factor's diagonal 0)."""
    mean = float(np.mean(np.where(dead, 1.0, diagonal)))
    damp = percdamp * mean
    if not np.isfinite(damp):
        raise InvalidArgumentError(f"percdamp={percdamp!r} times H's mean diagonal ({mean:.6g}) overflows: give a "
                                   f"percdamp of 1 or less (GPTQ uses {GPTQ_PERCDAMP})")
    return damp


def _damped(hessian: np.ndarray, dead: np.ndarray, percdamp: float) -> np.ndarray:
    """A copy of ``H`` with a unit diagonal at dead inputs, then :func:`_damping` added to the diagonal."""
    h = hessian.copy()
    h[dead, dead] = 1.0
    h[np.diag_indices_from(h)] += _damping(hessian, dead, percdamp)
    return h


def _live_copy(hessian: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``H`` among the inputs ``index`` (in that order), C-contiguous, in a work array of the process's
    (:func:`qannealq._pool.scratch`: a kept buffer where one is free, so that a wide layer's copy does not land on
    fresh pages): what a factorization overwrites."""
    k, m = index.size, hessian.shape[0]
    if k == m and np.array_equal(index, np.arange(m)):
        return _pool.kept_copy(hessian)
    # mode "clip" (the indices are valid): with "raise" numpy buffers ``out`` in a new array of its size
    rows = np.take(hessian, index, axis=0, out=_pool.scratch((k, m)), mode="clip")
    return np.take(rows, index, axis=1, out=_pool.scratch((k, k)), mode="clip")


def _inverse_cholesky(hessian: np.ndarray, dead: np.ndarray, percdamp: float) -> np.ndarray:
    """GPTQ's factor: the upper Cholesky factor of the damped inverse Hessian (dead inputs given a unit diagonal).

    The GPTQ paper's code forms it as ``cholesky(cholesky_inverse(cholesky(H)), upper=True)`` (about 4m³/3
    flops); this code did it by a general solve against the identity and a product (about 5m³). It takes
    2m³/3 here: with ``J`` the order reversal and ``J H J = L Lᵀ``, ``H = R Rᵀ`` with ``R = J L J`` upper, so
    ``H⁻¹ = R⁻ᵀ R⁻¹`` and the upper Cholesky factor of ``H⁻¹`` is ``R⁻¹ = J L⁻¹ J``: one Cholesky and one
    triangular inverse (LAPACK's ``potrf`` and ``trtri``), over the live coordinates only (a dead one is
    decoupled: its factor is diagonal). The same factor to rounding (1e-12 relative on CIFAR-10's first layer),
    4-7x faster than before on the first layers of the MNIST and CIFAR-10 MLPs, 1.2-1.7x than the paper's form
    (``benchmarks/gptq_speed.py``; docs/layer-sa.md).
    """
    from qannealq._lapack import cholesky_lower, invert_lower  # compiled on first use

    damp = _damping(hessian, dead, percdamp)
    u = np.diag(np.full(hessian.shape[0], 1.0 / np.sqrt(1.0 + damp)))
    live = np.flatnonzero(~dead)[::-1]
    if live.size == 0:  # LAPACK refuses empty matrices
        return u
    h = _live_copy(hessian, live)
    h[np.diag_indices_from(h)] += damp
    top = float(np.max(np.diag(h)))
    info = cholesky_lower(h)  # L in h read column-major (h.T), the GIL released
    if info == 0:
        _check_pivots(np.diag(h), top, percdamp, "GPTQ's factor")
        info = invert_lower(h)
    if info != 0:
        raise InvalidArgumentError(f"percdamp={percdamp!r} leaves the layer's H singular for GPTQ's factor (LAPACK "
                                   f"info {info}): give percdamp > 0 (GPTQ uses {GPTQ_PERCDAMP})")
    u[np.ix_(live, live)] = np.tril(h.T)
    return u


def _check_pivots(factor_diagonal: np.ndarray, top: float, percdamp: float, what: str) -> None:
    """Refuses a Cholesky factor of a damped ``H`` whose smallest pivot (``L_jj²``) is at most ``m ε`` times the
    largest diagonal ``top`` of the matrix factored (LAPACK ``?pstrf``'s rank tolerance): the matrix is singular
    to rounding. Without this, an exactly singular ``H`` at ``percdamp=0`` (two equal inputs, fewer samples than
    inputs) was factored or refused depending on the sign its rounding left on a zero pivot."""
    pivots = factor_diagonal * factor_diagonal
    tolerance = factor_diagonal.size * np.finfo(np.float64).eps * top
    if pivots.size and not np.min(pivots) > tolerance:  # NaN too
        raise InvalidArgumentError(
            f"percdamp={percdamp!r} leaves the layer's H singular for {what} (a pivot of {np.min(pivots):.3g} "
            f"against a rank tolerance of {tolerance:.3g}): give percdamp > {percdamp!r} "
            f"(GPTQ uses {GPTQ_PERCDAMP})")


#: GPTQ's input orders (the module docstring).
ORDERS = ("index", "act", "pivot")


def _pivot_cholesky(damped: np.ndarray, percdamp: float, block: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The pivoted Cholesky factorization of a damped ``H`` (``percdamp``: its damping, for the message),
    pivoting on the smallest remaining diagonal (ties to the lowest index): the pivots ``p`` (position -> row of
    ``damped``) and ``Lᵀ`` (C-order, upper triangle) with ``damped[p][:, p] = L Lᵀ``.

    It is LAPACK's blocked pivoted Cholesky (``?pstrf``, which pivots on the largest) in LAPACK's layout,
    compiled (:func:`qannealq._pivot.pivoted_cholesky`): within a block of ``block`` pivots each is chosen on the
    exact Schur complement and its column computed, then one BLAS ``dsyrk`` updates the trailing triangle in
    place.
    """
    from qannealq._pivot import pivoted_cholesky  # compiled on first use

    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise InvalidArgumentError(f"block={block!r} must be an integer >= 1 (pivots per trailing update)")
    h = np.ascontiguousarray(damped, dtype=np.float64)
    pivots = np.arange(h.shape[0])  # position -> row
    top = float(np.max(np.diag(h))) if h.size else 0.0
    if pivoted_cholesky(h, pivots, int(block)) >= 0:
        raise InvalidArgumentError(
            f"percdamp={percdamp!r} leaves the layer's H singular for GPTQ's pivot order: give percdamp > 0 "
            f"(GPTQ uses {GPTQ_PERCDAMP})")
    _check_pivots(np.diag(h), top, percdamp, "GPTQ's pivot order")
    return pivots, h


def _pivot_live_cholesky(hessian: np.ndarray, dead: np.ndarray, percdamp: float,
                         block: int = 64, live_h: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The pivoted Cholesky factorization of the live inputs' damped ``H`` (the damping of the whole ``H``, dead
    inputs counted; :func:`_pivot_cholesky`): ``(pivots, Lᵀ)``, ``pivots`` indexing the live inputs. Both
    :func:`_pivot_live_factor` (the beams' factor) and :func:`_gptq_plane` (GPTQ on it, ``live[pivots]``) start
    from it. Its fastest time in this process per number of live inputs is kept (:data:`_FASTEST`). ``live_h``:
    ``H`` among the live inputs where the caller has it (:meth:`LayerProblem.live_block`, read only: it is copied,
    one contiguous copy instead of two gathers of ``H``); default: gathered here."""
    begun = time.perf_counter()
    live = np.flatnonzero(~dead)
    h = _live_copy(hessian, live) if live_h is None else _pool.kept_copy(live_h, np.float64)
    h[np.diag_indices_from(h)] += _damping(hessian, dead, percdamp)
    out = _pivot_cholesky(h, percdamp, block) if live.size else (np.zeros(0, np.int64), h)
    _fastest(("cholesky", live.size), time.perf_counter() - begun)
    return out


#: The fastest seconds in this process of :func:`_pivot_live_cholesky` per number of live inputs (``("cholesky",
#: m)``), of the warm start's product of a layer's rows with ``H`` per shape (``("product", n, m)``) and of a beam
#: start's fixed costs (``("factoring", ...)``, ``("fixed", ...)``: :func:`_steady_costs`): steady measures of the
#: machine's speed on a layer, for :data:`SKIP_BEAM` and the deadline's split. Single runs moved 2x from run to run
#: on MNIST's first layer (the factorization 4.1-9.6 ms: fresh pages for the copy of ``H``, a busy machine).
_FASTEST: dict[tuple, float] = {}


def _fastest(key: tuple, seconds: float) -> float:
    """The fastest of ``seconds`` and those recorded under ``key`` (:data:`_FASTEST`), recorded."""
    _FASTEST[key] = best = min(float(seconds), _FASTEST.get(key, float(seconds)))
    return best


#: Rounds of :func:`rehearse_start` (its fastest is recorded).
REHEARSALS = 2
#: The shapes :func:`rehearse_start` ran for in this process (neurons, inputs, live inputs).
_REHEARSED: set[tuple[int, int, int]] = set()


def rehearse_start(problem: LayerProblem) -> bool:
    """Run a full-rank warm start's first fixed costs on stand-in arrays of ``problem``'s shape, once per process
    and shape, before a time-limited layer's clock (:func:`qannealq.solve.warm_up`): the product of the layer's
    rows with ``H`` among its live inputs on the helper thread beside the pivoted factorization of a matrix of
    their size, as :func:`_beam_start` runs them, :data:`REHEARSALS` times, their fastest recorded
    (:data:`_FASTEST`, the keys :data:`SKIP_BEAM` reads). Nothing of ``problem`` is formed or kept (its ``dead``
    mask alone is read): the matrices are random, diagonally dominant. Whether it ran (False: done before).

    The first start of a shape in a process ran on fresh pages and cold BLAS buffers (its product, its copy of
    ``H`` and factor; "Fresh memory" in the README): on MNIST's first layer under 5 GPTQ times the product beside
    the factorization read slow enough in about one fresh process in four that :data:`SKIP_BEAM` left the beam
    out, and the layer ended where ``fast`` does, 35.6 % above the best known against 6-8 % (docs/layer-sa.md,
    "The first limited layer of a process"). The later layers of a process read the steady times it records."""
    n, m = problem.weights.shape
    live = int(np.count_nonzero(~problem.dead))
    key = (n, m, live)
    if key in _REHEARSED or live == 0:
        return False
    rng = np.random.default_rng(0)
    h = rng.random((live, live))
    h += h.T
    h[np.diag_indices_from(h)] += 2.0 * live  # diagonally dominant: positive definite
    rows = rng.standard_normal((n, live))
    alone = 1 if m < ONE_BLAS_INPUTS else None

    def product() -> float:
        begun = time.perf_counter()
        out = np.zeros((n, m))
        out[:, :live] = rows @ h
        return time.perf_counter() - begun

    for _ in range(REHEARSALS):
        with blas_threads(alone):
            pending = helper_pool().submit(product) if alone == 1 else None
            _pivot_live_cholesky(h, np.zeros(live, bool), 0.01)
            seconds = pending.result() if pending is not None else product()
        _fastest(("product", n, m), seconds)
    _REHEARSED.add(key)
    return True


#: The live-input counts :func:`prepare_start` prepared work arrays for in this process.
_PREPARED: set[int] = set()


def prepare_start(problem: LayerProblem) -> bool:
    """Touch, once per process and live-input count, the work arrays a beam start on ``problem``'s shape takes
    from the process's kept buffers (:func:`qannealq._pool.scratch`): two factorizations' copies of ``H`` among the
    live inputs (side by side on a rank-deficient layer) and the beam's two float32 arrays of their size (its factor
    and block columns; ``layer-sa``'s chain moves take one of them after it where every input is live). Called
    before a time-limited layer's clock (:func:`qannealq.solve.warm_up`). Whether it ran (False: done before, or
    arrays too small to be kept).

    Copies of this size land on fresh pages otherwise, and touching fresh pages took 20-500 ms now and then on
    this machine: on CIFAR-10's first layer (3073 inputs, 75.6 MB a copy) ``thorough`` under 4 GPTQ times lost its
    beam in most runs that followed a pause (docs/layer-sa.md, "Fresh pages for the factorizations' copies")."""
    live = int(np.count_nonzero(~problem.dead))
    if live in _PREPARED or not _pool.kept((live, live), np.float32):
        return False
    _pool.prefault((live, live), np.float64, 2)
    _pool.prefault((live, live), np.float32, 2)
    _PREPARED.add(live)
    return True


def _steady_costs(key: tuple, factoring: float, fixed: float) -> tuple[float, float]:
    """A warm start's fixed costs as its deadline's split reads them (:func:`_beam_start`): the fastest
    ``factoring`` (its factorizations, and the gradient's product before them) and ``fixed`` (those; GPTQ's own
    starts follow the beam under a deadline) recorded in this process for the same start on a layer of the same
    shape (``key``: the start's name, neurons, inputs, live inputs, dampings and beam damping; :data:`_FASTEST`),
    this run's among them. A slow run of them (fresh pages for the copy of ``H``, a busy moment) says little about what
    follows the beam, yet it both took its own time and, read as the scale of what follows, kept more of the time
    left from the beam: on MNIST's first layer under 5 GPTQ times the default's beam then got 19-24 ms of its usual
    27-30 and ended 10.5-13.6 % above the best known against 7.7-8.5 % (one run in four). With the fastest the
    beam's time is steady and the layer keeps its limit (docs/layer-sa.md, "Steady measures of the fixed
    costs")."""
    return _fastest(("factoring", *key), factoring), _fastest(("fixed", *key), fixed)


def _pivot_live_factor(hessian: np.ndarray, dead: np.ndarray, percdamp: float, block: int = 64,
                       cholesky: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`_pivot_factor` on the live inputs alone: their order (the pivots reversed), GPTQ's factor among them
    ``J L⁻¹ J`` (the damping of the whole ``H``, dead inputs counted), and how many of the live pivots the full
    factorization picks before the dead inputs (see :func:`_pivot_factor`). A dead input is decoupled, so this
    is the full factor's live rows and columns, in the same order: what the warm start's beams and GPTQ's own
    start on them read (:func:`_beam_start`), without the full factor's copies (2-5 ms on MNIST's first layer).
    ``cholesky``: :func:`_pivot_live_cholesky`'s result at ``percdamp`` where the caller formed it (it is then
    inverted in place); default: formed here."""
    from qannealq._lapack import invert_lower

    damp = _damping(hessian, dead, percdamp)
    live = np.flatnonzero(~dead)
    pivots, h = _pivot_live_cholesky(hessian, dead, percdamp, block) if cholesky is None else cholesky
    # the full factorization's pick at each step is the least of the live pivot's Schur diagonal (L's diagonal
    # squared) and the dead inputs' 1 + λ: they all come at the first live pivot above it
    at = int(np.argmax(np.append(np.diag(h) ** 2, np.inf) > 1.0 + damp))
    # L⁻¹ by LAPACK's triangular inverse (a third of the flops of solving L X = I), in place on L (h read
    # column-major), the GIL released
    info = invert_lower(h) if live.size else 0
    if info != 0:  # pragma: no cover - every pivot was checked positive above
        raise InvalidArgumentError(f"percdamp={percdamp!r}: the pivoted factor of H is singular (LAPACK info {info})")
    return live[pivots[::-1]], np.ascontiguousarray(h.T[::-1, ::-1]), at


class _LiveFactor:
    """A damping's factor on the live inputs in pivot order under a deadline (:func:`_beam_start`): the pivoted
    Cholesky factor of the damped ``H`` (:func:`_pivot_live_cholesky`'s), whose triangular inverse, GPTQ's ``U``
    (what GPTQ's own start and the V-BLAST order read), is formed only where one of them asks for it
    (:meth:`inverse`, in place: :func:`_pivot_live_factor`). The beams read the Cholesky factor itself where the
    inverse is not formed (:meth:`beam`; :func:`qannealq._gptq_beam.beam_search`'s ``form``): the inverse took 3-4
    ms of the 10 before the beam on MNIST's first layer under 5 GPTQ times, the two of CIFAR-10's (side by side)
    about 0.2 s of the 0.5 s before its beams, and under a limit that narrows the beam nothing else asks for it.
    Its order is :func:`_pivot_live_factor`'s."""

    def __init__(self, hessian: np.ndarray, dead: np.ndarray, percdamp: float,
                 cholesky: tuple[np.ndarray, np.ndarray]) -> None:
        self._factoring = (hessian, dead, percdamp, cholesky)
        self._inverse: np.ndarray | None = None
        self.order = np.flatnonzero(~dead)[cholesky[0][::-1]]

    def inverse(self) -> np.ndarray:
        """GPTQ's ``U`` in :attr:`order` (:func:`_pivot_live_factor`'s), formed on the first call."""
        if self._inverse is None:
            hessian, dead, percdamp, cholesky = self._factoring
            self._inverse = _pivot_live_factor(hessian, dead, percdamp, cholesky=cholesky)[1]
        return self._inverse

    def plane(self, problem: LayerProblem, restricted: bool, rows: np.ndarray) -> np.ndarray | None:
        """GPTQ's start of the neurons ``rows`` (restricted to floor/ceil where ``restricted``, else clipped to them)
        on the Cholesky factor, without the inverse (:func:`_gptq_plane`), as grid integers; None where the inverse
        is formed (GPTQ on it, :func:`_gptq_on`, then costs no more and gives its scores)."""
        if self._inverse is not None:
            return None
        # the live inputs in pivot order are :attr:`order` reversed
        ints = _gptq_plane(problem, self.order[::-1], self._factoring[3][1], restricted, rows=rows)
        return ints if restricted else np.clip(ints, problem.base[rows], problem.base[rows] + problem.free[rows])

    def beam(self) -> tuple[np.ndarray, str]:
        """The factor a beam reads and its ``form``: ``U`` where formed, else ``R = J L J`` (``R Rᵀ`` the damped
        ``H`` in :attr:`order`), a view of the Cholesky factor."""
        if self._inverse is not None:
            return self._inverse, "inverse"
        return self._factoring[3][1].T[::-1, ::-1], "cholesky"


def _inverse_factor(factor: np.ndarray | _LiveFactor) -> np.ndarray:
    """GPTQ's ``U`` of a factor of :func:`_beam_start`'s (an array already, or a :class:`_LiveFactor`)."""
    return factor.inverse() if isinstance(factor, _LiveFactor) else factor


def _blast_factor(order: np.ndarray, factor: np.ndarray | _LiveFactor, percdamp: float,
                  block: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The V-BLAST order of the live inputs and the beam's factor in it, from another order's (``order``, the
    live inputs in that order, and ``factor``, the upper Cholesky factor of their damped ``H⁻¹`` in it:
    :func:`_pivot_live_factor`'s, or the act or index order's, or a :class:`_LiveFactor`, whose inverse it forms;
    ``percdamp``: its damping, for the message).

    The pivot order is built from the end (each input the least variance given the inputs after it, a greedy
    choice made last input first); V-BLAST's ordering of successive interference cancellation in MIMO detection
    (Wolniansky et al., 1998) is built from the start: each input rounded next is the one whose variance left
    unexplained by the inputs not yet rounded is the largest, so that the rounding choices made first, which the
    beam can no longer revise once their alternatives leave it, are the ones whose energies differ most. That
    variance is ``1 / (H_S⁻¹)_jj`` over the inputs ``S`` left, and ``H_S⁻¹`` is the Schur complement of
    ``H⁻¹`` on ``S``: the order is a Cholesky factorization of ``H⁻¹`` that pivots on the smallest remaining
    diagonal (:func:`_pivot_cholesky`), read forwards, and its ``Lᵀ`` is the beam's factor ``U`` in that order
    (``Uᵀ U = H⁻¹``). Two thirds of ``m³`` flops on top of the given factor's (``H⁻¹`` from it, then the
    pivoted factorization): about 10 ms on MNIST's first layer (599 live inputs; on one BLAS thread below
    :data:`ONE_BLAS_INPUTS` inputs, as a lone damping's factorization). Which order a beam does better in depends
    on the layer (:data:`ORDER_PILOT_WIDTH`).
    """
    from scipy.linalg import lapack

    factor = _inverse_factor(factor)
    # H⁻¹ = Uᵀ U with U = J L⁻¹ J: LAPACK's triangular product L⁻ᵀ L⁻¹ (a sixth of a general product's flops;
    # 3.3 against 6 ms on MNIST's first layer) in the reversed order, its lower triangle column-major: the
    # upper triangle the pivoted factorization reads, of the C-order transpose (no copy)
    with blas_threads(1 if order.size < ONE_BLAS_INPUTS else None):  # as a lone damping's factorization
        lower, info = lapack.dlauum(np.asfortranarray(factor[::-1, ::-1]), lower=1)
        if info != 0:  # pragma: no cover - LAPACK refuses only malformed arguments
            raise InvalidArgumentError(f"percdamp={percdamp!r}: LAPACK's lauum failed on GPTQ's factor (info {info})")
        pivots, lt = _pivot_cholesky(lower.T, percdamp, block)  # Lᵀ, its strict lower triangle zeros
    return order[::-1][pivots], lt


def _pivot_factor(hessian: np.ndarray, dead: np.ndarray, percdamp: float,
                  block: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The ``pivot`` order of ``H`` and GPTQ's factor in that order (:func:`_inverse_cholesky`'s, the same
    damping and dead inputs), from :func:`_pivot_cholesky`: with its pivots ``p`` and ``H[p][:, p] = L Lᵀ``,
    the order is ``p`` reversed and its factor ``J L⁻¹ J`` (the reasoning of :func:`_inverse_cholesky`). The
    beams need this factor; GPTQ itself in pivot order runs on ``L`` (:func:`_gptq_plane`).

    Only the live inputs are factored (:func:`_pivot_live_factor`): a dead input, given a unit diagonal, is
    decoupled, so its Schur diagonal stays ``1 + λ`` and picking it changes no live one's. The dead inputs take
    their places in the order where the full factorization would pick them (all together, at the first live
    pivot whose Schur diagonal exceeds ``1 + λ``; a tie goes to the live input), with ``1 / sqrt(1 + λ)`` on the
    factor's diagonal. The same order and factor to rounding; on MNIST's first layer (599 of 785 inputs live,
    damping 0.3 %, one BLAS thread, interleaved) 14-16 ms instead of 19-20.
    """
    order, u, at = _pivot_live_factor(hessian, dead, percdamp, block)
    gone = np.flatnonzero(dead)
    if not gone.size:
        return order, u
    m, live = dead.size, order.size
    cut = live - at  # the live inputs before the dead ones in the (reversed) order
    full, after = np.zeros((m, m)), cut + gone.size
    full[:cut, :cut], full[:cut, after:], full[after:, :cut], full[after:, after:] = (
        u[:cut, :cut], u[:cut, cut:], u[cut:, :cut], u[cut:, cut:])
    full[np.arange(cut, after), np.arange(cut, after)] = 1.0 / np.sqrt(1.0 + _damping(hessian, dead, percdamp))
    return np.concatenate([order[:cut], gone[::-1], order[cut:]]), full


def _plane_factor(problem: LayerProblem, percdamp: float) -> tuple[np.ndarray, np.ndarray]:
    """The pivot order of a shared ``H``'s live inputs and the pivoted Cholesky factor of their damped ``H``
    (:func:`_pivot_cholesky`): ``(pivots, Lᵀ)``, the inputs ``pivots`` in factor order, for :func:`_gptq_plane`.
    The dead inputs are left out of the factorization: decoupled, with their unit diagonal they only take places
    in the order, and keep their base integers. The beam's start under a deadline forms the same factorization
    (:func:`_pivot_live_cholesky`)."""
    order, lt = _pivot_live_cholesky(problem.hessian, problem.dead, percdamp)
    return np.flatnonzero(~problem.dead)[order], lt


def _gptq_plane(problem: LayerProblem, pivots: np.ndarray, lt: np.ndarray, restricted: bool, block_size: int = 128,
                rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """GPTQ in pivot order of the neurons ``rows`` of a shared ``H`` on the pivoted Cholesky factor itself
    (:func:`_plane_factor`; Babai's nearest plane, :func:`qannealq._gptq_beam.nearest_plane_path`): the integers
    of :func:`_gptq_on` on :func:`_pivot_factor`'s factor, to rounding of the targets, without the triangular
    inverse and without the dead inputs in the factorization. On MNIST's first layer (785 inputs, 186 dead) 9 ms
    where the factor and :func:`_gptq_on` took 27 ms; on CIFAR-10's 0.5 s where they took 0.8 s."""
    from qannealq._gptq_beam import nearest_plane_path  # compiled on first use

    out = problem.base[rows].copy()
    if pivots.size == 0:
        return out
    grid, base = problem.grid, out[:, pivots]
    lo, hi = (base, base + problem.free[rows][:, pivots]) if restricted else (grid.lo, grid.hi)
    out[:, pivots] = nearest_plane_path(problem.weights[rows][:, pivots], problem.steps[rows][:, pivots], lo, hi,
                                        float(grid.offset), np.zeros(pivots.size, bool), lt, block=block_size)
    return out


def _gptq(problem: LayerProblem, restricted: bool, percdamp: float, block_size: int, order: str) -> np.ndarray:
    if not is_number(percdamp) or percdamp < 0:
        raise InvalidArgumentError(f"percdamp={percdamp!r} must be a finite number >= 0 (GPTQ uses {GPTQ_PERCDAMP})")
    if not is_count(block_size, 1):
        # a negative size ran no block and returned the uninitialised integers of an empty array
        raise InvalidArgumentError(f"block_size={block_size!r} must be an integer >= 1 (inputs per lazy batch "
                                   "update; GPTQ uses 128)")
    if order not in ORDERS:
        raise InvalidArgumentError(f"order={order!r} is unknown: choose one of {', '.join(ORDERS)}")
    n = problem.num_neurons
    if problem.per_neuron:  # one H_i per neuron (qannealq.weighted): each row on its own Cholesky factor (of
        # its own order), in batches of neurons whose factors fit in memory at once
        chunk = _factor_batch(problem)
        return np.concatenate([_gptq_neurons(problem, np.arange(a, min(a + chunk, n)), restricted, percdamp,
                                             block_size, order) for a in range(0, n, chunk)])
    if order == "pivot":
        return _gptq_plane(problem, *_plane_factor(problem, percdamp), restricted, block_size)
    perm, u = _ordered_factor(problem.hessian, problem.dead, percdamp, order, _inverse_cholesky)
    return _gptq_on(problem, perm, u, restricted, block_size)


def _factor_batch(problem: LayerProblem) -> int:
    """How many neurons' ``(m, m)`` factors a per-neuron problem's GPTQ and beam hold at once: as many as fit in
    :data:`_CHUNK_BYTES`, or in an eighth of a smaller ``memory_limit``; at least one."""
    m = problem.num_coordinates
    limit = getattr(getattr(problem.stats, "objective", None), "memory_limit", None)
    return max(1, min(_CHUNK_BYTES, limit // 8 if limit else _CHUNK_BYTES) // (8 * m * m))


def _gptq_on(problem: LayerProblem, perm: np.ndarray, u: np.ndarray, restricted: bool,
             block_size: int = 128, rows: np.ndarray | slice = slice(None),
             squares: np.ndarray | None = None) -> np.ndarray:
    """GPTQ of the neurons ``rows`` of a shared ``H`` on its factor ``u`` in the input order ``perm``
    (:func:`_ordered_factor`), the in-block steps compiled (:func:`qannealq._gptq_beam.gptq_path`: the integers of
    :func:`_gptq_rows`, 6-10x faster than its numpy loop on MNIST's first layer, 3x on CIFAR-10's). ``perm`` may
    be the live inputs alone, with their factor (:func:`_ordered_factor` with ``live``): the inputs it leaves
    out, like the dead ones in it, keep their base integers (decoupled, they move no live one). ``squares``:
    :func:`qannealq._gptq_beam.gptq_path`'s (each row's ``Σ e_j²``, for :func:`_gptq_scores`)."""
    from qannealq._gptq_beam import gptq_path  # compiled on first use

    grid, out = problem.grid, problem.base[rows].copy()
    base, dead = out[:, perm], problem.dead[perm]
    lo, hi = (base, base + problem.free[rows][:, perm]) if restricted else (grid.lo, grid.hi)
    ints = gptq_path(problem.weights[rows][:, perm], problem.steps[rows][:, perm], lo, hi, float(grid.offset),
                     dead, u, block=block_size, squares=squares)
    out[:, perm] = np.where(dead, base, ints)
    return out


def _gptq_scores(problem: LayerProblem, ints: np.ndarray, squares: np.ndarray, damp: float, grad: np.ndarray,
                 rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """``E(q) − E(w)`` of GPTQ-restricted's grid integers ``ints`` of the neurons ``rows`` from its own pass, as
    :func:`qannealq._gptq_beam.beam_search` scores its states: ``Σ e_j² − λ ‖d‖² + 2 dᵀ (H w − c)`` over the
    live inputs (``squares`` ``Σ e_j²`` from :func:`_gptq_on`, ``d = q − w``, ``w`` the weights with dead inputs
    zero, ``damp`` the damping ``λ`` of the pass's factor, ``grad`` ``H w − c`` of those rows), without a product
    with ``H``. Exact but for the factor's rounding (the pass runs in float64)."""
    live = ~problem.dead
    d = np.where(live, problem.grid.dequantize(ints, problem.steps[rows]) - problem.weights[rows], 0.0)
    return squares - damp * np.einsum("ij,ij->i", d, d) + 2.0 * np.einsum("ij,ij->i", d, grad)  # d is 0 where dead


def _ordered_factor(hessian: np.ndarray, dead: np.ndarray, percdamp: float, order: str,
                    factor: Callable[[np.ndarray, np.ndarray, float], np.ndarray],
                    live: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The input ``order`` of ``H`` (:data:`ORDERS`) and GPTQ's factor of ``H`` in it: by ``factor`` (one of the
    inverse-Cholesky functions below) in index and act order, by the pivoted factorization in pivot order. With
    ``live``, of the live inputs alone: their order and the factor among them (a dead input is decoupled, so
    these are the full factor's live rows and columns; in pivot order formed without the full factor,
    :func:`_pivot_live_factor`)."""
    if order == "pivot":
        return _pivot_live_factor(hessian, dead, percdamp)[:2] if live else _pivot_factor(hessian, dead, percdamp)
    if order == "index":
        perm, u = np.arange(hessian.shape[0]), factor(hessian, dead, percdamp)
    else:
        perm = np.argsort(-np.diag(hessian), kind="stable")
        u = factor(submatrix(hessian, perm), dead[perm], percdamp)
    if not live or not dead.any():
        return perm, u
    keep = ~dead[perm]
    return perm[keep], u[np.ix_(keep, keep)]


def _gptq_neurons(problem: LayerProblem, rows: np.ndarray, restricted: bool, percdamp: float, block_size: int,
                  order: str, factored: list[tuple[np.ndarray, np.ndarray]] | None = None) -> np.ndarray:
    """GPTQ of the neurons ``rows`` of a per-neuron problem, each in its own ``order`` of its own ``H_i``
    (``factored``: their orders and factors from :func:`_neuron_factors`, when the caller has them; else formed
    here), one neuron at a time on the compiled path (:func:`qannealq._gptq_beam.gptq_path` on the
    neuron's factor: the integers of a plain problem whose ``H`` is ``H_i``). Until 2026-12-02 the rows ran the
    numpy loop (:func:`_gptq_rows`) on a stacked copy of their factors: on the relu-aware objective's MNIST
    first layer that copy (631 MB) and the loop took 1.1 s of a 2.4 s default solve."""
    from qannealq._gptq_beam import gptq_path  # compiled on first use

    grid = problem.grid
    factored = _neuron_factors(problem, rows, percdamp, order) if factored is None else factored
    out = np.empty((rows.size, problem.num_coordinates), np.int64)
    for r, i in enumerate(rows):
        perm, u = factored[r]
        dead, base = problem.dead[i, perm], problem.base[i:i + 1, perm]
        lo, hi = (base, base + problem.free[i:i + 1, perm]) if restricted else (grid.lo, grid.hi)
        ints = gptq_path(problem.weights[i:i + 1, perm], problem.steps[i:i + 1, perm], lo, hi, float(grid.offset),
                         dead, u, block=block_size)
        out[r, perm] = np.where(dead, base, ints)[0]
    return out


def _neuron_factors(problem: LayerProblem, rows: np.ndarray, percdamp: float,
                    order: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each of the neurons ``rows``' input ``order`` (:data:`ORDERS`) of its ``H_i`` and GPTQ's factor of
    ``H_i`` in that order, kept beside the ``H_i`` when memory allows (the same for every bit width: it depends
    on ``H_i`` and ``percdamp`` only).

    Those not kept are formed as many at a time as the CPU has cores, in threads (one BLAS thread each: forming
    ``H_i`` and its factorization release the GIL, :mod:`qannealq._lapack`). The threads only form; each result
    is then kept (or not) here, in this thread, its ``H_i`` first, as one neuron at a time would keep them, so
    what is kept and every result are the same. On the relu-aware objective's MNIST first layer (128 neurons of
    785 inputs) GPTQ's first run formed them in 3.0 s one at a time."""
    stats = problem.stats
    kind = ("gptq" if order == "index" else f"gptq-{order}", percdamp)

    def form(i: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        hessian = stats.held("hessian", i)
        hessian = stats.form_hessian(i) if hessian is None else hessian
        return hessian, _ordered_factor(hessian, problem.dead[i], percdamp, order, _inverse_cholesky)

    out = []
    workers = max(1, min(len(rows), os.cpu_count() or 1))
    with blas_threads(1), ThreadPoolExecutor(workers) as pool:
        for first in range(0, len(rows), workers):
            window = [int(i) for i in rows[first:first + workers]]
            missing = [i for i in window if stats.held(kind, i) is None]
            formed = dict(zip(missing, pool.map(form, missing)))
            for i in window:
                hessian, factor = formed.get(i, (None, None))
                out.append(stats.kept(kind, i, lambda: (stats.kept("hessian", i, lambda: hessian), factor)[1]))
    return out


def _gptq_rows(problem: LayerProblem, orders: np.ndarray, u: np.ndarray, dead: np.ndarray, restricted: bool,
               block_size: int, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """GPTQ of the neurons ``rows``, each row's inputs taken in its order (``orders`` ``(r, m)``), on the inverse
    Cholesky factor ``u`` ``(m, m)`` and ``dead`` inputs ``(m,)`` they share, all rows advancing position by
    position together: the numpy loop, the reference of the compiled path (:func:`qannealq._gptq_beam.gptq_path`,
    the same integers), which every GPTQ now runs. The integers come back in the rows' orders."""
    grid = problem.grid

    def ordered(a: np.ndarray) -> np.ndarray:  # row-major: the in-block row updates ran 5x slower column-major
        return np.ascontiguousarray(np.take_along_axis(a[rows], orders, axis=1))
    steps = ordered(problem.steps)
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
            err = (col - grid.dequantize(z, steps[:, j])) / u[j, j]
            w[:, j + 1:stop] -= np.outer(err, u[j, j + 1:stop])
            errs[:, j - start] = err
        w[:, stop:] -= errs @ u[start:stop, stop:]
    return np.where(dead, lo, ints)


def gptq(problem: LayerProblem, percdamp: float = GPTQ_PERCDAMP, block_size: int = 128,
         order: str = "index") -> np.ndarray:
    """GPTQ grid integers ``(n, m)`` (nearest level of the error-corrected weight), the inputs quantized in
    ``order``: ``"index"``, ``"act"`` or ``"pivot"`` (the module docstring)."""
    return _gptq(problem, False, percdamp, block_size, order)


def gptq_restricted(problem: LayerProblem, percdamp: float = GPTQ_PERCDAMP, block_size: int = 128,
                    order: str = "index") -> np.ndarray:
    """GPTQ restricted to each coordinate's floor/ceil: a valid QUBO assignment, as integers ``(n, m)``."""
    return _gptq(problem, True, percdamp, block_size, order)


#: The GPTQ baselines as ``(restricted, order)``: a restricted one's integers are each coordinate's floor or ceil
#: already (valid QUBO states as they are).
_GPTQ_FORMS = {"gptq": (False, "index"), "gptq-restricted": (True, "index"), "gptq-act": (False, "act"),
               "gptq-restricted-act": (True, "act"), "gptq-pivot": (False, "pivot"),
               "gptq-restricted-pivot": (True, "pivot")}

BASELINES = {"rtn": rtn, **{name: partial(gptq_restricted if restricted else gptq, order=order)
                            for name, (restricted, order) in _GPTQ_FORMS.items()}}

#: The warm starts a beam search widens (:func:`warm_start_integers`): GPTQ's forms, not RTN.
BEAM_STARTS = tuple(_GPTQ_FORMS)

#: The second damping of a warm start on a rank-deficient ``H``: see :func:`warm_start_integers`.
RANK_DEFICIENT_PERCDAMP = 0.001

#: The beam's damping on a full-rank ``H`` from :data:`FULL_RANK_BEAM_BITS` bits on (GPTQ's own start, at
#: :data:`GPTQ_PERCDAMP`, still competes): see :func:`warm_start_integers`.
FULL_RANK_BEAM_PERCDAMP = 0.003

#: The least bit width whose beam takes :data:`FULL_RANK_BEAM_PERCDAMP` on a full-rank ``H`` (below: GPTQ's).
FULL_RANK_BEAM_BITS = 4


def rank_deficient(problem: LayerProblem) -> bool:
    """The layer's shared ``H`` has fewer calibration samples than live inputs: it is singular beyond its dead
    inputs (False for a per-neuron problem, whose warm start is not affected)."""
    return not problem.per_neuron and problem.stats.num_samples < np.count_nonzero(~problem.dead)


#: Neurons of the pilot beam that chooses a rank-deficient layer's damping (:func:`warm_start_integers`).
PILOT_NEURONS = 32

#: How much lower the pilot's energy must be at GPTQ's damping for the beam to take it over the lower damping.
PILOT_MARGIN = 0.02

#: Under a time limit, the width of the damping pilot's beams (:func:`_beam_start`), the same in every block,
#: whatever the beam's: they only choose the damping, and one beam then searches every neuron at the chosen one.
#: Until 2026-12-05 they ran at the beam's width (widening from a width of 1 where the beam widens) within their
#: share of the time by neurons (about 6 % of the beams' time each on CIFAR-10's first layer, much of it their
#: set-up), and their neurons kept what they found. Under 4-5 GPTQ times that left them widths of 1-2, at which
#: GPTQ's damping ends lower (a beam of width 1 is GPTQ-restricted, whose errors GPTQ's damping steers away from
#: the unspanned directions), while the beam at the width the limit gives the rest ends far higher from it: runs
#: that took it ended 59-75 % above the best known against 26-43 % at the lower damping; and a pilot the limit
#: stopped left some of its neurons at GPTQ's own start. At 8 the pilot chooses as wider beams do: on CIFAR-10's
#: first layer the lower damping (the pilot's energy at GPTQ's damping over the lower one's, int4 / int2: 0.87 /
#: 0.58 at width 1, 1.25 / 1.03 at 8, 1.19 / 1.05 at 64), on MNIST's first layer with 256 calibration images
#: GPTQ's (0.57 / 0.45 at 1, 0.74 / 0.64 at 8, 0.75 / 0.73 at 64). CIFAR-10, five runs each way alternating
#: (int4 / int2, medians and worst runs above the best known): ``thorough`` under 4 GPTQ times 58.8 / 37.4 % (worst
#: 65.0 / 49.5) → 30.4 / 30.5 % (38.0 / 35.4), the default under 5× 26.9 / 25.5 % (38.7 / 26.6) → 25.0 / 25.4 %
#: (26.3 / 26.3), under 10× 17.8 / 19.4 → 17.5 / 19.0 % (docs/layer-sa.md, "The damping pilot under a time limit").
DEADLINE_PILOT_WIDTH = 8
#: Under a time limit, the most of the time left that each damping pilot's beam may take (it ends at its width;
#: where the limit cuts it, its choice is that of the width it reached).
DEADLINE_PILOT_SHARE = 0.25
#: Under a time limit, the damping pilot runs on one neuron in this many (at least a group of the beam,
#: :data:`qannealq._gptq_beam.GROUP`), at most :data:`PILOT_NEURONS`: on a layer of few neurons its neurons are
#: searched again by the beam, and 32 of 128 cost MNIST's first layer with 256 calibration images about 2.5 points
#: under 5 GPTQ times.
DEADLINE_PILOT_SPREAD = 16

#: The width of the pilot beams that choose the input order of a full-rank layer's beam (:func:`_beam_start`):
#: the beam runs in pivot order or in V-BLAST order (:func:`_blast_factor`), whichever gives the lower summed
#: energy on the :data:`PILOT_NEURONS` pilot neurons at this width. The better order is a property of the layer,
#: and a narrow beam shows it: at the default's width (196) the V-BLAST order starts 2.3 / 1.7 % lower (int4 /
#: int2) on EMNIST-letters' first layer, as low as the pivot order at twice the width, and 0.5 % lower on
#: MNIST's, while on Fashion-MNIST's it starts 5.0 / 4.2 % higher; the pilots at width 8 chose the better
#: order on all six (docs/layer-sa.md).
ORDER_PILOT_WIDTH = 8

#: Under a time limit the order pilot runs only where the beam's deadline leaves at least this many times the
#: start's factorizations' time (:func:`_order_pilot`): the pilot takes about two of them, and the order gains
#: about 1.3 times the beam's width on MNIST's first layer (2 on EMNIST-letters'), so that it pays for itself
#: there. On MNIST's first layer (the start's factorizations 20-45 ms in the solve) it runs from limits of
#: about 0.3-0.4 s on (15-20 GPTQ times), and its error under 20 and 30 GPTQ times is 0.34-0.58 % lower than
#: in pivot order; on EMNIST-letters' 1.1-2.2 % lower under 10-30 GPTQ times (docs/layer-sa.md).
ORDER_PILOT_ROOM = 10.0

#: On a rank-deficient ``H`` (under a time limit, where it leaves room: :data:`BOTH_ORDERS_ROOM`), a beam of at least
#: this width runs twice at the damping its pilot chose, in pivot order and in V-BLAST order (:func:`_blast_factor`),
#: and each neuron keeps the lower (:func:`_beam_start`). There a narrow pilot does not show the better order (on
#: CIFAR-10's first layer V-BLAST order ends 1.8 / 4.6 % lower at width 8, int4 / int2, but 1.6 / 3.2 % higher at 256),
#: while the two orders' beams find different states: each neuron's lower of the two beams of 256 ends 4.5 / 9.9 % below
#: pivot order's alone, where one beam of 512 ends 0.3 % above and 0.6 % below it, for about the same time (120
#: neurons). The default's whole solve on that layer then ends 3.9 / 3.5 % lower in 1.32 / 1.19 times the time
#: (docs/layer-sa.md).
BOTH_ORDERS_WIDTH = 64

#: Under a time limit, a rank-deficient layer's beam runs in both orders (:data:`BOTH_ORDERS_WIDTH`) only where the
#: beams' deadline, after the damping pilot, leaves at least this many times the start's factorizations' time:
#: the two beams then share it, each less than half as wide as one beam would be. On CIFAR-10's first layer (the
#: factorizations about 0.9 s, one GPTQ time; the default's beams get about 2, 3.3 and 4.5 s after the pilot under
#: 10, 15 and 20 GPTQ times) both orders on every run ended 1.1 / 3.0 % higher under 10 GPTQ times (int4 / int2;
#: two beams about 30 wide against one of about 95), 1.7 / 0.2 % lower under 15 and 2.2 / 1.3 % lower under 20;
#: with this rule (both orders from about 20 GPTQ times on), 1.7 / 0.3 % lower under 20 and 2.6 / 0.8 % lower under
#: 30 (``benchmarks/beam_order.py --limits``, docs/layer-sa.md).
BOTH_ORDERS_ROOM = 4.0


def warm_start_integers(problem: LayerProblem, name: str = DEFAULT_WARM_START, beam: int = 0,
                        paths: int = 1, growth: float = 1.0, pilot: bool = False,
                        deadline: Deadline | None = None) -> np.ndarray:
    """Grid integers ``(n, m)`` of baseline ``name`` restricted to each coordinate's floor/ceil: a valid QUBO
    state, the warm start the solve loop (and ``layer-sa`` without ``initial_states``) starts from.

    With ``beam`` > 0 on a shared ``H``, the start is a beam search of that width over the rounding choices of
    ``name``'s GPTQ (:mod:`qannealq._gptq_beam`: GPTQ-restricted in the same input order and factor, keeping
    each neuron's ``beam`` lowest-energy partial roundings instead of one), and GPTQ's own start (restricted)
    competes per neuron: the start is never worse than without the beam. The beam's best is far closer to the
    optimum than GPTQ's rounding: on MNIST's first layer (int4) a beam of 64 starts 4.7 % above the best-known
    energy and GPTQ-restricted 44 % (docs/layer-sa.md), for about 1.6 GPTQ times against GPTQ's old factor (about 8
    now). On per-neuron ``H_i`` (the relu-aware objective) each neuron's beam runs on its own factor
    (:func:`_neuron_beam_start`). On a full-rank ``H`` the beam runs in pivot order or in V-BLAST order,
    whichever pilot beams choose (:func:`_order_pilot`; under a ``deadline`` only where it leaves the pilot room,
    :data:`ORDER_PILOT_ROOM`); on a rank-deficient one in both, each neuron keeping the lower
    (:data:`BOTH_ORDERS_WIDTH`; under a ``deadline`` only where it leaves both room, :data:`BOTH_ORDERS_ROOM`).

    On a :func:`rank_deficient` ``H`` GPTQ's damping matters: the GPTQ paper's 1 % damps the directions the
    samples do not span, where rounding errors cost nothing, as much as the others and steers GPTQ's errors away
    from them. Without a beam, the start is computed twice, damped by :data:`GPTQ_PERCDAMP` and by
    :data:`RANK_DEFICIENT_PERCDAMP`, and each neuron keeps the one of lower energy. With a beam, a pilot beam of
    :data:`PILOT_NEURONS` neurons (spread over the layer) runs at both dampings, and the whole layer takes the
    lower damping unless the pilot's energy at GPTQ's is lower by more than :data:`PILOT_MARGIN`. The better
    damping is a property of the layer, and the start's energy alone does not show it near a tie: on
    CIFAR-10's first layer (1024 images, 3073 inputs) a beam of 64 starts 8 % above the best known at 0.001
    and 29 % at 0.01 (int4), while at int2 both start within 0.3 % of each other, yet the default anneal ends
    0.8 % above the best known from the 0.001 start and 3.2 % from the 0.01 one; on MNIST's first layer with
    256 images the 1 % start is 21-29 % lower and the anneal ends 12-16 % lower from it (docs/layer-sa.md).
    Running both on every neuron would double the beam's time.

    On a full-rank ``H`` the beam runs at :data:`FULL_RANK_BEAM_PERCDAMP` (0.3 %) from
    :data:`FULL_RANK_BEAM_BITS` (int4) on, where its small rounding errors gain from error feedback closer to
    ``H``'s own geometry, and at GPTQ's 1 % below, where large errors fed back undamped push the inputs left
    beyond their floor/ceil; GPTQ's own start at 1 % competes as above (the two factorizations side by side).
    Measured on the first layers of the MNIST, Fashion-MNIST and EMNIST-letters MLPs (docs/layer-sa.md): at int4 the
    default anneal ends 0.3-1.0 % closer to the best known from the 0.3 % beam, at int8 1.3 %, at int3 as
    close, at int2 0.1-1.0 % farther.

    Args:
        problem: the layer's QUBOs.
        name: the baseline (:data:`BASELINES`).
        beam: the beam's width (0: the baseline's own start). The solve loop takes the sampler's choice
            (:func:`qannealq.contract.warm_start_beam`: ``layer-sa``'s default effort asks for ``max(128, m / 4)``).
        paths: starts per neuron (1: the start, ``(n, m)``). More: ``(n, paths, m)``, the start first, then
            the beam's other final survivors spread over its width (:func:`qannealq._gptq_beam.beam_search`'s
            ``paths``), distinct starts for a population's reads (:func:`qannealq.contract.warm_start_paths`);
            copies of the start where no beam runs; ``(n, 1, m)``, the start alone, where a ``deadline`` leaves
            the search after it its polish alone (:attr:`qannealq._deadline.Deadline.polish`).
        growth: the beam's width in its last block over its first's (:func:`qannealq._gptq_beam.beam_widths`;
            ``beam`` is the last's; 1: a constant width). The solve loop takes the sampler's
            (:func:`qannealq.contract.warm_start_growth`).
        pilot: on a rank-deficient ``H`` without a beam, the layer's damping as a beam's (a pilot of
            :data:`PILOT_NEURONS` neurons at both dampings, then the rest at the chosen one) instead of both on
            every neuron, each keeping its lower-energy start: one GPTQ run and no energies of the whole layer
            instead of two of each. The solve loop takes the sampler's choice
            (:func:`qannealq.contract.warm_start_pilot`: ``layer-sa``'s, whose search goes on from the start).
            On CIFAR-10's first layer ``fast`` ends 2.0 % (int4) and 0.5 % (int2) lower from it (both dampings
            per neuron start 10 % lower, but at the paper's damping on the eighth of the neurons where it wins),
            and its start takes about half the time (docs/layer-sa.md).
        deadline: when the layer's solve should end (:class:`qannealq._deadline.Deadline`; None: no bound).
            The factorizations run in any case, first (the Cholesky factors alone in pivot order, their inverses
            where asked for: about 0.7 GPTQ times on CIFAR-10's first layer, where both dampings are factored;
            GPTQ's own starts, which only compete, after the beam and only where time is left: :func:`_beam_start`);
            the beam then takes the deadline's share of the time they leave
            (:meth:`qannealq._deadline.Deadline.search`), narrows to meet it and stops there, the neurons it did not
            reach starting from GPTQ's own start (:func:`_beam_start`), and sets ``deadline.cut`` where it did
            either. The solve loop takes the sampler's (:func:`qannealq.contract.warm_start_deadline`:
            ``layer-sa``'s time limit and shares).
    """
    if not isinstance(beam, (int, np.integer)) or isinstance(beam, bool) or beam < 0:
        raise InvalidArgumentError(f"beam={beam!r} must be an integer >= 0 (0: the baseline's own warm start)")
    if not isinstance(paths, (int, np.integer)) or isinstance(paths, bool) or paths < 1:
        raise InvalidArgumentError(f"paths={paths!r} must be an integer >= 1 (starts per neuron)")
    from qannealq._gptq_beam import check_growth  # the beam's own check (importing it compiles nothing)

    check_growth(growth)
    if paths > 1 and not (beam and not problem.per_neuron and name in BEAM_STARTS):  # one start: copies
        return np.repeat(warm_start_integers(problem, name, beam, growth=growth, pilot=pilot,
                                             deadline=deadline)[:, None], paths, axis=1)
    if name == "rtn":
        return problem.restrict(rtn(problem))
    if name not in _GPTQ_FORMS:
        raise InvalidArgumentError(f"warm start {name!r} is unknown: choose one of {', '.join(BASELINES)}")
    if beam:
        check_single_precision(problem, "the warm start's beam (warm_start_beam)")
    if beam and problem.per_neuron:
        return _neuron_beam_start(problem, name, int(beam), float(growth), deadline)
    restricted, order = _GPTQ_FORMS[name]
    dampings = (GPTQ_PERCDAMP, RANK_DEFICIENT_PERCDAMP) if rank_deficient(problem) else (GPTQ_PERCDAMP,)
    if beam and not problem.per_neuron:
        beam_at = _beam_damping(problem)  # None: a rank-deficient layer's pilot chooses
        if beam_at is not None and beam_at != GPTQ_PERCDAMP:  # GPTQ's own start competes at its damping too
            dampings = (GPTQ_PERCDAMP, beam_at)
        return _beam_start(problem, name, dampings, int(beam), int(paths), float(growth), beam_at, deadline)
    def start(percdamp: float) -> np.ndarray:
        ints = BASELINES[name](problem, percdamp=percdamp)
        return ints if restricted else problem.restrict(ints)

    if len(dampings) == 1:
        return start(dampings[0])
    if pilot:
        return _pilot_start(problem, restricted, order, dampings)

    # side by side (CIFAR-10's first layer: 2.1 s instead of 2.8 s on 2 cores, `fast`'s whole start)
    return _lowest(problem, _side_by_side(start, dampings))


#: A candidate start whose energy, estimated from its score (:func:`_lowest`), lies above the first candidate's
#: by more than this fraction of it takes no product with ``H``. The beam's scores come from float32 updates:
#: within 2e-5 of the energy (relative) on CIFAR-10's first layer at int4, 5e-7 on MNIST's.
SCORE_MARGIN = 1e-3


def _lowest(problem: LayerProblem, candidates: list[np.ndarray], barred: np.ndarray | None = None,
            scores: list[np.ndarray | None] | None = None) -> np.ndarray:
    """Each neuron's lowest-error row among ``candidates`` (grid integers ``(n, m)`` each; the first wins ties;
    ``barred``: neurons whose first candidate may not win), as grid integers ``(n, m)``.

    Each candidate's errors take one product of its rows with ``H`` (the QUBO is exact: no QUBO energies, whose
    linear terms take another product), side by side; the start's values and products are then gathered from
    the candidates' rows, and the problem remembers them (:meth:`LayerProblem.errors_from_products`), so that the
    solve loop's and the sampler's errors of the start take no product of their own: three products instead of
    five for the beam's start (0.76-0.96 s -> 0.44-0.50 s on CIFAR-10's first layer, BLAS on 2 threads).

    ``scores``: each candidate's ``E(q) − E(w)`` per neuron where known (the beam's, GPTQ-restricted's from its
    pass: :func:`_gptq_scores`; None or NaN: unknown). Then the first candidate's errors, less its scores, give
    each neuron's ``E(w)``, and another candidate's rows take a product only where its estimated energy lies
    within :data:`SCORE_MARGIN` of the first's, or is unknown: GPTQ's own starts lie 10-40 % above a beam of 8 or
    more on nearly every neuron, so their two products (0.3 s on CIFAR-10's first layer) mostly go. The pick is
    still by exact errors.
    """
    if scores is None or len(candidates) == 1 or scores[0] is None:
        values = [problem.grid.dequantize(ints, problem.steps) for ints in candidates]
        products = _side_by_side(problem.products, values)
        energies = np.stack([problem.errors_from_products(q, qh, remember=False) for q, qh in zip(values, products)])
    else:
        values = [problem.grid.dequantize(candidates[0], problem.steps)]
        products = [problem.products(values[0])]
        energies = np.full((len(candidates), problem.num_neurons), np.inf)
        energies[0] = problem.errors_from_products(values[0], products[0], remember=False)
        with np.errstate(invalid="ignore"):  # inf − inf where a beam reached no neuron: unknown
            floor = energies[0] - scores[0]
            if barred is not None:
                floor[barred] = np.nan
            for k in range(1, len(candidates)):
                estimate = floor + (np.nan if scores[k] is None else scores[k])
                rows = np.flatnonzero(~(estimate > energies[0] + SCORE_MARGIN * np.abs(energies[0])))
                q = problem.grid.dequantize(candidates[k][rows], problem.steps[rows])
                qh = problem.products(q) if rows.size else np.zeros_like(q)
                energies[k, rows] = problem.neuron_errors(q, rows, qh)
                values.append(np.zeros_like(values[0]))
                products.append(np.zeros_like(products[0]))
                values[k][rows], products[k][rows] = q, qh
    if barred is not None:
        energies[0, barred] = np.inf
    pick = energies.argmin(axis=0)

    def gathered(arrays: list[np.ndarray]) -> np.ndarray:
        out = arrays[0].copy()
        for k in range(1, len(arrays)):
            out[pick == k] = arrays[k][pick == k]
        return out

    problem.errors_from_products(gathered(values), gathered(products))
    return gathered(candidates)


def _leaves_room(deadline: Deadline | None, room: float, factoring: float) -> bool:
    """Whether ``deadline`` (None: none) leaves at least ``room`` times ``factoring`` (the seconds the warm start's
    factorizations took) for a second search: the order pilot's (:data:`ORDER_PILOT_ROOM`), a rank-deficient
    layer's second beam (:data:`BOTH_ORDERS_ROOM`)."""
    return deadline is None or deadline.left() >= room * factoring


def _pilot_neurons(n: int, count: int | None = None) -> np.ndarray:
    """The neurons of a pilot (:func:`warm_start_integers`): ``count`` (default :data:`PILOT_NEURONS`) spread over
    the layer, or all of a layer of at most twice as many."""
    everyone = np.arange(n)
    count = PILOT_NEURONS if count is None else count
    return everyone if n <= 2 * count else np.unique(np.linspace(0, n - 1, count).round().astype(np.int64))


def _pilot_pick(gptq_damped: float, less_damped: float) -> int:
    """Which of (GPTQ's damping, the lower one) a pilot chooses from its summed energies at each: GPTQ's only
    where lower by more than :data:`PILOT_MARGIN`."""
    return 0 if gptq_damped < (1.0 - PILOT_MARGIN) * less_damped else 1


def _pilot_start(problem: LayerProblem, restricted: bool, order: str, dampings: tuple[float, ...]) -> np.ndarray:
    """GPTQ's start (restricted) at the damping of ``dampings`` (GPTQ's and the lower one) that a pilot chooses
    (:func:`_pilot_neurons`, :func:`_pilot_pick`), as grid integers ``(n, m)``: both factorizations side by side,
    GPTQ on the pilot's neurons at each, then on the others at the chosen one."""
    n = problem.num_neurons

    def factor(percdamp: float) -> tuple[np.ndarray, np.ndarray]:
        if order == "pivot":
            return _plane_factor(problem, percdamp)
        return _ordered_factor(problem.hessian, problem.dead, percdamp, order, _inverse_cholesky)

    def run(factored: tuple[np.ndarray, np.ndarray], rows: np.ndarray) -> np.ndarray:
        ints = (_gptq_plane if order == "pivot" else _gptq_on)(problem, *factored, restricted, 128, rows)
        return ints if restricted else np.clip(ints, problem.base[rows], problem.base[rows] + problem.free[rows])

    factors = _side_by_side(factor, dampings)
    pilot = _pilot_neurons(n)
    trials = [run(f, pilot) for f in factors]
    energies = [problem.neuron_errors(problem.grid.dequantize(ints, problem.steps[pilot]), pilot).sum()
                for ints in trials]
    pick = _pilot_pick(*energies)
    out = np.empty((n, problem.num_coordinates), np.int64)
    out[pilot] = trials[pick]
    rest = np.setdiff1d(np.arange(n), pilot)
    if rest.size:
        out[rest] = run(factors[pick], rest)
    return out


#: Under a deadline, a full-rank layer's warm start in pivot order first forms its beam's Cholesky factorization
#: (:func:`_pivot_live_cholesky`), then asks what the beam's share of the limit would be once the factor is
#: formed (:func:`_no_time_for_beam`); under this many times the start's fixed costs, no beam runs: the start is
#: GPTQ's own on that factorization (:func:`_gptq_plane`: ``fast``'s start, without the inverse, the beam and the
#: candidates' products), and ``deadline.late`` is set (:meth:`qannealq._deadline.Deadline.mark_late`): the
#: search after it is the polish alone, whose fixed costs are the least (``layer-sa``'s ``late``; with the single
#: sweep after it instead, the default under 2 GPTQ times ended at 2.7-2.9 of them). The times are their fastest
#: in the process (:data:`_FASTEST`). On the first layers of the MNIST, EMNIST-letters and Fashion-MNIST MLPs
#: (int4, two runs each) the default's share read 0.12-0.39 times the fixed costs under 2 GPTQ times, 0.87-1.15
#: under 2.5, 1.38-1.89 under 3 and 3.0-3.4 under 4; ``thorough``'s 0.83-1.14 under 2. Before, the default under
#: 1.5-2 GPTQ times ran a beam on a few groups and ended where ``fast`` does (35.6 % above the best known on
#: MNIST, int4) in 2.1-2.8 GPTQ times; now in about ``fast``'s time (docs/layer-sa.md, "A limit too short for
#: the beam").
SKIP_BEAM = 0.6


def _no_time_for_beam(deadline: Deadline, product: float, cholesky: float, rows: float) -> bool:
    """Whether ``deadline`` leaves a full-rank layer's beam under :data:`SKIP_BEAM` times the start's fixed costs,
    as they will stand once its factor is formed: the product of the rows with ``H`` (``product`` seconds) and
    the factorization twice (``cholesky`` seconds: its triangular inverse takes as long), asked now, the inverse
    still to come (:meth:`qannealq._deadline.Deadline.search_seconds`, ``rows`` the rows per live input)."""
    scale = product + 2.0 * cholesky
    return deadline.search_seconds(scale, scale, rows) - cholesky < SKIP_BEAM * scale


#: Below this many inputs the warm start's factorization and GPTQ start at a single damping (a full-rank ``H``
#: below int4, or any full-rank ``H`` under a deadline, :func:`_beam_start`) run on one BLAS thread, as each of
#: two side by side does. numpy and scipy each load their own OpenBLAS here, and the threads of one spin for a
#: while after a call: scipy's two threads factoring right after numpy's product of the gradient then share two
#: cores with a spinning thread. On MNIST's first layer (785 inputs) the factorization then took 95-111 ms
#: instead of 17-26 (3 of 6 runs under 5 GPTQ times, each then left without a beam), and one thread factors it in
#: about the time two do; on CIFAR-10's (3073) two threads took 0.37-0.43 s against 0.56-0.61 s on one.
ONE_BLAS_INPUTS = 1024


def layer_blas_threads(problem: LayerProblem, beam: int) -> AbstractContextManager:
    """``with layer_blas_threads(problem, beam):`` runs a whole-layer solve of ``problem`` whose warm start has a beam
    of ``beam`` (its warm start and search) on one BLAS thread per library below :data:`ONE_BLAS_INPUTS` inputs, as
    the warm start's factorizations run there, whatever the caller set (given back after); the caller's threads on
    wider layers, without a beam and on per-neuron problems. The solve loop (:func:`qannealq.solve.quantize_layer`)
    and ``layer-sa``'s ``sample_layer`` called directly both take it.

    A beam's and a search's own threads use the cores: with the caller's BLAS on two threads beside them, the
    default under 80 ms on MNIST's first layer overran the limit in every process (its longest runs 84-97 ms, 76-80
    with this) and ended int4 runs up to 30 % above the best known (10 % with this; the medians moved within the
    noise), and unbounded took 313-384 ms (282-323 with this; docs/layer-sa.md, "The caller's BLAS threads").
    ``fast`` (no beam) runs nothing beside its products, which are faster on the caller's two threads: 21-23 ms,
    29-30 ms on one (three processes each). Per-neuron problems (``problem.per_neuron``: the relu-aware objective's
    ``H_i``): their factors and products were not measured on one."""
    narrow = problem.num_coordinates < ONE_BLAS_INPUTS and not problem.per_neuron
    return blas_threads(1 if narrow and beam > 0 else None)


def _side_by_side(fn: Callable, items: Iterable, alone: int | None = None) -> list:
    """``[fn(x) for x in items]``, two or more at once in threads (one BLAS thread each) where the CPU has the
    cores: the warm start's per-damping factors, GPTQ starts and energies are independent (GEMMs and compiled
    loops that release the GIL); on CIFAR-10's first layer the two pivoted factorizations took 2.6 s one after
    the other. ``alone``: the BLAS threads of a lone item (None: the caller's; see :data:`ONE_BLAS_INPUTS`)."""
    items = list(items)
    workers = min(len(items), os.cpu_count() or 1)
    if workers <= 1:
        with blas_threads(alone):
            return [fn(x) for x in items]
    with blas_threads(1), ThreadPoolExecutor(workers) as pool:  # not a shared pool: fn may use one (GPTQ's)
        return list(pool.map(fn, items))


def _neuron_beam_start(problem: LayerProblem, name: str, width: int, growth: float = 1.0,
                       deadline: Deadline | None = None) -> np.ndarray:
    """On per-neuron ``H_i``: each neuron's best state of a beam search of ``width`` on its own ``H_i``'s factor
    in ``name``'s input order, at GPTQ's damping (the factor ``name``'s own start uses, kept beside the ``H_i``
    where memory allows: :meth:`qannealq.weighted.WeightedLayerStats.kept`), or of that start (restricted),
    whichever is lower: grid integers ``(n, m)``.

    The neurons go in GPTQ's batches (:func:`_factor_batch`; the factors formed, or taken where kept): each
    batch's factors (:func:`_neuron_factors`: formed in threads, kept in this one) serve both ``name``'s own
    start (GPTQ's per-neuron path, the same integers as :data:`BASELINES`' ``name``) and the beams,
    :func:`qannealq._gptq_beam.beam_search` on one neuron at a time, in parallel threads (one BLAS thread each):
    where the factors do not fit in memory, the beam forms none of its own. Measured on MNIST's first layer
    (relu-aware, 1024 images, a beam of 196, ``layer-sa``'s default): the start 34-37 % lower than
    GPTQ-restricted's in pivot order, and the default anneal ends 22-24 % lower from it (docs/layer-sa.md). GPTQ's
    damping, where the shared ``H`` tries two: not measured on per-neuron ``H_i``. With a ``deadline`` no beam
    starts after the share of the time left that it gives the search (:meth:`qannealq._deadline.Deadline.search`;
    ``deadline.cut`` then set): those neurons start from ``name``'s own start.
    """
    from qannealq._gptq_beam import beam_search  # compiled on first use

    restricted, order = _GPTQ_FORMS[name]
    n, m = problem.weights.shape
    deadline = None if deadline is None else deadline.search(0.0)  # the factors come in batches, with the beams
    own = np.empty((n, m), np.int64)
    grad = problem.stats.hessian_products(np.where(problem.dead, 0.0, problem.weights)) - problem.stats.cross
    diagonals = problem.stats.hessian_diagonals
    choices = np.zeros((n, m), np.uint8)

    def search(i: int, perm: np.ndarray, factor: np.ndarray) -> None:
        if deadline is not None and deadline.left() <= 0:
            deadline.mark_cut()
            return  # choices all floor: the neuron keeps name's own start (lower energy below)
        dead = problem.dead[i]
        v, _ = beam_search(problem.weights[i:i + 1, perm], problem.steps[i:i + 1, perm],
                           problem.base[i:i + 1, perm], problem.free[i:i + 1, perm], float(problem.grid.offset),
                           dead[perm], factor, _diagonal_damping(diagonals[i], dead, GPTQ_PERCDAMP),
                           grad[i:i + 1, perm], width, threads=1, growth=growth)
        choices[i, perm] = v[0]

    batch = _factor_batch(problem)  # GPTQ's own chunks: the same integers as its per-neuron path
    with ThreadPoolExecutor(beam_thread_count()) as pool:  # the beams' threads (qannealq._pool.beam_threads)
        for first in range(0, n, batch):
            rows = np.arange(first, min(first + batch, n))
            factored = _neuron_factors(problem, rows, GPTQ_PERCDAMP, order)
            own[rows] = _gptq_neurons(problem, rows, restricted, GPTQ_PERCDAMP, 128, order,  # GPTQ's block size
                                      factored)
            with blas_threads(1):  # the beams read the same factors as GPTQ's start
                list(pool.map(lambda r: search(int(rows[r]), *factored[r]), range(rows.size)))
    own = own if restricted else problem.restrict(own)
    candidates = np.stack([own, problem.base + np.where(problem.free, choices, 0)])
    energies = np.stack([problem.qubo_energies(problem.encode(c)) for c in candidates])
    return candidates[energies.argmin(axis=0), np.arange(n)]


def _order_pilot(search: Callable, live: dict, percdamp: float, n: int, width: int,
                 deadline: Deadline | None, factoring: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The input order and factor a full-rank layer's beam runs in at ``percdamp`` (:func:`_beam_start`'s
    ``search``, its factors ``live`` in the warm start's own order, pivot order by default; ``n`` neurons, the
    beam's ``width``): that order's, or the V-BLAST order's (:func:`_blast_factor`) where pilot beams of
    :data:`ORDER_PILOT_WIDTH` on the :data:`PILOT_NEURONS` pilot neurons (:func:`_pilot_neurons`) end lower in
    it.

    The pivot order without a pilot where the layer has at most twice the pilot's neurons (the pilot would be
    the layer: on the second layers of the MNIST, Fashion-MNIST and EMNIST-letters MLPs, 10-26 neurons, the
    pilots at width 8 chose the pivot order on all six, which was the better order on four at the default's
    width), where the beam is narrower than twice the pilot's width, or under a ``deadline`` (the beam's) that
    leaves less than :data:`ORDER_PILOT_ROOM` times ``factoring`` (the seconds the start's factorizations took).
    The V-BLAST factor and the pilots take about twice the factorizations' time, 24-35 ms on MNIST's first layer:
    half the beam's time under 5 GPTQ times, where the order gains about 1.3 times the beam's width."""
    pivot = live[percdamp]
    if n <= 2 * PILOT_NEURONS or width < 2 * ORDER_PILOT_WIDTH or (
            not _leaves_room(deadline, ORDER_PILOT_ROOM, factoring)):
        return pivot
    blast = _blast_factor(*pivot, percdamp)
    pilot = _pilot_neurons(n)
    ends = [search(percdamp, pilot, ordered=o, narrow=ORDER_PILOT_WIDTH)[1].sum() for o in (pivot, blast)]
    return blast if ends[1] < ends[0] else pivot


def _beam_damping(problem: LayerProblem) -> float | None:
    """The damping the warm start's beam runs at on a layer of a shared ``H`` (:func:`warm_start_integers`): on
    a full-rank ``H`` :data:`FULL_RANK_BEAM_PERCDAMP` from :data:`FULL_RANK_BEAM_BITS` on, else GPTQ's; None on a
    rank-deficient one, where a pilot chooses between GPTQ's and :data:`RANK_DEFICIENT_PERCDAMP`. The beam
    benchmarks read it here."""
    if rank_deficient(problem):
        return None
    return FULL_RANK_BEAM_PERCDAMP if problem.grid.bits >= FULL_RANK_BEAM_BITS else GPTQ_PERCDAMP


def _beam_arguments(problem: LayerProblem, rows: np.ndarray, perm: np.ndarray, factor: np.ndarray,
                    percdamp: float, grad: np.ndarray | None = None) -> tuple:
    """:func:`qannealq._gptq_beam.beam_search`'s arguments before ``width`` for the neurons ``rows`` of a shared
    ``H`` in the input order ``perm`` with its ``factor`` (``U`` of ``H⁻¹`` damped by ``percdamp``, in that
    order); ``grad``: every neuron's ``H w − c`` (``w`` the weights with dead inputs zero; default: formed
    here). The warm start's beams, the tests and the beam benchmarks build them here."""
    dead = problem.dead
    if grad is None:
        grad = problem.weight_products - problem.stats.cross
    return (problem.weights[rows][:, perm], problem.steps[rows][:, perm], problem.base[rows][:, perm],
            problem.free[rows][:, perm], float(problem.grid.offset), dead[perm], factor,
            _damping(problem.hessian, dead, percdamp), grad[rows][:, perm])


def _beam_start(problem: LayerProblem, name: str, dampings: tuple[float, ...], width: int,
                paths: int = 1, growth: float = 1.0, beam_at: float | None = None,
                deadline: Deadline | None = None) -> np.ndarray:
    """Each neuron's best state of a beam search of ``width`` on the factor of ``name``'s input order and of
    ``name``'s own start (restricted) at each damping, as grid integers ``(n, m)``; the beam runs at ``beam_at``
    (one of ``dampings``) or, without one, at the one of two ``dampings`` (GPTQ's and the lower one) a pilot
    chooses (:func:`warm_start_integers`). With ``paths`` > 1, ``(n, paths, m)``: that state, then the
    beam's other survivors (at the beam's damping); ``(n, 1, m)`` where the deadline leaves what follows its
    polish alone (:attr:`qannealq._deadline.Deadline.polish`).

    The pilot compares the beam's own scores (:mod:`qannealq._gptq_beam`: each ``E(q) − E(w)`` with the same
    ``w``, across dampings too) plus ``E(w)``, so that its margin is relative to the energies themselves.

    With a ``deadline`` the beams take its share of the time the fixed costs leave (the factorizations:
    :meth:`qannealq._deadline.Deadline.search`), narrow to meet it and stop there
    (:func:`qannealq._gptq_beam.beam_search`): a neuron the beam did not reach starts from GPTQ's own start, its
    other paths copies of it; the pilot compares the neurons both its beams reached (none: the lower damping).
    GPTQ's own starts only compete with the beam, so under a deadline they run after it: first at the beam's
    damping (``beam_at`` on a full-rank ``H``, the pilot's choice on a rank-deficient one), then at the others
    (a full-rank layer's from int4 on, GPTQ's 1 %: a factorization and GPTQ; a rank-deficient layer's other
    damping, factored already for the pilot: GPTQ alone), each only where the beam ran at its full width and the
    deadline still leaves the time the fixed costs took and :data:`qannealq._deadline.RESERVE` times it for what
    follows; at the first that does not fit ``deadline.cut`` is set, and the neurons the beam did not reach take
    GPTQ's start at its damping, formed for them alone. In pivot order under a deadline the factorizations are the
    Cholesky factors alone (:class:`_LiveFactor`): the beams read them (``form="cholesky"``), and a factor's
    triangular inverse is formed only where GPTQ's own start or the V-BLAST order asks for it (the missed neurons'
    start is then GPTQ's on the Cholesky factor, :func:`_gptq_plane`). Until 2026-12-05 a rank-deficient layer's two
    GPTQ starts ran before its beam: on CIFAR-10's first layer they took 0.2-0.36 s and won at most 26 of 512
    neurons under 10 GPTQ times. So a deadline the whole start meets changes nothing, unless it leaves the order
    pilot too little room (:func:`_order_pilot`: the beam then keeps the warm start's own order) or a rank-deficient
    layer's second beam (:data:`BOTH_ORDERS_ROOM`: pivot order alone; where it leaves room, the pivot order's beam
    takes about half of the time left after the pilot), and a tight one gives the beam the time of starts that do
    not win there: on MNIST's first layer GPTQ's own start at the beam's damping won no neuron against a beam of 8
    or more (int4 and int2; 52 and 30 of 128 against a beam of 1), the one at 1 % none from a beam of 4 on (int4),
    and the two took a third of the 0.1 s a limit of 5 GPTQ times gives the layer.
    """
    from qannealq._gptq_beam import GROUP, beam_search  # compiled on first use

    begun = time.perf_counter()
    layer = deadline  # the whole start's (``deadline`` becomes the beams' share of it)
    ordered = dampings
    if deadline is not None and beam_at is not None:  # the others' GPTQ starts only compete: after the beam
        dampings = (beam_at,)
    restricted, order = _GPTQ_FORMS[name]
    dead, n = problem.dead, problem.num_neurons
    alone = 1 if problem.num_coordinates < ONE_BLAS_INPUTS else None  # a lone damping's BLAS threads
    cholesky = None
    if deadline is not None and beam_at is not None and order == "pivot":  # a lone damping: its factorization first
        live_h = problem.live_block(np.flatnonzero(~dead))  # the products' block (formed here if not yet)
        with blas_threads(alone):
            # on one BLAS thread each, the gradient's product (numpy's BLAS; the problem keeps it once formed) runs
            # beside the factorization (scipy's LAPACK): on MNIST's first layer under 5 GPTQ times, one after the
            # other, they took about 2 and 5-7 ms of the 10 before the beam, the other core idle
            pending = helper_pool().submit(lambda: problem.weight_products) if alone == 1 else None
            cholesky = _pivot_live_cholesky(problem.hessian, dead, beam_at, live_h=live_h)
            if pending is not None:
                pending.result()
            product = _fastest(("product", *problem.weights.shape), problem.product_seconds)  # the gradient's, timed
            skip = _no_time_for_beam(deadline, product, _FASTEST[("cholesky", cholesky[0].size)],
                                     n / max(1, cholesky[0].size))
            if skip:  # GPTQ's own start on this factorization, fast's
                ints = _gptq_plane(problem, np.flatnonzero(~dead)[cholesky[0]], cholesky[1], restricted)
        if skip:
            deadline.mark_late()
            ints = ints if restricted else np.clip(ints, problem.base, problem.base + problem.free)
            return ints if paths == 1 else np.repeat(ints[:, None], paths, axis=1)
    grad = problem.weight_products - problem.stats.cross

    def search(percdamp: float, rows: np.ndarray, later: int = 0, ordered: tuple | None = None,
               narrow: int | None = None, share: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The beam on ``rows`` at ``percdamp``; under a deadline, its share of the time left by neuron count
        (``later``: the neurons other searches will beam after it), or ``share`` of it. ``ordered``: its inputs'
        order and factor (default: the pivot order's, ``live[percdamp]``); ``narrow``: a pilot's width (one path,
        the same width in every block)."""
        perm, factor = live[percdamp] if ordered is None else ordered
        factor, form = factor.beam() if isinstance(factor, _LiveFactor) else (factor, "inverse")
        part = None if deadline is None else deadline.part(rows.size / (rows.size + later) if share is None else share)
        v, score = beam_search(*_beam_arguments(problem, rows, perm, factor, percdamp, grad),
                               width if narrow is None else narrow, paths=paths if narrow is None else 1,
                               growth=growth if narrow is None else 1.0, form=form, deadline=part)
        out = np.zeros((*v.shape[:-1], dead.size), np.uint8)  # dead inputs: floor (their rounding costs nothing)
        out[..., perm] = v
        return out, score

    # the beams and GPTQ's own starts run on the live inputs alone: the dead ones are decoupled in the damped H (a
    # unit diagonal), so the factor's live rows and columns are the live inputs' own factor, in the same order
    # (MNIST's first layer: 599 of 785 inputs; the default's solve 0.36-0.37 -> 0.34-0.36 s, the same start to
    # 1e-15), formed without the full factor in pivot order
    def factored(percdamps: tuple[float, ...], lazy: bool = False) -> dict[float, tuple]:
        """Each damping's live order and factor, side by side; ``lazy`` (pivot order): the Cholesky factors alone,
        their inverses formed where asked for (:class:`_LiveFactor`)."""
        def one(p: float) -> tuple:
            if lazy:
                factor = _LiveFactor(problem.hessian, dead, p, _pivot_live_cholesky(problem.hessian, dead, p))
                return factor.order, factor
            return _ordered_factor(problem.hessian, dead, p, order, _inverse_cholesky, True)

        return dict(zip(percdamps, _side_by_side(one, percdamps, alone)))

    def gptq_starts(factors: dict, rows: np.ndarray | slice = slice(None)) -> dict[float, tuple]:
        """GPTQ's own start at each damping of ``factors``, with its scores where restricted (from its pass:
        :func:`_gptq_scores`; None otherwise), for :func:`_lowest`."""
        base, free = problem.base[rows], problem.free[rows]

        def one(item: tuple) -> tuple[np.ndarray, np.ndarray | None]:
            percdamp, (perm, factor) = item
            factor = _inverse_factor(factor)
            if not restricted:
                return np.clip(_gptq_on(problem, perm, factor, False, rows=rows), base, base + free), None
            squares = np.empty(base.shape[0])
            ints = _gptq_on(problem, perm, factor, True, rows=rows, squares=squares)
            return ints, _gptq_scores(problem, ints, squares, _damping(problem.hessian, dead, percdamp), grad[rows],
                                      rows)

        return dict(zip(factors, _side_by_side(one, factors.items(), alone)))

    # under a deadline in pivot order the beams read the Cholesky factors, and the inverses wait for whoever asks
    # (GPTQ's own starts, the V-BLAST order: :class:`_LiveFactor`)
    lazy = deadline is not None and order == "pivot"
    if cholesky is None:
        live = factored(dampings, lazy)
    else:
        factor = _LiveFactor(problem.hessian, dead, beam_at, cholesky)
        live = {beam_at: (factor.order, factor)}
    # the deadline's split reads the fixed costs in the units its constants were measured in (RESERVE, KEEP_ROWS,
    # the keep and tight thresholds), the factorizations with their inverses, which what follows the beam does not
    # need either: an inverse not formed counts as the fastest pivoted Cholesky factorization of its size (the same
    # flops, m³ / 3; side by side, one), so that the beam gains its time and what follows keeps its own
    unformed = [f for _, f in live.values() if isinstance(f, _LiveFactor)]
    unpaid = _FASTEST.get(("cholesky", unformed[0].order.size), 0.0) if unformed else 0.0
    factoring = time.perf_counter() - begun + unpaid  # what follows the beam scales with it (Deadline.search's)
    # GPTQ's own start (restricted) at each damping competes per neuron: never worse than without the beam. Under
    # a deadline, after the beam, where time is left: from a beam of 8 on it never won on MNIST's first layer (int4
    # and int2, 128 neurons), and it took 8 of the 0.1 s a limit of 5 GPTQ times gives the layer; on CIFAR-10's
    # (rank-deficient, both dampings) it won 0-1 of 512 neurons at int4 and 0-26 at int2 under 10 GPTQ times, and
    # its two passes took 0.2-0.36 s of the 5 s before the beam (docs/layer-sa.md, "GPTQ's own starts after the
    # beam on a rank-deficient layer"); a neuron the beam did not reach starts from it in any case
    deferred = deadline is not None
    own = {} if deferred else gptq_starts(live)
    everyone = np.arange(n)
    fixed = time.perf_counter() - begun + unpaid
    if deadline is not None:  # the fixed costs paid: the beams' share of the time they leave, by steady measures
        lives = int(np.count_nonzero(~dead))
        factoring, fixed = _steady_costs((name, n, dead.size, lives, dampings, beam_at), factoring, fixed)
        deadline = deadline.search(fixed, factoring, rows=n / max(1, lives))
    asked = paths  # the shape asked for; ``paths`` is what the beams (``search``) and the gathering below form
    if deadline is not None and deadline.polish:  # the polish alone follows: one start a neuron, (n, 1, m)
        paths = 1
    if beam_at is not None:
        best, reached = search(beam_at, everyone, ordered=_order_pilot(search, live, beam_at, n, width, deadline,
                                                                      factoring))
    else:  # (GPTQ's damping, the lower one)
        # under a deadline the pilot only chooses, at its own narrow width on fewer neurons of a small layer, and
        # every neuron is beamed after it; without one it is the beam of its neurons
        narrow = DEADLINE_PILOT_WIDTH if deadline is not None and width > DEADLINE_PILOT_WIDTH else None
        pilot = _pilot_neurons(n, min(PILOT_NEURONS, max(GROUP, n // DEADLINE_PILOT_SPREAD)) if narrow else None)
        trials = [search(p, pilot, (len(dampings) - 1 - k) * pilot.size + n - pilot.size, narrow=narrow,
                         share=DEADLINE_PILOT_SHARE if narrow else None) for k, p in enumerate(dampings)]
        both = np.isfinite(trials[0][1]) & np.isfinite(trials[1][1])  # all, unless a deadline stopped a beam
        tried = pilot[both]  # E(w) of the pilot's neurons: the float weights' product, the beams' gradient's
        floor = problem.neuron_errors(np.where(dead, 0.0, problem.weights[tried]), tried,
                                      problem.weight_products[tried]).sum()
        pick = _pilot_pick(*(floor + score[both].sum() for _, score in trials)) if both.any() else 1  # E(w) too
        chosen = dampings[pick]
        two = width >= BOTH_ORDERS_WIDTH and _leaves_room(deadline, BOTH_ORDERS_ROOM, factoring)
        if narrow:  # under a deadline, with both orders to come, about half of the time left
            best, reached = search(chosen, everyone, n if two else 0)
        else:
            best = np.empty((n, *trials[0][0].shape[1:]), np.uint8)
            reached = np.empty(n)
            best[pilot], reached[pilot] = trials[pick]
            rest = np.setdiff1d(everyone, pilot)
            if rest.size:
                best[rest], reached[rest] = search(chosen, rest, n if two else 0)
        if two:  # a second beam in V-BLAST order, each neuron keeping the lower
            second, scores = search(chosen, everyone, ordered=_blast_factor(*live[chosen], chosen))
            lower = scores < reached
            best[lower], reached[lower] = second[lower], scores[lower]
    others = None
    if paths > 1:  # the beam's other survivors follow its start
        best, others = best[:, 0], problem.base[:, None] + np.where(problem.free[:, None], best[:, 1:], 0)
    missed = ~np.isfinite(reached)  # neurons no beam reached: GPTQ's own start
    beamed = problem.base + np.where(problem.free, best, 0)
    beam_scores = np.where(missed, np.nan, reached)
    # GPTQ's deferred starts, the beam's damping's, then the others' (on a full-rank layer a factorization each, and
    # GPTQ; on a rank-deficient one both dampings are factored already, for the pilot): where the
    # beam ran at its full width (not cut: a beam the limit narrowed leaves no time they would use well) and the
    # time the fixed costs took is still left, and what follows the start (RESERVE times it: the candidates'
    # energies, the search's polish). On MNIST's first layer under 0.2 s, the beam cut, the 1 % start ran 30 ms
    # before the limit where it needed only the first damping's time, and the layer ended 15-20 % late.
    first = beam_at if beam_at is not None else chosen  # the damping the beam ran at
    later = tuple(p for p in ordered if p != first)  # a rank-deficient layer's factored already, for its pilot
    for percdamps in ((first,), later) if deferred else ():
        if not percdamps:
            continue
        if not layer.cut and layer.left() >= (1.0 + RESERVE) * fixed:
            own.update(gptq_starts({p: live[p] for p in percdamps} if all(p in live for p in percdamps) else
                                   factored(percdamps)))
            continue
        layer.mark_cut()
        if percdamps[0] == first and missed.any():  # the beam's misses take GPTQ's start in its stead
            rows = np.flatnonzero(missed)
            factor = live[first][1]  # on the Cholesky factor where the inverse is not formed (no scores)
            plane = factor.plane(problem, restricted, rows) if isinstance(factor, _LiveFactor) else None
            if plane is None:
                beamed[rows], scores = gptq_starts({first: live[first]}, rows)[first]
            else:
                beamed[rows], scores = plane, None
            beam_scores[rows] = np.nan if scores is None else scores
            missed[:] = False
        break
    kept = [p for p in ordered if p in own]
    start = _lowest(problem, [beamed, *(own[p][0] for p in kept)], barred=missed,
                    scores=[beam_scores, *(own[p][1] for p in kept)])
    if others is not None:
        unreached = ~np.isfinite(reached)
        others[unreached] = start[unreached, None]  # its other paths: copies of its start
    if others is None:
        return start[:, None] if asked > 1 else start
    return np.concatenate([start[:, None], others], axis=1)
