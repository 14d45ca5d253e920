"""The dense view of many QUBOs that share one quadratic matrix, for the ``layer-sa`` kernel.

A :class:`DenseQubos` holds one symmetric matrix ``M`` ``(m, m)`` and, per problem ``i``, a scale vector
``d_i``, linear coefficients ``a_i``, a mask of free coordinates and an offset ``e_i``. Problem ``i``'s energy
of a binary row ``v`` is

    E_i(v) = e_i + Σ_j a_ij v_j + Σ_{j≠l} d_ij d_il M_jl v_j v_l .

A layer (ARCHITECTURE.md §1) is ``M = H``, ``d = steps``, ``a = linear``: then ``E_i`` is neuron i's BQM, whose
quadratic coefficient ``b_jl = 2 d_j d_l H_jl``. A single BQM is ``M = (B + Bᵀ) / 2`` (zero diagonal), ``d = 1``.
Nothing here ever forms a per-problem ``(m, m)`` matrix.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Callable

import dimod
import numpy as np

from qannealq._pool import shared_pool
from qannealq.backends._common import dense_binary
from qannealq.errors import InvalidArgumentError
from qannealq.formulation import LayerProblem, submatrix

__all__ = ["DenseQubos", "Deferred", "Rows", "continuous_floor", "coupling_strength", "ranked_partners",
           "run_ranking", "pair_partners", "chain_partners", "chain_hops", "beta_ends", "excess_ends", "beta_schedule",
           "greedy_tolerance", "MAX_EXPONENT", "HOP_BYTES"]

#: Largest ``β ΔE`` of an uphill move still tested: ``exp(-20) ~ 2e-9``, so a move beyond it is rejected without
#: drawing a number (the numba kernel and the torch path both). Numba freezes it into the compiled kernel,
#: whose on-disk cache is keyed on ``_layer_kernel.py`` alone: after changing it, touch that file.
MAX_EXPONENT = 20.0

#: Largest three-hop table of the chain partners' couplings (:func:`chain_hops`, ``m · k³`` entries): beyond
#: it (over 64 partners on CIFAR-10's first layer in float32) the chain moves read ``M`` instead.
HOP_BYTES = 1 << 28


class Deferred:
    """The ``(lin, offsets)`` of a :class:`DenseQubos`, formed by ``form`` on the first call and kept: copies of
    the problems (``dataclasses.replace``, e.g. a run's restriction to movable coordinates) share it, so they
    are formed once."""

    def __init__(self, form: Callable[[], tuple[np.ndarray, np.ndarray]]) -> None:
        self._form: Callable[[], tuple[np.ndarray, np.ndarray]] | None = form
        self._value: tuple[np.ndarray, np.ndarray] = (np.empty((0, 0)), np.empty(0))
        self._lock = threading.Lock()

    def __call__(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if self._form is not None:
                self._value, self._form = self._form(), None
            return self._value


@dataclass(frozen=True)
class DenseQubos:
    """Many QUBOs over one shared matrix (see the module docstring).

    Attributes:
        mat: shared symmetric ``M`` ``(m, m)`` float64 (C-contiguous).
        given_lin, given_offsets: ``a`` ``(n, m)`` and ``e`` ``(n,)`` (read as :attr:`lin` and :attr:`offsets`),
            or None where ``deferred`` forms them on first use: a layer's (:meth:`from_problem`) take a product
            of ``H`` with the layer's base values, which a ``fast`` solve on a wide layer never needs.
        steps: ``d`` ``(n, m)``; free: ``(n, m)`` bool.
        floors: optional lower bound of each problem's energy ``(n,)`` (a layer: :func:`continuous_floor`),
            which lets the anneal scale its temperatures to the energy left to gain.
        layer_inputs: the coordinates of that layer, dead and fixed ones included (the size by which its
            beam and population are chosen, :func:`._layer_schedule.population`); None: the matrix's.
        layer_neurons: the neurons of the layer these problems come from (its effort floor,
            :func:`._layer_schedule.effort`); None where they are not a layer's (one BQM).
        beamed: the problems start from the beam search over their shared matrix (a layer of one ``H``, the
            preset's beam: :func:`._layer_schedule.beam_width`), whose start the effort's ``beam_sweeps``
            polish (:func:`._layer_schedule.effort`).
        deferred: forms ``(a, e)`` where they are not given (:class:`Deferred`; shared by copies).
    """

    mat: np.ndarray
    given_lin: np.ndarray | None
    steps: np.ndarray
    free: np.ndarray
    given_offsets: np.ndarray | None
    floors: np.ndarray | None = None
    layer_neurons: int | None = None
    layer_inputs: int | None = None
    beamed: bool = False
    deferred: "Deferred | None" = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def lin(self) -> np.ndarray:
        """``a`` ``(n, m)``: as given, or formed on first use (:class:`Deferred`)."""
        return self.given_lin if self.given_lin is not None else self._deferred()[0]

    @property
    def offsets(self) -> np.ndarray:
        """``e`` ``(n,)``: as given, or formed on first use (:class:`Deferred`)."""
        return self.given_offsets if self.given_offsets is not None else self._deferred()[1]

    def _deferred(self) -> tuple[np.ndarray, np.ndarray]:
        if self.deferred is None:
            raise ValueError("DenseQubos needs lin and offsets, given or deferred")
        return self.deferred()

    @property
    def diag(self) -> np.ndarray:
        return np.ascontiguousarray(np.diag(self.mat))

    @classmethod
    def from_problem(cls, problem: LayerProblem, floors: bool = False) -> "DenseQubos":
        """All neurons of a layer: the shared ``H`` and the per-neuron vectors (no copy of ``H`` per neuron);
        with ``floors``, also each neuron's :func:`continuous_floor` (one linear solve with ``H``)."""
        c = np.ascontiguousarray
        deferred = Deferred(lambda: (c(problem.linear, dtype=np.float64), c(problem.offsets, dtype=np.float64)))
        return cls(c(problem.hessian, dtype=np.float64), None, c(problem.steps, dtype=np.float64),
                   c(problem.free, dtype=np.bool_), None, continuous_floor(problem) if floors else None,
                   problem.num_neurons, problem.num_coordinates, deferred=deferred)

    @classmethod
    def from_bqm(cls, bqm: dimod.BinaryQuadraticModel) -> tuple["DenseQubos", list]:
        """One BINARY BQM as a single problem; returns it and the variable labels in column order."""
        if bqm.vartype is not dimod.BINARY:
            raise InvalidArgumentError("from_bqm needs a BINARY BQM: convert it with change_vartype first")
        lin, mat, offset, labels = dense_binary(bqm)
        m = len(labels)
        ones = np.ones((1, m))
        return cls(mat, lin[None, :], ones, np.ones((1, m), bool), np.array([offset])), labels

    def live(self, block: "Callable[[np.ndarray], np.ndarray | None] | None" = None
             ) -> "tuple[DenseQubos, np.ndarray]":
        """The problems on their *live* coordinates only (free in at least one problem), and those indices.

        Exact: a coordinate fixed in every problem has ``v = 0`` there, so it adds nothing beyond ``a`` and
        ``e``. Wide layers with dead inputs (MNIST's borders) get a smaller matrix and cheaper flips. ``block``:
        ``M`` among given coordinates where the caller keeps that block, else None (a layer's
        :meth:`qannealq.formulation.LayerProblem.live_block`), read rather than taking the block again.
        """
        keep = np.flatnonzero(self.free.any(axis=0))
        if keep.size == self.free.shape[1]:
            return self, keep
        c = np.ascontiguousarray
        if self.given_lin is None:  # still deferred: formed (and cut to the live coordinates) on first use
            lin, coefficients = None, Deferred(lambda: (c(self.lin[:, keep]), self.offsets))
        else:
            lin, coefficients = c(self.lin[:, keep]), None
        kept = None if block is None else block(keep)
        kept = None if kept is None else c(kept, dtype=self.mat.dtype)  # the same array where it is (float64)
        return dataclasses.replace(self, mat=submatrix(self.mat, keep) if kept is None else kept, given_lin=lin,
                                   deferred=coefficients, steps=c(self.steps[:, keep]),
                                   free=c(self.free[:, keep])), keep

    def energies(self, v: np.ndarray, owner: np.ndarray | None = None) -> np.ndarray:
        """Energies of binary rows ``v`` ``(R, m)`` of problems ``owner`` (default: row i is problem i)."""
        own = np.arange(v.shape[0]) if owner is None else owner
        x = np.where(self.free[own], np.asarray(v, dtype=np.float64), 0.0)
        d = self.steps[own]
        u = d * x
        lin = self.lin[own] - d * d * np.diag(self.mat)
        return (self.offsets[own] + np.einsum("ij,ij->i", lin, x)
                + np.einsum("ij,ij->i", u @ self.mat, u))

    def single_flip_costs(self, v: np.ndarray, owner: np.ndarray | None = None) -> np.ndarray:
        """``ΔE`` of flipping each coordinate of rows ``v`` ``(R, m)`` of problems ``owner`` (default: row i is
        problem i); NaN where fixed."""
        own = np.arange(v.shape[0]) if owner is None else owner
        d = self.steps[own]
        u = d * v
        field = self.lin[own] + 2.0 * d * (u @ self.mat - np.diag(self.mat) * u)
        return np.where(self.free[own], np.where(v == 0, field, -field), np.nan)


@dataclass
class Rows:
    """States of many rows (reads) of the problems of a :class:`DenseQubos`, passed from polish to anneal.

    Attributes:
        v: binary states ``(R, m)`` uint8.
        owner: problem of each row ``(R,)``.
        energy: each row's energy ``(R,)`` (tracked by the kernel; the sampler recomputes the final ones).
        h: scaled up-fields ``(R, m)`` of the numba kernel (None from the torch run).
    """

    v: np.ndarray
    owner: np.ndarray
    energy: np.ndarray
    h: np.ndarray | None = None

    def take(self, index: np.ndarray) -> "Rows":
        """The rows ``index`` (copies)."""
        return Rows(self.v[index], self.owner[index], self.energy[index], None if self.h is None else self.h[index])

    def costs(self, dense: "DenseQubos") -> np.ndarray:
        """``ΔE`` of flipping each coordinate of each row ``(R, m)``, NaN where fixed (from ``h``: no product)."""
        if self.h is None:
            return dense.single_flip_costs(self.v, self.owner)
        dh = dense.steps[self.owner] * self.h
        return np.where(dense.free[self.owner], np.where(self.v == 0, dh, -dh), np.nan)


#: Where every neuron's error at its float weights is at most this share of its targets' mean square, those
#: errors are the floors (:func:`continuous_floor`): the least error over real rows lies between 0 and them.
FLOAT_FLOOR = 1e-9


def continuous_floor(problem: LayerProblem) -> np.ndarray:
    """Each neuron's least error over *real* rows: ``c_i − g_iᵀ H⁻¹ g_i`` ``(n,)``, a lower bound of its QUBO.

    Zero (to rounding) in float calibration, where the float weights reproduce the targets; the error carried
    from earlier quantized layers in sequential calibration. The float weights' own errors come first, from
    their product :attr:`LayerProblem.weight_products`, which the warm start's beam has formed already: the
    floor lies between 0 and them, so where every one is at most :data:`FLOAT_FLOOR` times its targets' mean
    square (float calibration, and the first layer in any calibration: 1e-13 of it on the first layers of the
    MNIST, Fashion-MNIST, EMNIST-letters and CIFAR-10 MLPs) they are the floors, clipped at 0: closer to it than
    the solve, whose ``c − gᵀH⁻¹g`` cancels to about 1e-9 of ``c`` there, in 0.06 against 10 ms on MNIST's first
    layer and 0.003 against 0.53 s on CIFAR-10's. Otherwise ``H`` gets a unit diagonal
    on dead inputs and a ``1e-9 · mean(diag)`` ridge, so that a singular ``H`` still solves; the result is
    clipped at 0. Solved by a Cholesky factorization (half the flops of LU: CIFAR-10's 3073 inputs in 0.52 s
    instead of 0.77 s, the floors within 1e-10 of the energies of LU's), by LU where roundoff leaves the damped
    ``H`` indefinite.
    """
    from scipy.linalg import LinAlgError, cho_factor, cho_solve

    weights = np.where(problem.dead, 0.0, problem.weights)
    own = problem.neuron_errors(weights, np.arange(problem.num_neurons), problem.weight_products)
    if np.all(own <= FLOAT_FLOOR * problem.stats.target_sq):
        return np.maximum(own, 0.0)
    h = problem.hessian.copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    h[np.diag_indices_from(h)] += 1e-9 * float(np.mean(np.diag(h)))
    cross = problem.stats.cross
    try:
        solved = cho_solve(cho_factor(h, check_finite=False), cross.T, check_finite=False)
    except LinAlgError:  # pragma: no cover - a Hessian plus a ridge is positive definite but for roundoff
        solved = np.linalg.solve(h, cross.T)
    floor = problem.stats.target_sq - np.einsum("ij,ji->i", cross, solved)
    return np.maximum(floor, 0.0)


def greedy_tolerance(lin: np.ndarray) -> np.ndarray:
    """Per problem, the least energy decrease a greedy move must bring: ``1e-10 (max_j |a_ij| + 1e-300)``.

    Incremental fields drift by rounding; without this margin a descent could cycle between two states whose
    energies differ only by that drift. ``lin`` is ``a`` ``(n, m)``; returns ``(n,)``.
    """
    return 1e-10 * (np.max(np.abs(lin), axis=1, initial=0.0) + 1e-300)


def coupling_strength(mat: np.ndarray) -> np.ndarray:
    """``|M_jl| / sqrt(M_jj M_ll)`` (the input correlation, for a Hessian; ``|M_jl|`` where the diagonal is
    zero), with a zero diagonal: how strongly each pair of coordinates is coupled."""
    diag = np.diag(mat)
    scale = np.where(diag > 0, np.sqrt(np.abs(diag)), 1.0)
    strength = np.abs(mat) / scale[:, None] / scale[None, :]
    np.fill_diagonal(strength, 0.0)
    return strength


def ranked_partners(mat: np.ndarray, k: int, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Each coordinate's ``k`` most strongly coupled others (:func:`coupling_strength`), strongest first, ties
    to the lower index: ``(partners (m, k) int64, strengths (m, k))``, ``k`` capped at ``m − 1``.

    One compiled pass over ``M`` in ``threads`` threads (:func:`._layer_rank.strongest_rows`) instead of the
    strength matrix and a partition of it per list: CIFAR-10's first layer (3073 inputs) in 0.016-0.018 s
    instead of 0.17 s measured alone (``benchmarks/partners_speed.py``), 0.3-1.2 s inside a run's setup;
    MNIST's (785) in 1.5 ms instead of 6.5 ms. :func:`pair_partners` and :func:`chain_partners` take their
    first columns.
    """
    from ._layer_rank import strongest_rows  # compiled on first use

    m = mat.shape[0]
    k = max(0, min(int(k), m - 1))
    part, value = np.zeros((m, k), np.int64), np.zeros((m, k))
    if k == 0:
        return part, value
    mat = np.ascontiguousarray(mat, dtype=np.float64)
    diag = np.diag(mat)
    scale = np.where(diag > 0, np.sqrt(np.abs(diag)), 1.0)
    bounds = np.linspace(0, m, max(1, min(int(threads), m // 256)) + 1).astype(np.int64)
    spans = list(zip(bounds[:-1], bounds[1:]))
    if len(spans) == 1:
        strongest_rows(mat, scale, part, value, 0, m)
    else:  # the process's pool (a pool of its own started its threads on every run's setup)
        list(shared_pool(len(spans)).map(lambda span: strongest_rows(mat, scale, part, value, *span), spans))
    return part, value


def run_ranking(mat: np.ndarray, params: dict, depth: int, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ranked_partners` of ``mat``, as many as a run's partner lists take: ``params["pairs"]`` for its
    pair flips and, where it moves chains (``depth`` >= 3), ``params["chain_partners"]``; both lists take the
    first columns of this one ranking."""
    width = max(int(params["pairs"]), int(params["chain_partners"]) if depth >= 3 else 0)
    return ranked_partners(mat, width, threads)


def _strongest(mat: np.ndarray, k: int, ranked: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` columns of ``ranked`` (:func:`ranked_partners` of ``mat``, computed when None) and which
    are live (a positive strength)."""
    part, value = ranked_partners(mat, k) if ranked is None else ranked
    k = max(0, min(int(k), mat.shape[0] - 1))
    if part.shape[1] < k:
        raise ValueError(f"ranked lists {part.shape[1]} partners per coordinate, fewer than the {k} asked for")
    return part[:, :k], value[:, :k] > 0


def _listed(mat: np.ndarray, part: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(partners, couplings M_jl)`` with ``-1`` and ``0`` where not live (one column of them when none)."""
    if part.shape[1] == 0:
        return np.full((mat.shape[0], 1), -1, np.int64), np.zeros((mat.shape[0], 1))
    part = np.where(live, part, -1).astype(np.int64)
    coup = np.where(live, np.take_along_axis(mat, np.maximum(part, 0), axis=1), 0.0)
    return np.ascontiguousarray(part), np.ascontiguousarray(coup)


def pair_partners(mat: np.ndarray, k: int, ranked: tuple[np.ndarray, np.ndarray] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most strongly coupled partners of every coordinate, strongest first, for pair flips
    (``ranked``: :func:`ranked_partners` of ``mat``, at least ``k`` of them, when the caller already has it).

    A pair listed by both ends is kept once (by its larger index).
    Returns ``(partners (m, k) int64, -1 = none; couplings M_jl (m, k))``.
    """
    part, live = _strongest(mat, k, ranked)
    k = part.shape[1]
    if k:  # each unordered pair once: j drops l < j when l already lists j
        m = mat.shape[0]
        listed = np.zeros((m, m), bool)
        listed[np.repeat(np.arange(m), k)[live.ravel()], part[live]] = True
        rows = np.arange(m)[:, None]
        live = live & ~(listed[part, rows] & (part < rows))
    return _listed(mat, part, live)


def chain_partners(mat: np.ndarray, k: int, ranked: tuple[np.ndarray, np.ndarray] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most strongly coupled partners of every coordinate, strongest first, for chain moves
    (``ranked`` as in :func:`pair_partners`, of ``mat`` or of the matrix ``mat`` copies); unlike pair partners,
    a pair is listed from both ends. Returns ``(partners (m, k) int64, -1 = none; couplings M_jl (m, k))``."""
    return _listed(mat, *_strongest(mat, k, ranked))


def chain_hops(mat: np.ndarray, nbr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The couplings a chain move reads, tabled along the partner lists ``nbr`` ``(m, k)`` (:func:`chain_partners`):
    ``hop2[a, s, t] = M[a, nbr[nbr[a, s], t]]`` and ``hop3[a, s, t, u] = M[a, nbr[nbr[nbr[a, s], t], u]]``
    (0 where a partner is missing), in ``mat``'s dtype.

    A chain's next member is a partner of its last; its coupling with the member before the last is two hops
    along the lists, with the one before that three. Read from the tables, a candidate's couplings lie next to
    its siblings' (one cache line for all ``k``) instead of in ``k`` rows of ``M`` scattered over 38 MB (CIFAR-10's
    first layer, float32). Empty tables (shape ``(0, 0, 0)`` and ``(0, 0, 0, 0)``) where ``hop3`` would exceed
    :data:`HOP_BYTES`: the kernel then reads ``M``.
    """
    m, k = nbr.shape
    if m * k ** 3 * mat.dtype.itemsize > HOP_BYTES or k == 0:
        return np.zeros((0, 0, 0), mat.dtype), np.zeros((0, 0, 0, 0), mat.dtype)
    live = nbr >= 0
    safe = np.where(live, nbr, 0)
    rows = np.arange(m)
    two, three = safe[safe], safe[safe[safe]]  # (m, k, k), (m, k, k, k): partners of partners (of partners)
    two_live = live[:, :, None] & live[safe]
    three_live = two_live[:, :, :, None] & live[two]
    hop2 = np.where(two_live, mat[rows[:, None, None], two], 0).astype(mat.dtype)
    hop3 = np.where(three_live, mat[rows[:, None, None, None], three], 0).astype(mat.dtype)
    return np.ascontiguousarray(hop2), np.ascontiguousarray(hop3)


def beta_ends(costs: np.ndarray, hot_acceptance: np.ndarray, cold_acceptance: float,
              beta_range: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Both ends of each row's geometric inverse-temperature schedule, from its problem's single-flip costs.

    Hot end: a flip costing the problem's median ``|ΔE|`` is accepted with probability ``hot_acceptance``
    (one value per row); cold end: one costing its 5th-percentile ``|ΔE|`` with ``cold_acceptance`` (so at the
    end only nearly free moves survive). ``beta_range`` overrides both with absolute values.

    Args:
        costs: single-flip ``ΔE`` of each row's start ``(R, m)``, NaN where fixed.
        hot_acceptance: ``(R,)`` values in (0, 1).
        cold_acceptance: in (0, 1).
        beta_range: optional absolute ``(hot, cold)``.

    Returns:
        ``(hot (R,), cold (R,))``, ``0 < hot <= cold``.
    """
    rows = costs.shape[0]
    if beta_range is not None:
        hot, cold = (float(b) for b in beta_range)
        if not 0 < hot <= cold:
            raise InvalidArgumentError(f"beta_range={beta_range!r} must satisfy 0 < hot <= cold")
        return np.full(rows, hot), np.full(rows, cold)
    mags = np.abs(costs) if costs.shape[1] else np.ones((rows, 1))  # no free variable: any schedule
    mags = np.where(mags > 0, mags, np.nan)
    mags[np.all(np.isnan(mags), axis=1)] = 1.0
    median = _row_nanquantile(mags, 0.5)
    low = _row_nanquantile(mags, 0.05)
    hot = np.log(1.0 / np.asarray(hot_acceptance, dtype=np.float64)) / median
    cold = np.maximum(np.log(1.0 / cold_acceptance) / low, hot)
    return hot, cold


def _row_nanquantile(a: np.ndarray, q: float) -> np.ndarray:
    """``np.nanquantile(a, q, axis=1)`` (its default ``linear`` method, bit for bit) for rows with at least one
    number, by one sort of all rows: numpy's loops over the rows in Python, which took 0.17 of 0.93 s of a default
    ``layer-sa`` solve on the digits MLP's first layer (3904 reads of 65 variables)."""
    ordered = np.sort(a, axis=1)  # NaN last
    last = np.maximum(np.sum(~np.isnan(a), axis=1) - 1, 0)
    virtual = last * float(q)
    below = np.floor(virtual)
    gamma = virtual - below
    lo_i = np.minimum(below.astype(np.int64), last)[:, None]
    hi_i = np.minimum(below.astype(np.int64) + 1, last)[:, None]
    lo, hi = np.take_along_axis(ordered, lo_i, 1)[:, 0], np.take_along_axis(ordered, hi_i, 1)[:, 0]
    diff = hi - lo
    return np.where(gamma >= 0.5, hi - diff * (1 - gamma), lo + diff * gamma)  # numpy's _lerp


def excess_ends(excess: np.ndarray, free: np.ndarray, hot_temperature: float, cold_temperature: float,
                hot_factor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Schedule ends scaled to the energy left to gain, for problems with a known floor.

    A row whose problem has ``excess = E − floor`` at the start and ``f`` free variables runs from the
    temperature ``hot_temperature · excess / √f`` (times ``hot_factor``, its rung of the read ladder) down to
    ``cold_temperature · excess / f``. Measured on the MNIST and CIFAR-10 first layers (785 and 3073 inputs,
    int4 and int2), the best hot end at a fixed number of sweeps scales like ``excess / √f``, the best cold
    end like ``excess / f``; scales from single-flip costs (:func:`beta_ends`) fit one layer and miss the other.

    Returns:
        ``(hot (R,), cold (R,))`` inverse temperatures, ``0 < hot <= cold``.
    """
    f = np.maximum(free.sum(axis=1), 1).astype(np.float64)
    gap = np.maximum(excess, 1e-300)
    hot = np.sqrt(f) / (hot_temperature * gap * np.asarray(hot_factor, dtype=np.float64))
    cold = np.maximum(f / (cold_temperature * gap), hot)
    return hot, cold


def beta_schedule(hot: np.ndarray, cold: np.ndarray, num_sweeps: int) -> np.ndarray:
    """Geometric inverse-temperature schedules ``(R, num_sweeps)`` between the ends ``hot`` and ``cold``."""
    t = np.linspace(0.0, 1.0, num_sweeps)[None, :] if num_sweeps > 1 else np.zeros((1, num_sweeps))
    return hot[:, None] * (cold / hot)[:, None] ** t
