"""QPU access time known before any call: the anneal settings of a call, the solver's timing model, a plan.

* :func:`anneal_settings` turns the sampler options into the solver parameters of every call of a layer
  (:class:`AnnealSettings`: reads, forward or reverse annealing from the warm start with its schedule). The
  plan and the sampler both use it, so a plan predicts exactly the calls that a run makes.
* :func:`estimate_access_us`: the QPU access time of one call, in microseconds, by dwave-cloud-client's own
  model (``StructuredSolver.estimate_qpu_access_time``) over the solver's ``problem_timing_data`` property;
  None when the solver publishes no timing data.
* :func:`plan_layer` assigns a layer's neurons to calls (as many per call as disjoint clique embeddings
  allow, or one with ``parallel=False``); :class:`QPUPlan` holds every layer's calls, prints the plan table
  and refuses a budget (:meth:`QPUPlan.check_budget`) before the first call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Mapping, Sequence

from qannealq.errors import InvalidArgumentError, QannealqError

__all__ = ["AnnealSettings", "anneal_settings", "estimate_access_us", "CallPlan", "LayerPlan", "QPUPlan",
           "plan_layer", "QPUBudgetError", "ANNEAL_MODES", "SOLVER_OPTIONS", "PLAN_OPTIONS"]

ANNEAL_MODES = ("auto", "forward", "reverse")
SOLVER_OPTIONS = ("annealing_time", "anneal_schedule", "answer_mode", "label", "programming_thermalization",
                  "readout_thermalization", "reduce_intersample_correlation")
"""Solver parameters passed through to every call (the others are the sampler's own, below)."""
PLAN_OPTIONS = ("num_reads", "anneal", "reversal_point", "reversal_pause", "reinitialize_state", "parallel")
RAMP_US = 1.0
"""Duration of each ramp of the reverse schedule (1 -> reversal point, and back), in microseconds. With the
defaults (reversal point 0.35, pause 8 us) the schedule is ``[[0, 1], [1, 0.35], [9, 0.35], [10, 1]]``,
dwave-system's ``ReverseAdvanceComposite`` default."""


class QPUBudgetError(QannealqError, RuntimeError):
    """A run's estimated QPU access time exceeds ``--qpu-budget`` (raised before the first call)."""


@dataclass(frozen=True)
class AnnealSettings:
    """The solver parameters of every call of a layer.

    Attributes:
        num_reads: reads per call (so per neuron).
        reverse: reverse annealing from the warm start (``initial_state`` set per call).
        schedule: the ``anneal_schedule`` (reverse: ``1 -> s -> pause -> 1``), None for the default anneal.
        reinitialize_state: reverse only: every read starts again from the warm start.
        solver_options: other solver parameters passed through (``annealing_time``...).
        why: why this anneal was chosen (for the plan and the results).
    """

    num_reads: int
    reverse: bool = False
    schedule: tuple[tuple[float, float], ...] | None = None
    reinitialize_state: bool = True
    solver_options: tuple[tuple[str, Any], ...] = ()
    why: str = ""

    def solver_kwargs(self, initial_state: Mapping | None = None) -> dict:
        """Keyword arguments of the solver's ``sample`` (``initial_state``: qubit -> spin, reverse only)."""
        kwargs = dict(self.solver_options, num_reads=self.num_reads)
        if self.schedule is not None:
            kwargs["anneal_schedule"] = [list(point) for point in self.schedule]
        if self.reverse:
            kwargs["initial_state"] = dict(initial_state or {})
            kwargs["reinitialize_state"] = self.reinitialize_state
        return kwargs

    @property
    def anneal(self) -> str:
        """``reverse`` or ``forward``."""
        return "reverse" if self.reverse else "forward"

    def describe(self) -> str:
        """One line: the anneal and its parameters."""
        if not self.reverse:
            return f"forward anneal ({self.why})" if self.why else "forward anneal"
        s = min(p[1] for p in self.schedule or ((0.0, 1.0),))
        pause = sum(b[0] - a[0] for a, b in zip(self.schedule, self.schedule[1:]) if a[1] == b[1] == s)
        return (f"reverse anneal from the warm start (reversal point s={s:g}, pause {pause:g} us, "
                f"{'reinitialized every read' if self.reinitialize_state else 'not reinitialized'})")


def _reverse_schedule(point: Any, pause: Any) -> tuple[tuple[float, float], ...]:
    if isinstance(point, bool) or not isinstance(point, (int, float)) or not 0.0 < point < 1.0:
        raise InvalidArgumentError(f"reversal_point={point!r} must be a number strictly between 0 and 1 "
                                   "(the anneal fraction s the reverse anneal goes back to), e.g. 0.35")
    if isinstance(pause, bool) or not isinstance(pause, (int, float)) or not 0.0 <= pause <= 1000.0:
        raise InvalidArgumentError(f"reversal_pause={pause!r} must be microseconds in 0..1000, e.g. 8")
    points = [(0.0, 1.0), (RAMP_US, float(point))]
    if pause > 0:
        points.append((RAMP_US + float(pause), float(point)))
    points.append((points[-1][0] + RAMP_US, 1.0))
    return tuple(points)


def anneal_settings(parameters: Mapping, options: Mapping[str, Any], warm: bool, num_reads: int,
                    reversal_point: float = 0.35, reversal_pause: float = 8.0) -> AnnealSettings:
    """The calls' solver parameters from the sampler options.

    ``anneal``: ``auto`` (default: reverse from the warm start when there is one and the solver takes
    ``initial_state`` and ``anneal_schedule``, forward otherwise), ``forward`` or ``reverse``. A given
    ``annealing_time`` or forward ``anneal_schedule`` means forward under ``auto``.

    Raises:
        InvalidArgumentError: a bad option, or ``reverse`` without a warm start or on a solver without it.
    """
    mode = options.get("anneal", "auto")
    if mode not in ANNEAL_MODES:
        raise InvalidArgumentError(f"anneal={mode!r} must be one of {', '.join(ANNEAL_MODES)}")
    reads = options.get("num_reads", num_reads)
    if isinstance(reads, bool) or not isinstance(reads, int) or reads < 1:
        raise InvalidArgumentError(f"num_reads={reads!r} must be a positive integer, e.g. 100")
    reinit = options.get("reinitialize_state", True)
    if not isinstance(reinit, bool):
        raise InvalidArgumentError(f"reinitialize_state={reinit!r} must be True or False")
    passed = tuple((k, options[k]) for k in SOLVER_OPTIONS if k in options and options[k] is not None)
    supports = "initial_state" in parameters and "anneal_schedule" in parameters
    forward_asked = "annealing_time" in options or "anneal_schedule" in options
    if mode == "reverse" and not supports:
        raise InvalidArgumentError("anneal='reverse': this solver takes no initial_state/anneal_schedule; use "
                                   "anneal='forward' (or 'auto')")
    if mode == "reverse" and not warm:
        raise InvalidArgumentError("anneal='reverse' needs a warm start to anneal back from: use --warm-start "
                                   "gptq-restricted (the default) or anneal='forward'")
    reverse = mode == "reverse" or (mode == "auto" and warm and supports and not forward_asked)
    if not reverse:
        why = ("asked" if mode == "forward" else "no warm start" if not warm else
               "the solver takes no initial_state" if not supports else "annealing_time/anneal_schedule given")
        return AnnealSettings(reads, False, None, reinit, passed, why)
    schedule = options.get("anneal_schedule")
    if schedule is None:
        schedule = _reverse_schedule(options.get("reversal_point", reversal_point),
                                     options.get("reversal_pause", reversal_pause))
    passed = tuple((k, v) for k, v in passed if k not in ("anneal_schedule", "annealing_time"))
    schedule = tuple((float(t), float(s)) for t, s in schedule)
    if schedule[0][1] != 1.0:
        raise InvalidArgumentError(f"anneal_schedule={list(schedule)!r} must start at s=1 for a reverse anneal")
    return AnnealSettings(reads, True, schedule, reinit, passed, "warm start")


def estimate_access_us(properties: Mapping, num_qubits: int, solver_kwargs: Mapping[str, Any]) -> float | None:
    """Estimated QPU access time (microseconds) of one call with ``solver_kwargs`` on ``num_qubits`` qubits.

    dwave-cloud-client's ``estimate_qpu_access_time`` over the solver's ``problem_timing_data``: programming
    (typical time, thermalization, reverse-anneal delta) plus reads x (anneal + readout for the qubit count +
    delay). None when the solver publishes no timing data.
    """
    if not properties.get("problem_timing_data"):
        return None
    from dwave.cloud.solver import StructuredSolver

    kw = dict(solver_kwargs)
    return float(StructuredSolver.estimate_qpu_access_time(
        SimpleNamespace(properties=properties), int(num_qubits), num_reads=int(kw.get("num_reads", 1)),
        annealing_time=kw.get("annealing_time"), anneal_schedule=kw.get("anneal_schedule"),
        initial_state=kw.get("initial_state") or None, reinitialize_state=bool(kw.get("reinitialize_state")),
        programming_thermalization=kw.get("programming_thermalization"),
        readout_thermalization=kw.get("readout_thermalization"),
        reduce_intersample_correlation=bool(kw.get("reduce_intersample_correlation"))))


@dataclass(frozen=True)
class CallPlan:
    """One QPU call: the layer's neurons it solves (in embedding order), its qubits, its estimate (us)."""

    neurons: tuple[int, ...]
    qubits: int
    estimate_us: float | None


@dataclass(frozen=True)
class LayerPlan:
    """A layer's QPU calls.

    Attributes:
        name, bits: the layer and its bit width.
        neurons: neurons with a BQM (a neuron with no free variable needs no call).
        clique_size: variables of the layer's largest neuron (the clique every neuron is embedded on).
        per_call: neurons per call at most (disjoint embeddings used; 1 with ``parallel=False``).
        calls: the calls, in submission order.
        settings: the calls' solver parameters.
        embeddings: the clique embeddings (:class:`~._dwave_cliques.CliqueEmbeddings`), None if it does not fit.
        problem: why the layer cannot run on this solver (None when it can).
    """

    name: str
    bits: int | None
    neurons: int
    clique_size: int
    per_call: int
    calls: tuple[CallPlan, ...]
    settings: AnnealSettings
    embeddings: Any = field(default=None, repr=False, compare=False)
    problem: str | None = None

    @property
    def estimate_us(self) -> float | None:
        """The layer's estimated QPU access time (None if any call has no estimate)."""
        times = [c.estimate_us for c in self.calls]
        return None if any(t is None for t in times) else float(sum(times))


def plan_layer(name: str, bits: int | None, sizes: Sequence[int], embeddings, per_call: int,
               settings: AnnealSettings, properties: Mapping, problem: str | None = None) -> LayerPlan:
    """Neurons with variables, in order, ``per_call`` at a time, each on the next disjoint embedding."""
    active = [i for i, size in enumerate(sizes) if size > 0]
    size = max((int(s) for s in sizes), default=0)
    if problem is not None or not active:
        return LayerPlan(name, bits, len(active), size, 0, (), settings, None, problem)
    per_call = max(1, min(per_call, len(active)))
    kwargs = settings.solver_kwargs({0: 1} if settings.reverse else None)
    calls = []
    for start in range(0, len(active), per_call):
        chunk = tuple(active[start:start + per_call])
        qubits = sum(embeddings.qubits(k, int(sizes[i])) for k, i in enumerate(chunk))
        calls.append(CallPlan(chunk, qubits, estimate_access_us(properties, qubits, kwargs)))
    return LayerPlan(name, bits, len(active), size, per_call, tuple(calls), settings, embeddings)


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
        est = self.estimate_us
        total = "unknown (the solver publishes no problem_timing_data)" if est is None else f"{est / 1e6:.4f} s"
        lines.append(f"total: {self.num_calls} QPU calls, estimated QPU access time {total}")
        anneals = sorted({p.settings.describe() for p in self.layers if p.calls})
        lines += [f"anneal: {a}" for a in anneals]
        return "\n".join(lines)

    def check_budget(self, seconds: float) -> None:
        """Refuse the run when its estimate exceeds ``seconds`` (or cannot be made).

        Raises:
            QPUBudgetError: the estimate exceeds the budget, a layer does not fit, or no timing model.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
                or seconds <= 0:
            raise InvalidArgumentError(f"--qpu-budget={seconds!r} must be a positive number of seconds")
        unfit = [p for p in self.layers if p.problem]
        if unfit:
            raise QPUBudgetError(f"--qpu-budget={seconds:g} s: layer {unfit[0].name} cannot run on this solver "
                                 f"({unfit[0].problem}); nothing was sent to the QPU")
        est = self.estimate_us
        if est is None:
            raise QPUBudgetError(f"--qpu-budget={seconds:g} s: solver {self.solver} publishes no "
                                 "problem_timing_data, so the run's QPU time cannot be estimated; run without "
                                 "--qpu-budget to go ahead")
        if est / 1e6 > seconds:
            raise QPUBudgetError(f"--qpu-budget={seconds:g} s: the plan needs an estimated {est / 1e6:.4f} s of "
                                 f"QPU access time in {self.num_calls} calls; nothing was sent to the QPU. Raise "
                                 "the budget, or lower num_reads, the bit widths or the methods")
