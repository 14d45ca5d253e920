"""A QPU plan before any call: which neurons go in which call, on which clique embeddings, at what QPU time.

* :func:`plan_problems` plans layers on a QPU sampler: its neurons grouped by clique size
  (:func:`neuron_groups`), each group as many per call as disjoint clique embeddings fit (one with
  ``parallel=False``), each call's QPU access time estimated from the solver's timing model
  (:mod:`._dwave_anneal`); :func:`plan_bqms` plans neurons sampled one by one (as ``qannealq compare`` does).
* :func:`plan_layer` turns groups into calls; :class:`QPUPlan` holds every layer's calls, prints the plan
  table and refuses a budget (:meth:`QPUPlan.check_budget`) before the first call.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any, Mapping, Sequence

import numpy as np

from qannealq.backends._dwave_anneal import AnnealSettings, anneal_settings, check_solver_ranges, estimate_access_us
from qannealq.checks import check_positive
from qannealq.errors import InvalidArgumentError, QannealqError

__all__ = ["CallPlan", "LayerPlan", "QPUPlan", "plan_layer", "plan_problems", "plan_bqms", "neuron_groups",
           "check_capacity_option", "QPUBudgetError"]


class QPUBudgetError(QannealqError, RuntimeError):
    """A run's estimated QPU access time exceeds ``--qpu-budget`` (raised before the first call)."""


@dataclass(frozen=True)
class CallPlan:
    """One QPU call: the layer's neurons it solves (in embedding order), its qubits, its estimate (us).

    ``embeddings`` (:class:`~._dwave_cliques.CliqueEmbeddings`): neuron ``neurons[k]`` sits on embedding ``k``.
    """

    neurons: tuple[int, ...]
    qubits: int
    estimate_us: float | None
    embeddings: Any = field(default=None, repr=False, compare=False)

    @property
    def clique_size(self) -> int:
        return 0 if self.embeddings is None else self.embeddings.size


@dataclass(frozen=True)
class LayerPlan:
    """A layer's QPU calls.

    Attributes:
        name, bits: the layer and its bit width.
        neurons: neurons with a BQM (a neuron with no free variable needs no call).
        clique_size: variables of the layer's largest neuron.
        per_call: neurons in the fullest call (disjoint embeddings used; 1 with ``parallel=False``).
        calls: the calls, in submission order.
        settings: the calls' solver parameters.
        problem: why the layer cannot run on this solver (None when it can).
        decomposed: neurons with more variables than the largest clique (or a ``capacity`` option): decomposed at
            run time (:class:`~.decompose.DecomposingSampler`, one sub-problem per call), their calls not planned.
    """

    name: str
    bits: int | None
    neurons: int
    clique_size: int
    per_call: int
    calls: tuple[CallPlan, ...]
    settings: AnnealSettings
    problem: str | None = None
    decomposed: tuple[int, ...] = ()

    @property
    def estimate_us(self) -> float | None:
        """The layer's estimated QPU access time (None if any call has no estimate)."""
        times = [c.estimate_us for c in self.calls]
        return None if any(t is None for t in times) else float(sum(times))


def plan_layer(name: str, bits: int | None, sizes: Sequence[int], groups: Sequence[tuple[Sequence[int], Any, int]],
               settings: AnnealSettings, properties: Mapping, problem: str | None = None,
               decomposed: tuple[int, ...] = ()) -> LayerPlan:
    """The calls of a layer: each group ``(neurons, embeddings, per_call)`` in its own calls, its neurons in
    order, ``per_call`` at a time, each on the next disjoint embedding of the group's clique."""
    active = [i for i, size in enumerate(sizes) if size > 0]
    size = max((int(s) for s in sizes), default=0)
    if problem is not None or not active:
        return LayerPlan(name, bits, len(active), size, 0, (), settings, problem, decomposed)
    kwargs = settings.solver_kwargs({0: 1} if settings.reverse else None)
    calls = []
    for neurons, embeddings, per_call in groups:
        per_call = max(1, min(per_call, len(neurons)))
        for start in range(0, len(neurons), per_call):
            chunk = tuple(neurons[start:start + per_call])
            qubits = sum(embeddings.qubits(k, int(sizes[i])) for k, i in enumerate(chunk))
            calls.append(CallPlan(chunk, qubits, estimate_access_us(properties, qubits, kwargs), embeddings))
    return LayerPlan(name, bits, len(active), size, max(len(c.neurons) for c in calls), tuple(calls), settings,
                     None, decomposed)


def _counts(values: Sequence[int]) -> str:
    """``[8, 8, 8, 4]`` -> ``8x3+4``."""
    out, k = [], 0
    while k < len(values):
        j = k
        while j < len(values) and values[j] == values[k]:
            j += 1
        out.append(f"{values[k]}x{j - k}" if j - k > 1 else f"{values[k]}")
        k = j
    return "+".join(out) or "-"


@dataclass(frozen=True)
class QPUPlan:
    """Every planned layer of a run on one solver; printed by ``--dry-run``, checked by ``--qpu-budget``."""

    backend: str
    solver: str
    layers: tuple[LayerPlan, ...]

    @property
    def num_calls(self) -> int:
        return sum(len(layer.calls) for layer in self.layers)

    @property
    def decomposed(self) -> int:
        """Neurons decomposed at run time (not planned)."""
        return sum(len(layer.decomposed) for layer in self.layers)

    @property
    def estimate_us(self) -> float | None:
        """Total estimated QPU access time in microseconds (None if the solver has no timing model)."""
        times = [layer.estimate_us for layer in self.layers]
        return None if any(t is None for t in times) else float(sum(times))

    def table(self) -> str:
        """The plan as a fixed-width table with a total line."""
        head = (f"{'bits':>4} {'layer':<10}{'neurons':>8}{'vars':>6}{'per call':>9}{'calls':>6}  "
                f"{'neurons/call':<14}{'qubits/call':>12}{'est. ms/call':>13}{'est. ms':>10}  anneal")
        lines = [f"QPU plan: backend {self.backend!r} on {self.solver}", head, "-" * len(head)]
        for p in self.layers:
            if p.problem:
                lines.append(f"{p.bits or '-':>4} {p.name:<10}{p.neurons:>8}{p.clique_size:>6}  {p.problem}")
                continue
            ests = [c.estimate_us for c in p.calls]
            per = "-" if not ests or None in ests else f"{sum(ests) / len(ests) / 1e3:.2f}"
            total = "-" if p.estimate_us is None else f"{p.estimate_us / 1e3:.2f}"
            qubits = max((c.qubits for c in p.calls), default=0)
            lines.append(f"{p.bits or '-':>4} {p.name:<10}{p.neurons:>8}{p.clique_size:>6}{p.per_call:>9}"
                         f"{len(p.calls):>6}  {_counts([len(c.neurons) for c in p.calls]):<14}{qubits:>12}"
                         f"{per:>13}{total:>10}  {p.settings.anneal}, {p.settings.num_reads} reads")
            if p.decomposed:
                lines.append(f"{'':>5}{p.name:<10}+ {len(p.decomposed)} neuron(s) above the largest clique (or the "
                             "capacity given): decomposed at run time, one sub-problem per call, not planned")
        est = self.estimate_us
        total = "unknown (the solver publishes no problem_timing_data)" if est is None else f"{est / 1e6:.4f} s"
        lines.append(f"total: {self.num_calls} QPU calls, estimated QPU access time {total}"
                     + (" (without the decomposed neurons)" if self.decomposed else ""))
        anneals = sorted({p.settings.describe() for p in self.layers if p.calls})
        lines += [f"anneal: {a}" for a in anneals]
        return "\n".join(lines)

    def check_budget(self, seconds: float) -> None:
        """Refuse the run when its estimate exceeds ``seconds`` (or cannot be made).

        Raises:
            InvalidArgumentError: ``seconds`` is not a positive number.
            QPUBudgetError: the estimate exceeds the budget, a layer does not fit, or no timing model.
        """
        from qannealq.config import check_qpu_budget

        seconds = check_qpu_budget(seconds)
        unfit = [p for p in self.layers if p.problem]
        if unfit:
            raise QPUBudgetError(f"--qpu-budget={seconds:g} s: layer {unfit[0].name} cannot run on this solver "
                                 f"({unfit[0].problem}); nothing was sent to the QPU")
        if self.decomposed:
            raise QPUBudgetError(f"--qpu-budget={seconds:g} s: {self.decomposed} neuron(s) have more variables than "
                                 "the largest clique (or the capacity given) and are decomposed at run time, so "
                                 "their QPU time cannot be estimated; nothing was sent to the QPU. Run without "
                                 "--qpu-budget to go ahead")
        est = self.estimate_us
        if est is None:
            raise QPUBudgetError(f"--qpu-budget={seconds:g} s: solver {self.solver} publishes no "
                                 "problem_timing_data, so the run's QPU time cannot be estimated; run without "
                                 "--qpu-budget to go ahead")
        if est / 1e6 > seconds:
            raise QPUBudgetError(f"--qpu-budget={seconds:g} s: the plan needs an estimated {est / 1e6:.4f} s of "
                                 f"QPU access time in {self.num_calls} calls; nothing was sent to the QPU. Raise "
                                 "the budget, or lower num_reads, the bit widths or the methods")


def neuron_groups(qpu, sizes: np.ndarray, parallel: bool) -> tuple[list, str | None]:
    """A layer's neurons in groups sharing a clique: ``([(neurons, embeddings, per_call)], problem)``.

    One neuron per call: each neuron on the best clique of its own size (as the per-neuron path samples it).
    Many per call: neurons are grouped by the longest chain of their own size's best clique, each group on the
    clique of its largest neuron, so that no neuron gets longer chains than it would alone (a layer of 9- to
    11-variable neurons on Pegasus: 9 and 10 have chains of 2 qubits, 11 of 3, so two groups), and every group
    as many per call as disjoint embeddings of its clique with chains no longer than that fit.
    """
    own = {int(s): qpu.cliques.get(int(s), 1) for s in np.unique(sizes[sizes > 0])}
    missing = [s for s, found in own.items() if not len(found)]
    if missing:
        return [], f"no clique embedding of {missing[-1]} variables found on this solver"
    if not parallel:
        return [([int(i) for i in np.flatnonzero(sizes == s)], found, 1) for s, found in own.items()], None
    longest = {s: max(len(chain) for chain in found.embeddings[0]) for s, found in own.items()}
    groups = []
    for chain in sorted(set(longest.values())):
        members = [s for s in own if longest[s] == chain]
        neurons = [int(i) for i in np.flatnonzero(np.isin(sizes, members))]
        found = qpu.cliques.best(max(members), chain) if len(neurons) > 1 else own[max(members)]
        groups.append((neurons, found, len(found)))
    return groups, None


def check_capacity_option(qpu, capacity) -> int:
    """The ``capacity`` option (the decomposition's sub-problem size), refused above the largest clique of ``qpu``'s
    solver (its sub-problems would not fit: each call would fail, after the training)."""
    capacity, limit = check_positive("capacity", capacity), qpu.max_variables
    if capacity > limit:
        raise InvalidArgumentError(f"capacity={capacity} is above the {limit} variables of the largest clique that "
                                   f"backend {qpu.name!r} embeds on {qpu.solver}: the decomposition's sub-problems "
                                   f"must fit it; give at most {limit}, or leave it out")
    return capacity


def plan_problems(qpu, problems, warm_start: bool, options: Mapping[str, Any], known: Sequence[str]) -> QPUPlan:
    """The plan of ``problems`` (layer problems: names, bits, free variables) on ``qpu`` with ``options``
    (those in ``known``; ``parallel`` defaults to the sampler's). Neurons above the largest clique, or above a
    ``capacity`` option (the decomposition's sub-problem size), are decomposed at run time: listed, not planned.

    Raises:
        InvalidArgumentError: a ``capacity`` above the largest clique (its sub-problems would not fit).
    """
    capacity = options.get("capacity")
    options = {k: v for k, v in options.items() if k in known and k != "capacity"}
    options.setdefault("anneal", qpu.anneal)
    parallel = options.pop("parallel", qpu.parallel)
    if not isinstance(parallel, bool):
        raise InvalidArgumentError(f"parallel={parallel!r} must be True or False")
    settings = anneal_settings(qpu.child.parameters, options, warm_start and parallel, qpu.num_reads,
                               qpu.reversal_point, qpu.reversal_pause)
    check_solver_ranges(qpu.child.properties, {**options, **settings.solver_kwargs()}, qpu.name)
    limit = qpu.max_variables if capacity is None else check_capacity_option(qpu, capacity)
    layers = []
    for p in problems:
        sizes = np.asarray(p.free).sum(axis=1)
        over = sizes > limit  # decomposed at run time
        fits = np.where(over, 0, sizes)
        groups, problem = neuron_groups(qpu, fits, parallel) if fits.any() else ([], None)
        layers.append(plan_layer(p.name, p.grid.bits, fits.tolist(), groups, settings, qpu.child.properties,
                                 problem, tuple(int(i) for i in np.flatnonzero(over))))
    return QPUPlan(qpu.name, qpu.solver, tuple(layers))


def plan_bqms(qpu, bqms, repeats: int, name: str, options: Mapping[str, Any], known: Sequence[str]) -> QPUPlan:
    """Each of ``bqms`` sampled on its own, ``repeats`` times: one neuron per call, forward anneal."""
    sizes = [bqm.num_variables for bqm in bqms]
    free = np.arange(max(sizes, default=0))[None, :] < np.asarray(sizes, dtype=int)[:, None]
    problem = SimpleNamespace(name=name, grid=SimpleNamespace(bits=None), free=free)
    layer = plan_problems(qpu, [problem], False, {**options, "parallel": False}, known).layers[0]
    return QPUPlan(qpu.name, qpu.solver, tuple(replace(layer, name=f"{name} #{r + 1}") for r in range(repeats)))
