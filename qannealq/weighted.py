"""The activation-aware (``relu-aware``) objective: per-neuron sample weights, still an exact QUBO per neuron.

For a Linear layer whose output feeds a ``torch.nn.ReLU``, an error on a sample where the float neuron is off
(pre-activation ``y_si <= 0``) mostly vanishes after the ReLU. With sample weights ``m_si = 1`` where
``y_si > 0`` and ``w`` (``inactive_weight``) elsewhere, neuron i's error (ARCHITECTURE.md §1, weighted form)

    E_i(q) = Σ_s m_si (x̂_sᵀ q − y_si)² / N  =  qᵀ H_i q − 2 qᵀ g_i + c_i
    H_i = X̂ᵀ diag(m_i) X̂ / N,   g_i = X̂ᵀ (m_i ∘ y_i) / N,   c_i = Σ_s m_si y_si² / N

is the plain objective's formula with one ``H_i`` per neuron, so the BQM coefficients of
:mod:`qannealq.formulation` hold with ``H_i`` in place of ``H``. The weights always come from the FLOAT
network's pre-activations (both calibration modes); the last layer and any Linear not followed by a ReLU keep
the plain objective. A coordinate that no weighted sample excites (``H_i,jj = 0``) is dead for that neuron.

Memory: all ``H_i`` together are ``n·m²`` float64 (MNIST's first layer 128·785² = 79M numbers, 631 MB;
EMNIST letters' 256·785², 1.26 GB). :class:`WeightedLayerStats` keeps the calibration samples instead
(``X̂`` ``(N, m)``, ``Y`` and the weights ``(N, n)``: ``N(m + 2n)`` numbers, 8.5 MB for MNIST at N = 1024),
computes every vector term (linear coefficients, errors, energies) from them, and forms each ``H_i`` when a
consumer asks (its BQM, GPTQ's Cholesky, ``layer-sa``), in ``O(N_i m²)`` over the ``N_i`` samples of
non-zero weight. The ``H_i`` are kept once formed while they fit beside the samples in
``Objective.memory_limit`` (default 4 GiB: EMNIST letters' 256 ``H_i`` and their GPTQ factors, 2.5 GB, fit),
those beyond it formed again at each use; so are GPTQ's per-neuron factors in the room left beside all ``H_i``
(:meth:`WeightedLayerStats.kept`); GPTQ stacks at most an eighth of the limit of them at a time. Samples
beyond the limit raise
:class:`~qannealq.errors.InvalidArgumentError` while they are collected (:mod:`qannealq.weighted_calibration`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, ClassVar, TypeVar

import numpy as np

from qannealq._defaults import DEFAULT_INACTIVE_WEIGHT, DEFAULT_MEMORY_LIMIT, OBJECTIVES
from qannealq.checks import is_count, is_number
from qannealq.errors import InvalidArgumentError
from qannealq.formulation import LayerProblem, LayerStats, build_problem
from qannealq.grid import Grid

_T = TypeVar("_T")
logger = logging.getLogger(__name__)

__all__ = ["OBJECTIVES", "DEFAULT_INACTIVE_WEIGHT", "DEFAULT_MEMORY_LIMIT", "Objective", "make_objective",
           "check_flags", "resumed_weight", "WeightedLayerStats", "WeightedLayerProblem", "build_weighted_problem"]


@dataclass(frozen=True)
class Objective:
    """Which per-neuron error the QUBOs minimise.

    Attributes:
        name: ``"preact"`` (the paper's plain pre-activation error) or ``"relu-aware"``.
        inactive_weight: ``w``, the weight of samples where the float neuron is off (``relu-aware`` only);
            0 ignores them, 1 is the plain objective.
        memory_limit: bytes a weighted layer may hold (samples, and the ``H_i`` when they fit).
    """

    name: str = "preact"
    inactive_weight: float = DEFAULT_INACTIVE_WEIGHT
    memory_limit: int = DEFAULT_MEMORY_LIMIT

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise InvalidArgumentError(f"objective={self.name!r} is unknown: choose one of {', '.join(OBJECTIVES)}")
        w = self.inactive_weight
        if not _is_weight(w):
            raise InvalidArgumentError(f"inactive_weight={w!r} must be a number in [0, 1] (0: inactive samples "
                                       "ignored, 1: the plain objective)")
        object.__setattr__(self, "inactive_weight", float(w))
        if not is_count(self.memory_limit):
            raise InvalidArgumentError(f"memory_limit={self.memory_limit!r} must be a positive integer number of bytes")
        object.__setattr__(self, "memory_limit", int(self.memory_limit))
        if not self.weighted:  # make_objective refuses them; given here they were ignored without a word
            _check_options(self.name, None if w == DEFAULT_INACTIVE_WEIGHT else w,
                           None if self.memory_limit == DEFAULT_MEMORY_LIMIT else self.memory_limit, flags=False)

    @property
    def weighted(self) -> bool:
        """Whether layers followed by a ReLU get per-neuron sample weights."""
        return self.name == "relu-aware"

    def sample_weights(self, preact: np.ndarray) -> np.ndarray:
        """``m_si``: 1 where the float pre-activation is positive, ``inactive_weight`` elsewhere."""
        return np.where(np.asarray(preact) > 0, 1.0, self.inactive_weight)

    def describe(self) -> dict:
        """What results record: the objective and, for ``relu-aware``, the inactive weight."""
        return {"objective": self.name, "inactive_weight": self.inactive_weight if self.weighted else None}


def make_objective(objective: "str | Objective" = "preact", inactive_weight: float | None = None,
                   memory_limit: int | None = None) -> Objective:
    """The validated :class:`Objective` of ``objective=``, ``inactive_weight=`` and ``memory_limit=`` (bytes;
    None: the defaults)."""
    if isinstance(objective, Objective):
        if inactive_weight is not None and inactive_weight != objective.inactive_weight:
            raise InvalidArgumentError("inactive_weight is given twice (in the Objective and as an argument)")
        if memory_limit is not None and memory_limit != objective.memory_limit:
            raise InvalidArgumentError("memory_limit is given twice (in the Objective and as an argument)")
        return objective
    if objective not in OBJECTIVES:  # before the weight's check, which said the weight was the mistake
        raise InvalidArgumentError(f"objective={objective!r} is unknown: choose one of {', '.join(OBJECTIVES)}")
    _check_options(objective, inactive_weight, memory_limit, flags=False)
    return Objective(objective, DEFAULT_INACTIVE_WEIGHT if inactive_weight is None else inactive_weight,
                     DEFAULT_MEMORY_LIMIT if memory_limit is None else memory_limit)


def resumed_weight(stored: dict, given: dict) -> None:
    """Drop the stored ``inactive_weight`` from a resume's ``stored`` settings where ``given`` changes the objective
    and gives no weight: the weight belongs to the stored objective, and taken as given it was refused with
    "--inactive-weight applies to --objective relu-aware, not 'preact'", a flag the user never gave, instead of
    the settings' difference. A store without an objective is a preact one (``run``'s before it had the option,
    a preact sweep's always)."""
    objective = stored.get("objective", "preact")
    if "inactive_weight" not in given and given.get("objective", objective) != objective:
        stored.pop("inactive_weight", None)


def check_flags(objective: str, inactive_weight: float | None, memory_limit: int | None) -> None:
    """``--inactive-weight`` and ``--memory-limit`` checked as the commands name them (:func:`make_objective`
    names its arguments): relu-aware's alone, the weight in [0, 1]."""
    _check_options(objective, inactive_weight, memory_limit, flags=True)


def _check_options(objective: str, inactive_weight: float | None, memory_limit: int | None, flags: bool) -> None:
    """``inactive_weight`` and ``memory_limit`` are relu-aware's alone (a preact layer keeps no samples), the weight
    in [0, 1]: one rule for the API and the commands, named as the flags (``flags``) or as the arguments."""
    for key, value in (("inactive_weight", inactive_weight), ("memory_limit", memory_limit)):
        if value is not None and objective != "relu-aware":
            raise InvalidArgumentError(f"--{key.replace('_', '-')} applies to --objective relu-aware, not {objective!r}"
                                       if flags else f"{key}={value!r} applies to objective='relu-aware' only, not "
                                       f"{objective!r}")
    w = inactive_weight
    if w is not None and not _is_weight(w):
        raise InvalidArgumentError(f"{'--inactive-weight' if flags else 'inactive_weight'}={w!r} must be a number in "
                                   "[0, 1] (0: inactive samples ignored, 1: the plain objective)")


def _is_weight(w: Any) -> bool:
    """Whether ``w`` is an inactive weight: a number (not a bool; a numpy integer too, which was refused as no
    number) in [0, 1]; one rule for the API's and the commands' checks, which name it differently."""
    return is_number(w) and 0.0 <= w <= 1.0


def _size(nbytes: int) -> str:
    """``nbytes`` in MiB below a GiB, else in GiB."""
    return f"{nbytes / 2 ** 20:.3g} MiB" if nbytes < 2 ** 30 else f"{nbytes / 2 ** 30:.3g} GiB"


_KIND_NAMES = {"hessian": "H_i", "gptq": "GPTQ factors (index order)", "gptq-act": "GPTQ factors (act order)",
               "gptq-pivot": "GPTQ factors (pivot order)"}


class _Kept(dict):
    """Per-neuron matrices formed so far, by ``(kind, i)``, and the kinds in the order first asked for; never
    pickled (executors get the samples only)."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: list = []
        self.warned: set = set()  # kinds whose matrices did not all fit (warned about once)
        self.bytes: dict = {}  # bytes kept, by kind
        self.lock = threading.Lock()  # layer-sa's threads form H_i at once: one keeps at a time

    def __reduce__(self):
        return (_Kept, ())


@dataclass(frozen=True, eq=False)
class WeightedLayerStats:
    """Calibration samples of one weighted layer (float64) and the plain statistics of the same data.

    Attributes:
        plain: ``H``, ``g``, ``c`` of the unweighted objective (the calibration accumulator's, unchanged).
        inputs: ``X̂`` ``(N, m)`` (with the ones column when the layer has a bias).
        targets: the float pre-activations ``Y`` ``(N, n)``.
        weights: ``m_si`` ``(N, n)``, each ``>= 0``.
        objective: the objective the weights come from.
    """

    plain: LayerStats
    inputs: np.ndarray
    targets: np.ndarray
    weights: np.ndarray
    objective: Objective = field(default_factory=lambda: Objective("relu-aware"))
    _kept: _Kept = field(default_factory=_Kept, repr=False)

    @classmethod
    def from_arrays(cls, inputs: np.ndarray, targets: np.ndarray, weights: np.ndarray, bias: bool = True,
                    objective: Objective | None = None) -> "WeightedLayerStats":
        """Statistics of inputs ``(N, f)``, targets ``(N, n)`` and sample weights ``(N, n)``."""
        plain = LayerStats.from_arrays(inputs, targets, bias)
        x = np.asarray(inputs, np.float64)
        x = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1) if bias else x
        w = np.asarray(weights, np.float64)
        if w.shape != np.shape(targets):
            raise InvalidArgumentError(f"weights must have the targets' shape {np.shape(targets)}, got {w.shape}")
        if not np.all((w >= 0) & np.isfinite(w)):  # an infinite weight made every energy of its neuron NaN
            at = tuple(int(k) for k in np.argwhere(~((w >= 0) & np.isfinite(w)))[0])
            raise InvalidArgumentError(f"weights must be finite and >= 0, got weights[{at[0]}, {at[1]}]={float(w[at])}")
        return cls(plain, x, np.asarray(targets, np.float64), w, objective or Objective("relu-aware"))

    @property
    def num_samples(self) -> int:
        return self.inputs.shape[0]

    @property
    def uniform(self) -> bool:
        """All weights are 1: the plain objective exactly."""
        return bool(np.all(self.weights == 1.0))

    @cached_property
    def cross(self) -> np.ndarray:
        """``g_i = X̂ᵀ (m_i ∘ y_i) / N``, rows ``(n, m)``."""
        return (self.weights * self.targets).T @ self.inputs / self.num_samples

    @cached_property
    def hessian_diagonals(self) -> np.ndarray:
        """``diag(H_i)`` of every neuron, ``(n, m)``."""
        return self.weights.T @ (self.inputs * self.inputs) / self.num_samples

    @cached_property
    def live(self) -> np.ndarray:
        """``(n, m)``: coordinate j of neuron i is excited by a sample of non-zero weight (else dead)."""
        return ((self.weights > 0).T.astype(np.float64) @ (self.inputs != 0).astype(np.float64)) > 0

    def hessian(self, i: int) -> np.ndarray:
        """``H_i = X̂ᵀ diag(m_i) X̂ / N`` ``(m, m)``, over the samples of non-zero weight."""
        return self.kept("hessian", i, lambda: self.form_hessian(i))

    def form_hessian(self, i: int) -> np.ndarray:
        """``H_i`` formed from the samples, not kept (:meth:`hessian` keeps it where it fits)."""
        rows = self.weights[:, i] > 0
        x = self.inputs[rows] * np.sqrt(self.weights[rows, i, None])
        return x.T @ x / self.num_samples  # one operand transposed: numpy's symmetric rank-k update (syrk)

    def held(self, kind: object, i: int) -> Any:
        """Neuron ``i``'s kept matrix of ``kind`` (:meth:`kept`), or None where it is not kept; it only reads,
        so threads that form matrices may call it while none is being kept."""
        return self._kept.get((kind, i))

    def kept(self, kind: object, i: int, form: Callable[[], _T]) -> _T:
        """Neuron ``i``'s ``(m, m)`` matrix of ``kind`` (``"hessian"``, or e.g. GPTQ's input order and factor of
        ``H_i``): ``form()``, kept while it fits in ``objective.memory_limit`` beside the samples, the room of
        ``n`` matrices for every kind asked for before and this kind's matrices kept so far (so a kind that fits
        whole is kept whole, and the first kind that does not keeps as many as fit). A result never depends on
        what was kept."""
        if (kind, i) in self._kept:
            return self._kept[kind, i]
        matrix = form()
        with self._kept.lock:
            return self._keep(kind, i, matrix)

    def _keep(self, kind: object, i: int, matrix: _T) -> _T:
        """:meth:`kept`'s bookkeeping, under its lock: without it, two of layer-sa's threads could both read a
        kind's bytes before either added its matrix, and the count lost one (more kept than the limit allows)."""
        if (kind, i) in self._kept:
            return self._kept[kind, i]
        if kind not in self._kept.kinds:
            self._kept.kinds.append(kind)
        n, m = self.weights.shape[1], self.inputs.shape[1]
        size = sum(a.nbytes for a in (matrix if isinstance(matrix, tuple) else (matrix,)) if hasattr(a, "nbytes"))
        before = self.nbytes + 8 * n * m * m * self._kept.kinds.index(kind)  # the samples, earlier kinds' room
        if before + self._kept.bytes.get(kind, 0) + size <= self.objective.memory_limit:
            self._kept[kind, i] = matrix
            self._kept.bytes[kind] = self._kept.bytes.get(kind, 0) + size
        elif kind not in self._kept.warned:
            self._kept.warned.add(kind)
            name = kind if isinstance(kind, str) else kind[0]
            logger.warning(
                "relu-aware layer of %d neurons x %d inputs: its per-neuron %s (%s with the samples and the kinds "
                "before) do not all fit in memory_limit=%s: %d are kept, the others are formed again at each use "
                "of the layer (same results, slower); --memory-limit GIB (Objective(memory_limit=...) in Python) "
                "raises the limit where the memory is there", n, m, _KIND_NAMES.get(name, name),
                _size(before + 8 * n * m * m),
                _size(self.objective.memory_limit), sum(1 for key in self._kept if key[0] == kind))
        return matrix

    @property
    def nbytes(self) -> int:
        """Bytes of the samples (``X̂``, ``Y``, weights)."""
        return self.inputs.nbytes + self.targets.nbytes + self.weights.nbytes

    def errors(self, values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``E_i`` of each row of ``values`` ``(n, m)`` (or of the neurons ``rows``: ``(len(rows), m)``), straight
        from the samples; for some neurons, without the samples of weight 0 for all of them (relu-aware with
        ``w = 0``: those inactive for each), which add nothing."""
        weights, targets, inputs = self.weights, self.targets, self.inputs
        if rows is not None:
            weights = weights[:, rows]
            used = weights.any(axis=1)
            weights, targets, inputs = weights[used], targets[used][:, rows], inputs[used]
        residual = inputs @ np.asarray(values, np.float64).T - targets
        return np.einsum("sn,sn->n", weights, residual * residual) / self.num_samples

    def quadratic_forms(self, rows: np.ndarray) -> np.ndarray:
        """``u_iᵀ H_i u_i`` of each row ``u_i`` of ``rows`` ``(n, m)``."""
        z = self.inputs @ rows.T
        return np.einsum("sn,sn->n", self.weights, z * z) / self.num_samples

    def hessian_products(self, rows: np.ndarray) -> np.ndarray:
        """``H_i u_i`` of each row ``u_i`` of ``rows`` ``(n, m)``."""
        return (self.weights * (self.inputs @ rows.T)).T @ self.inputs / self.num_samples


@dataclass(frozen=True)
class WeightedLayerProblem(LayerProblem):
    """A layer's neuron QUBOs with one ``H_i`` per neuron (same grid, encode/decode and BQM labels).

    Every method of :class:`LayerProblem` keeps its meaning; the vector terms come from the samples
    (:class:`WeightedLayerStats`), ``H_i`` from :meth:`neuron_hessian`. There is no shared :attr:`hessian`.
    """

    per_neuron: ClassVar[bool] = True
    stats: WeightedLayerStats

    @property
    def hessian(self) -> np.ndarray:
        raise InvalidArgumentError(f"{self.name}: a relu-aware problem has one H_i per neuron and no shared H; "
                                   "use neuron_hessian(i) (and check problem.per_neuron before using .hessian)")

    def neuron_hessian(self, i: int) -> np.ndarray:
        """``H_i`` ``(m, m)``."""
        self._check_neuron(i)
        return self.stats.hessian(i)

    @cached_property
    def dead(self) -> np.ndarray:
        """``(n, m)``: coordinates with ``H_i,jj = 0`` (per neuron, unlike the plain ``(m,)``)."""
        return ~self.stats.live

    @cached_property
    def linear(self) -> np.ndarray:
        """``a_ij = d² H_i,jj + 2 d (H_i u_i)_j − 2 d g_ij``, ``(n, m)``."""
        d = self.steps
        return (d * d * self.stats.hessian_diagonals + 2.0 * d * self.stats.hessian_products(self.base_values)
                - 2.0 * d * self.stats.cross)

    @cached_property
    def offsets(self) -> np.ndarray:
        """``e_i = E_i(u_i)``, ``(n,)``."""
        return self.errors(self.base_values)

    def errors(self, values: np.ndarray) -> np.ndarray:
        """``E_i`` of each row of ``values`` ``(n, m)``, straight from the samples; the latest results remembered
        as :meth:`LayerProblem.errors` remembers its own (no product of a shared ``H``): a whole-layer solve asks
        for its solution's errors twice (the solve loop's check of the sampler's energies, then the result's), and
        each is a pass over every sample."""
        q = np.ascontiguousarray(values, dtype=np.float64)
        known = self._remembered.find(q)
        if known is not None:
            return known[1].copy()
        out = self.stats.errors(q)
        self._remembered.keep((q.copy(), out.copy(), None))
        return out

    def neuron_errors(self, values: np.ndarray, rows: np.ndarray, products: np.ndarray | None = None) -> np.ndarray:
        """``E_i`` of the neurons ``rows`` at ``values`` ``(len(rows), m)``, straight from the samples (one product
        of the inputs with those rows): the solve loop's check of a neuron's reads had built its BQM again for
        their energies, a fifth of ``steepest``'s time per neuron on MNIST's first layer. ``products`` (of one
        shared ``H``) mean nothing here and are refused."""
        if products is not None:
            raise InvalidArgumentError(f"{self.name}: products of a shared H mean nothing for per-neuron H_i; call "
                                       "neuron_errors(values, rows) without them")
        return self.stats.errors(values, np.asarray(rows))

    def qubo_energies(self, assignments: np.ndarray) -> np.ndarray:
        v = np.where(self.free, np.asarray(assignments, dtype=np.float64), 0.0)
        diag_part = (self.steps ** 2) * self.stats.hessian_diagonals * v
        return (self.offsets + np.einsum("ij,ij->i", self.linear - diag_part, v)
                + self.stats.quadratic_forms(self.steps * v))


def build_weighted_problem(stats: WeightedLayerStats, weight: np.ndarray, bias: np.ndarray | None, grid: Grid,
                           name: str = "layer") -> LayerProblem:
    """The layer's QUBOs under sample weights; the plain :class:`LayerProblem` itself when all weights are 1.

    Same grid, floors and fixed coordinates as :func:`~qannealq.formulation.build_problem`, plus the
    coordinates dead for a neuron (no sample of non-zero weight excites them), rounded to nearest.
    """
    plain = build_problem(stats.plain, weight, bias, grid, name)
    if stats.uniform:
        return plain
    n, m = plain.weights.shape
    if stats.weights.shape[1] != n or stats.inputs.shape[1] != m:
        raise InvalidArgumentError(f"weighted statistics of {name} have {stats.weights.shape[1]} neurons and "
                                   f"{stats.inputs.shape[1]} inputs, but the layer has {n} and {m}")
    dead = ~stats.live
    base, free = plain.base.copy(), plain.free & ~dead
    base[dead] = grid.nearest(plain.weights, plain.steps)[dead]
    return WeightedLayerProblem(stats, grid, plain.weights, plain.steps, base, free, plain.has_bias, name)
