"""The exact rounding QUBO of a dense layer (ARCHITECTURE.md §1), one neuron at a time.

Notation (augmented rows, ``m = f + 1`` coordinates with a bias, ``f`` without):

* ``H = X̂ᵀX̂ / N`` (shared by every neuron), ``g_i = X̂ᵀ y_i / N``, ``c_i = mean(y_i²)``;
  ``E_i(q) = qᵀ H q − 2 qᵀ g_i + c_i`` is neuron i's mean squared pre-activation error.
* ``q_ij = d_ij (k_ij + v_ij + o)`` with ``k`` the clipped floor, ``v ∈ {0, 1}`` and the grid offset ``o``.
  With the base values ``u_i = d_i ∘ (k_i + o)`` the BQM of neuron i is, exactly,

      linear  a_ij = d_ij² H_jj + 2 d_ij (H u_i)_j − 2 d_ij g_ij
      quad    b_ijl = 2 d_ij d_il H_jl                  (j < l)
      offset  e_i  = u_iᵀ H u_i − 2 u_iᵀ g_i + c_i

Coordinates whose floor was clipped, whose ``k + 1`` leaves the range, or whose input is dead
(``H_jj = 0``, rounded to nearest) are fixed and are not variables. BQM variables are labelled by their
coordinate index ``j`` (``j = f`` is the bias).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar, Mapping

import dimod
import numpy as np

from qannealq.errors import InvalidArgumentError, NonFiniteError
from qannealq.grid import Grid

__all__ = ["LayerStats", "LayerProblem", "DecodedRow", "build_problem", "submatrix", "check_single_precision"]


def submatrix(mat: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``mat[np.ix_(index, index)]`` as a new C-contiguous array, by two ``take``s: the same values, about
    three times faster on the 600-coordinate neuron matrices of MNIST's first layer (0.3 against 0.9 ms)."""
    return mat.take(index, axis=0).take(index, axis=1)


@dataclass(frozen=True)
class LayerStats:
    """Calibration statistics of one layer (float64).

    Attributes:
        hessian: ``H = X̂ᵀX̂ / N``, shape ``(m, m)``.
        cross: rows ``g_i = X̂ᵀ y_i / N``, shape ``(n, m)``.
        target_sq: ``c_i = mean_s y_is²``, shape ``(n,)``.
        num_samples: ``N``.
    """

    hessian: np.ndarray
    cross: np.ndarray
    target_sq: np.ndarray
    num_samples: int

    @classmethod
    def from_arrays(cls, inputs: np.ndarray, targets: np.ndarray, bias: bool = True) -> "LayerStats":
        """Statistics of inputs ``(N, f)`` and targets ``(N, n)`` (augmented with a ones column if ``bias``)."""
        x = np.asarray(inputs, dtype=np.float64)
        y = np.asarray(targets, dtype=np.float64)
        if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise InvalidArgumentError(
                f"inputs (N, f) and targets (N, n) must be 2-D with the same N > 0, got {x.shape} and {y.shape}"
            )
        if bias:
            x = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
        n_s = x.shape[0]
        return cls(x.T @ x / n_s, y.T @ x / n_s, np.mean(y * y, axis=0), n_s)


#: Results :meth:`LayerProblem.errors` remembers (the latest; found by comparing the values themselves).
ERRORS_REMEMBERED = 2
#: :meth:`LayerProblem.errors` of rows that differ from a remembered result's in at most this share of their
#: entries forms their product from that result's (:func:`qannealq._near.products_near`: each changed entry's row
#: of ``H``, ``k`` of them ``k · m`` operations against ``n · m²`` for the product): a solution after a polish or
#: a short search keeps most of its warm start.
NEAR_SHARE = 1 / 32
_REMEMBER_LOCK = threading.Lock()


class _NotPickled(list):
    """A problem's record of its own results or timings: never pickled (an executor's copy of the problem, in
    another process on other cores, starts without it). :attr:`LayerProblem.product_seconds`' record holds one
    float once a product was timed."""

    def __reduce__(self):
        return (type(self), ())


class _Remembered(_NotPickled):
    """:meth:`LayerProblem.errors`'s latest ``(values, errors, values @ H)``, the oldest first; never pickled."""

    def find(self, values: np.ndarray) -> tuple | None:
        """The entry of exactly these ``values`` (the same shape and every value equal), else None."""
        with _REMEMBER_LOCK:
            entries = list(self)
        for entry in entries:
            if entry[0].shape == values.shape and np.array_equal(entry[0], values):
                return entry
        return None

    def near(self, values: np.ndarray, most: int) -> tuple[tuple, np.ndarray, np.ndarray] | None:
        """The entry whose values differ from ``values`` (the same shape) in the fewest entries, at most ``most``,
        with the rows and columns of those entries (``np.nonzero``); None where there is none."""
        with _REMEMBER_LOCK:
            entries = list(self)
        best, fewest = None, most + 1
        for entry in entries:
            if entry[0].shape != values.shape:
                continue
            changed = entry[0] != values
            count = np.count_nonzero(changed)
            if count < fewest:
                best, fewest = (entry, changed), count
        return None if best is None else (best[0], *np.nonzero(best[1]))

    def keep(self, entry: tuple) -> None:
        with _REMEMBER_LOCK:
            self.append(entry)
            del self[:-ERRORS_REMEMBERED]


@dataclass(frozen=True)
class DecodedRow:
    """A decoded neuron: grid integers and their values, both of shape ``(m,)``."""

    integers: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class LayerProblem:
    """All neuron QUBOs of one layer, stored once: the shared ``H`` plus per-neuron vectors.

    Attributes:
        stats: calibration statistics.
        grid: the quantization grid.
        weights: float augmented rows ``[W_i, b_i]``, shape ``(n, m)``.
        steps: step ``d_ij`` of every coordinate, ``(n, m)``.
        base: clipped floor integers ``k`` (nearest for dead inputs), ``(n, m)``.
        free: which coordinates are BQM variables, ``(n, m)`` bool.
        per_neuron: False here: every neuron shares ``H``. True for :mod:`qannealq.weighted`'s problems, which
            have one ``H_i`` per neuron (ARCHITECTURE.md §1, weighted form) and no shared :attr:`hessian`.
    """

    per_neuron: ClassVar[bool] = False
    stats: LayerStats
    grid: Grid
    weights: np.ndarray
    steps: np.ndarray
    base: np.ndarray
    free: np.ndarray
    has_bias: bool = True
    name: str = field(default="layer")

    @property
    def num_neurons(self) -> int:
        return self.weights.shape[0]

    @property
    def num_coordinates(self) -> int:
        return self.weights.shape[1]

    @property
    def hessian(self) -> np.ndarray:
        return self.stats.hessian

    @cached_property
    def single_precision_excess(self) -> tuple[str, float, float, float] | None:
        """The first magnitude outside what a float32 search holds (:func:`check_single_precision`), as ``(what,
        value, lo, hi)``, or None. By column maxima: two passes over ``(n, m)``, not six (3.5 ms on MNIST's first
        layer, 44 on CIFAR-10's)."""
        if not np.any(self.free):
            return None
        steps = self.steps  # positive; a row's fixed coordinates share its free ones' step
        if self.per_neuron:  # one H_i per neuron: its diagonals (n, m)
            diagonals = self.stats.hessian_diagonals
            output = float(np.max(steps * np.sqrt(diagonals)))
            weight = float(np.max(np.abs(self.weights), where=diagonals > 0, initial=0.0))
        else:
            diagonals = np.diag(self.hessian)
            output = float(np.max(steps.max(axis=0) * np.sqrt(diagonals)))
            weight = float(np.max(np.abs(self.weights).max(axis=0), where=diagonals > 0, initial=0.0))
        for what, value, (lo, hi) in (("largest grid step", float(steps.max()), SINGLE_STEPS),
                                      ("largest diagonal of H (mean squared input)", float(np.max(diagonals)),
                                       SINGLE_DIAGONALS),
                                      ("largest weight", weight, (0.0, SINGLE_WEIGHTS)),
                                      ("largest grid step times the root of its H diagonal (a step's effect on the "
                                       "output: weight times input)", output, SINGLE_OUTPUTS)):
            if value > 0 and not lo <= value <= hi:
                return what, value, lo, hi
        return None

    @cached_property
    def dead(self) -> np.ndarray:
        """Coordinates whose input is always zero (``H_jj = 0``), shape ``(m,)``."""
        return np.diag(self.hessian) <= 0.0

    @cached_property
    def _live_hessian(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The live inputs and ``H`` among them, where an eighth or more of the inputs are dead (MNIST's first
        layer: 186 of 785), for :meth:`products`; else None."""
        dead = self.dead
        if np.count_nonzero(dead) * 8 < dead.size:
            return None
        live = np.flatnonzero(~dead)
        return live, submatrix(self.hessian, live)

    def live_block(self, index: np.ndarray) -> np.ndarray | None:
        """``H`` among the coordinates ``index`` where they are exactly the live inputs whose block
        :meth:`products` keeps (an eighth or more of the inputs dead), else None. The block is shared: read it,
        never write it. On MNIST's first layer ``layer-sa``'s live coordinates are these, and taking the block
        again cost 3-4 ms of the tail after its beam (fresh pages, "Benchmarks" in the README)."""
        live_h = self._live_hessian
        if live_h is None or not np.array_equal(live_h[0], index):
            return None
        return live_h[1]

    def products(self, values: np.ndarray) -> np.ndarray:
        """``values @ H`` of rows ``values`` ``(k, m)``. A dead input's row and column of ``H`` are zero, so where
        there are many (:attr:`_live_hessian`) the product runs over the live inputs alone, its dead columns
        zero: the same to rounding (the zero terms left out), in 0.6 of the time on MNIST's first layer (599 of
        785 inputs live: 2.4 against 3.7 ms on one BLAS thread for the layer's 128 rows). A product of every row
        is timed (:attr:`product_seconds`)."""
        begun = time.perf_counter()
        live_h = self._live_hessian
        if live_h is None:
            out = values @ self.hessian
        else:
            live, h = live_h
            out = np.zeros(values.shape, np.result_type(values, h))
            out[:, live] = values[:, live] @ h
        if values.shape[0] == self.num_neurons:
            seconds = time.perf_counter() - begun
            timing = self._product_timing
            with _REMEMBER_LOCK:
                timing[:] = [min(timing + [seconds])]
        return out

    @cached_property
    def _product_timing(self) -> _NotPickled:
        return _NotPickled()

    @property
    def product_seconds(self) -> float:
        """The fastest product of all the layer's rows with ``H`` timed on this problem (:meth:`products`, which
        :meth:`errors` and the warm start's beam call), in seconds; 0.0 where none was. ``layer-sa`` measures what
        follows its warm start in such products."""
        timing = self._product_timing
        return float(timing[0]) if timing else 0.0

    @cached_property
    def weight_products(self) -> np.ndarray:
        """``w_i H`` of every neuron's float weights, dead inputs zero, ``(n, m)`` (read-only): one product that
        the warm start's beam (its gradient ``H w − c``) and ``layer-sa``'s floors (the float weights' own errors)
        share, where each took its own (CIFAR-10's first layer: 0.08-0.2 s each)."""
        out = self.products(np.where(self.dead, 0.0, self.weights))
        out.flags.writeable = False
        return out

    @cached_property
    def base_values(self) -> np.ndarray:
        """``u = d ∘ (k + o)``, the values at ``v = 0``."""
        return self.grid.dequantize(self.base, self.steps)

    @cached_property
    def _base_products(self) -> np.ndarray:
        """``H u_i`` of every neuron's base values ``(n, m)``: one product for :attr:`linear` and :attr:`offsets`."""
        return self.products(self.base_values)

    @cached_property
    def linear(self) -> np.ndarray:
        """Linear coefficients ``a`` of every coordinate, ``(n, m)`` (used only where ``free``)."""
        d, h = self.steps, self.hessian
        return d * d * np.diag(h) + 2.0 * d * self._base_products - 2.0 * d * self.stats.cross

    @cached_property
    def offsets(self) -> np.ndarray:
        """Constant ``e_i = E_i(u_i)`` of every neuron, ``(n,)`` (:meth:`errors` of the base values)."""
        return self._errors(self.base_values, self._base_products)

    def variables(self, i: int) -> np.ndarray:
        """Coordinate indices that are variables of neuron ``i``'s BQM."""
        return np.flatnonzero(self.free[i])

    def neuron_hessian(self, i: int) -> np.ndarray:
        """Neuron ``i``'s ``H`` ``(m, m)``: the layer's shared one here (per-neuron problems have their own)."""
        return self.hessian

    def quadratic_matrix(self, i: int) -> np.ndarray:
        """Neuron ``i``'s dense quadratic matrix over its variables, ``2 d_j d_l H_jl`` (diagonal zeroed)."""
        idx = self.variables(i)
        d = self.steps[i, idx]
        q = 2.0 * (d[:, None] * submatrix(self.neuron_hessian(i), idx) * d[None, :])
        np.fill_diagonal(q, 0.0)
        return q

    def neuron_bqm(self, i: int) -> dimod.BinaryQuadraticModel:
        """The exact BQM of neuron ``i``: energy of a sample == ``E_i`` of its decoded row."""
        self._check_neuron(i)
        idx = self.variables(i)
        bqm = dimod.BinaryQuadraticModel(
            self.linear[i, idx], np.triu(self.quadratic_matrix(i), 1), float(self.offsets[i]), "BINARY"
        )
        bqm.relabel_variables(dict(enumerate(idx.tolist())), inplace=True)
        return bqm

    @cached_property
    def _remembered(self) -> _Remembered:
        return _Remembered()

    def errors(self, values: np.ndarray) -> np.ndarray:
        """Reconstruction error ``E_i`` of each row of ``values`` ``(n, m)``, by matrix products.

        The latest :data:`ERRORS_REMEMBERED` results are remembered with their values and their product ``values
        @ H`` (a copy of the errors is returned): a solve asks for the same rows' errors twice, the warm start's
        (the solve loop's record and a whole-layer sampler's guard) and the solution's (the sampler's and the
        result's), and each is one product of ``H`` with the layer's rows (3 ms of a 35 ms ``fast`` solve on
        MNIST's first layer, 0.09 s on CIFAR-10's); ``layer-sa`` forms its warm start's up-fields from the
        product (:meth:`remembered_products`). Comparing the values costs a fortieth of a product. Rows that differ
        from a remembered result's in at most :data:`NEAR_SHARE` of their entries take their product from its
        (:func:`qannealq._near.products_near`, the same to rounding): ``layer-sa``'s solution after a polish, 1.8-1.9
        ms -> about 0.3 ms on MNIST's first layer.
        """
        q = np.ascontiguousarray(values, dtype=np.float64)
        if q.shape != self.weights.shape:  # one row (1, m) was broadcast against every neuron's g and c
            raise InvalidArgumentError(f"values has shape {q.shape}: errors takes every neuron's row, "
                                       f"{self.weights.shape} (neuron_errors takes some)")
        known = self._remembered.find(q)
        if known is not None:
            return known[1].copy()
        near = None if self.per_neuron else self._remembered.near(q, int(NEAR_SHARE * q.size))
        if near is not None:  # few entries changed: the known product plus their rows of H
            from qannealq._near import products_near  # compiled on first use
            (start, _, start_products), rows, cols = near
            products = products_near(q, start, start_products, self.hessian, rows, cols)
        else:
            products = self.products(q)
        out = self._errors(q, products)
        self._keep(q, out, products)
        return out

    def _keep(self, q: np.ndarray, out: np.ndarray, products: np.ndarray) -> None:
        """Remember the errors ``out`` of the rows ``q`` and their product ``products`` (owned from here on: made
        read-only); the rows and errors are copied, since the caller may change its own."""
        products.flags.writeable = False
        self._remembered.keep((q.copy(), out.copy(), products))

    def errors_from_products(self, values: np.ndarray, products: np.ndarray, remember: bool = True) -> np.ndarray:
        """:meth:`errors` of ``values`` from their product ``values @ H`` formed by the caller (not checked; e.g.
        rows gathered from the products of several candidates' rows, as the warm start's beam has them), and
        with ``remember`` kept as :meth:`errors` keeps its own (copies), so that later calls of :meth:`errors` and
        :meth:`remembered_products` on these values find them."""
        if self.per_neuron:
            raise InvalidArgumentError("errors_from_products needs a shared H; this problem has one H_i per neuron "
                                       "(use errors(values))")
        q = np.ascontiguousarray(values, dtype=np.float64)
        if np.shape(products) != q.shape:
            raise InvalidArgumentError(f"products has shape {np.shape(products)}, values {q.shape}: pass values @ H")
        out = self._errors(q, np.asarray(products, dtype=np.float64))
        if remember:
            self._keep(q, out, np.array(products, dtype=np.float64, order="C"))  # a copy: the caller keeps its own
        return out

    def remembered_products(self, values: np.ndarray) -> np.ndarray | None:
        """``values @ H`` (read-only) where :meth:`errors` of exactly these ``values`` is remembered, else None."""
        known = self._remembered.find(np.ascontiguousarray(values, dtype=np.float64))
        return None if known is None else known[2]

    def neuron_errors(self, values: np.ndarray, rows: np.ndarray, products: np.ndarray | None = None) -> np.ndarray:
        """``E_i`` of the neurons ``rows`` at ``values`` ``(len(rows), m)``: one product of those rows alone (a
        pilot's few neurons; not remembered), or from their ``products`` ``values @ H`` where the caller has them."""
        q = np.ascontiguousarray(values, dtype=np.float64)
        return self._errors(q, self.products(q) if products is None else products, rows)

    def _errors(self, q: np.ndarray, products: np.ndarray, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """``E_i`` of the rows ``q`` (of the neurons ``rows``) from their products ``q H``."""
        return (np.einsum("ij,ij->i", products, q) - 2.0 * np.einsum("ij,ij->i", q, self.stats.cross[rows])
                + self.stats.target_sq[rows])

    def qubo_energies(self, assignments: np.ndarray) -> np.ndarray:
        """Energies of binary ``assignments`` ``(n, m)`` from the QUBO coefficients (fixed entries ignored)."""
        v = np.where(self.free, np.asarray(assignments, dtype=np.float64), 0.0)
        u = self.steps * v
        diag_part = (self.steps ** 2) * np.diag(self.hessian) * v
        return self.offsets + np.einsum("ij,ij->i", self.linear - diag_part, v) + np.einsum(
            "ij,ij->i", self.products(u), u)

    def keep_lower(self, rows: np.ndarray, warm_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each neuron's binary row of ``rows`` ``(n, m)``, or of ``warm_rows`` where its QUBO energy is lower: a
        solver handed the warm start as its initial state may end above it (per-neuron ``sa`` on the digits MLP's
        first layer at int4, one read from each warm row: 31 of 32 neurons, their summed error 0.643 against the
        start's 0.418), and the start is itself an assignment it was given. Returns the rows, their energies and
        the mask of the neurons that kept ``warm_rows``'."""
        rows = np.array(rows, copy=True)
        energies = self.qubo_energies(rows)
        warm_energies = self.qubo_energies(warm_rows)
        kept = warm_energies < energies
        rows[kept], energies[kept] = np.asarray(warm_rows)[kept], warm_energies[kept]
        return rows, energies, kept

    def decode(self, i: int, sample: Mapping[int, int]) -> DecodedRow:
        """Integers and values of neuron ``i`` for a sample over its BQM variables."""
        self._check_neuron(i)
        v = self.assignment(i, sample)
        ints = self.base[i] + v
        return DecodedRow(ints, self.grid.dequantize(ints, self.steps[i]))

    def assignment(self, i: int, sample: Mapping[int, int]) -> np.ndarray:
        """The full binary row ``(m,)`` of a sample over neuron ``i``'s variables (0 at fixed coordinates)."""
        idx = self.variables(i)
        try:
            vals = np.fromiter((sample[j] for j in idx.tolist()), dtype=np.int64, count=idx.size)
        except KeyError as exc:
            raise InvalidArgumentError(f"sample for neuron {i} lacks variable {exc.args[0]}") from None
        if np.any((vals != 0) & (vals != 1)):
            raise InvalidArgumentError(f"sample for neuron {i} is not binary (values must be 0 or 1)")
        v = np.zeros(self.num_coordinates, dtype=np.int64)
        v[idx] = vals
        return v

    def decode_layer(self, assignments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integers and values ``(n, m)`` of binary ``assignments`` (fixed entries ignored)."""
        v = np.where(self.free, np.asarray(assignments), 0).astype(np.int64)
        ints = self.base + v
        return ints, self.grid.dequantize(ints, self.steps)

    def restrict(self, integers: np.ndarray) -> np.ndarray:
        """Grid ``integers`` ``(n, m)`` moved to the nearest QUBO-reachable value: ``k`` or ``k + 1`` where free,
        ``k`` where fixed (so that :meth:`encode` accepts them)."""
        return np.clip(np.asarray(integers, dtype=np.int64), self.base, self.base + self.free)

    def encode(self, integers: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`decode_layer`: the binary assignments of grid ``integers`` ``(n, m)``, or of
        ``(n, k, m)``: ``k`` assignments per neuron (e.g. several warm starts).

        Raises:
            InvalidArgumentError: if an integer is not reachable (not ``k`` or ``k + 1`` where free,
                not ``k`` where fixed).
        """
        ints = np.asarray(integers, dtype=np.int64)
        base, free = (self.base, self.free) if ints.ndim == 2 else (self.base[:, None], self.free[:, None])
        v = ints - base
        bad = (v < 0) | (v > 1) | (~free & (v != 0))
        if np.any(bad):
            at = tuple(np.argwhere(bad)[0])
            i, j = at[0], at[-1]
            raise InvalidArgumentError(
                f"integers[{', '.join(map(str, at))}]={ints[at]} is not a rounding of the weight (floor "
                f"{self.base[i, j]}{'' if self.free[i, j] else ', fixed'})"
            )
        return v.astype(np.uint8)

    def _check_neuron(self, i: int) -> None:
        if not 0 <= i < self.num_neurons:
            raise InvalidArgumentError(f"neuron index {i} is out of range 0..{self.num_neurons - 1}")


def build_problem(stats: LayerStats, weight: np.ndarray, bias: np.ndarray | None, grid: Grid,
                  name: str = "layer") -> LayerProblem:
    """Formulate the rounding QUBOs of a layer ``y = W x + b`` on ``grid``.

    Args:
        stats: calibration statistics (augmented with the bias input when ``bias`` is not None).
        weight: ``(n, f)`` float weights.
        bias: ``(n,)`` float bias or None.
        grid: the grid, from :func:`qannealq.grid.make_grid`.
        name: label used in results and messages.
    """
    weight = np.asarray(weight, dtype=np.float64)
    n, f = weight.shape
    w = weight if bias is None else np.concatenate([weight, np.asarray(bias, np.float64)[:, None]], axis=1)
    m = w.shape[1]
    if stats.hessian.shape != (m, m) or stats.cross.shape != (n, m) or np.shape(stats.target_sq) != (n,):
        raise InvalidArgumentError(
            f"calibration statistics of {name} have H {stats.hessian.shape}, g {stats.cross.shape} and c "
            f"{np.shape(stats.target_sq)}, but the layer needs ({m}, {m}), ({n}, {m}) and ({n},): collect them on "
            "this layer's inputs"
        )
    if np.shape(grid.weight_step) != (n,) or (grid.bias_step is None) != (bias is None):
        # another layer's grid broadcast against this one's rows (a one-row grid's steps served every neuron,
        # then neuron_bqm(1) raised an IndexError) or failed in numpy ("operands could not be broadcast")
        raise InvalidArgumentError(
            f"grid of {name} has {np.shape(grid.weight_step)[0] if np.ndim(grid.weight_step) else 0} weight steps "
            f"and {'no' if grid.bias_step is None else 'a'} bias step, but the layer has {n} neurons and "
            f"{'no' if bias is None else 'a'} bias: make it with make_grid(weight, bias, ...) of this layer"
        )
    # H_jl² <= H_jj H_ll and g_ij² <= H_jj c_i: a NaN or infinity anywhere in the statistics shows on H's diagonal or
    # in c. GPTQ had returned integers of -2**63 on NaN statistics and raised a ZeroDivisionError on infinite ones
    if not (np.all(np.isfinite(np.diag(stats.hessian))) and np.all(np.isfinite(stats.target_sq))):
        raise NonFiniteError(
            f"calibration statistics of {name} contain NaN or infinity: the layer's inputs or targets hold NaN or "
            "infinity, or values whose squares summed overflow float64 (beyond about 1e154; the targets are the layer's "
            "outputs, so weights that large overflow them too): clean or scale the calibration data, or the weights")
    steps = grid.steps(f)
    base, free = grid.floor(w, steps)
    dead = np.diag(stats.hessian) <= 0.0
    base[:, dead] = grid.nearest(w[:, dead], steps[:, dead])
    free[:, dead] = False
    return LayerProblem(stats, grid, w, steps, base, free, bias is not None, name)


#: The grid steps and ``H`` diagonals :func:`check_single_precision` accepts: the beam keeps the weights (about
#: a step's size) and ``H``'s inverse factor (about ``H^-1/2``) in float32, whose normal numbers span 2**-126..2**128.
#: At these bounds the beam was measured still right (a float64 model scaled by 1e-36), one step beyond them it
#: never ended (1e-38).
SINGLE_STEPS = (2.0 ** -126, 2.0 ** 126)
SINGLE_DIAGONALS = (2.0 ** -250, 2.0 ** 250)
#: The largest weight and the largest ``d_ij sqrt(H_jj)`` it accepts: the beam keeps the weights themselves (up to
#: ``2**(bits-1)`` steps) and its errors in the layer's output units (a step times about ``sqrt(H_jj)``, weight
#: times input) in float32 too. Weights of 1.1e38 on an int4 grid (steps 8.3e37) overflowed, and a layer whose
#: weights and inputs were both scaled by 1e20 (or 1e-23), each in range, had errors under- or overflow: the beam
#: returned starts up to 2.1x worse, silently, and layer-sa's results were up to 13% worse.
SINGLE_WEIGHTS = 2.0 ** 126
SINGLE_OUTPUTS = (2.0 ** -126, 2.0 ** 126)


def check_single_precision(problem: "LayerProblem", who: str) -> None:
    """Refuse a layer whose grid steps, ``H`` diagonals, weights or steps' effects on the output ``d_ij sqrt(H_jj)``
    lie outside :data:`SINGLE_STEPS`, :data:`SINGLE_DIAGONALS`, :data:`SINGLE_WEIGHTS` and :data:`SINGLE_OUTPUTS`
    for ``who``, a search that keeps them in float32 (``layer-sa``, the warm start's beam). On a float64 model whose
    weights or calibration inputs were below about 1e-38 the beam's float32 copies underflowed to 0 or overflowed
    to inf, and it never ended (no end in 150 s where the layer took 0.2 s). The problem measures itself once
    (:attr:`LayerProblem.single_precision_excess`): ``layer-sa`` and its warm start's beam both ask.

    Raises:
        InvalidArgumentError: naming the layer, the magnitude and the float64 searches to use instead.
    """
    excess = problem.single_precision_excess
    if excess is not None:
        what, value, lo, hi = excess
        raise InvalidArgumentError(
            f"layer {problem.name!r}: its {what} is {value:.3g}, outside the {lo:.3g}..{hi:.3g} that {who} "
            "handles (it keeps them in float32); scale the model's weights or inputs into a usual range, or "
            "use a float64 search: --backend sa, tabu or steepest, or --methods gptq / rtn")
