"""The solver parameters of a layer's QPU calls and their QPU access time, known before any call.

* :func:`anneal_settings` turns the sampler options into the solver parameters of every call of a layer
  (:class:`AnnealSettings`: reads, forward or reverse annealing from the warm start with its schedule). The
  plan and the sampler both use it, so a plan predicts exactly the calls that a run makes.
* :func:`estimate_access_us`: the QPU access time of one call, in microseconds, by dwave-cloud-client's own
  model (``StructuredSolver.estimate_qpu_access_time``) over the solver's ``problem_timing_data`` property;
  None when the solver publishes no timing data.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Mapping

from qannealq.baselines import DEFAULT_WARM_START
from qannealq.checks import check_flag, check_positive
from qannealq.errors import InvalidArgumentError

__all__ = ["AnnealSettings", "anneal_settings", "check_solver_ranges", "estimate_access_us", "ANNEAL_MODES",
           "SOLVER_OPTIONS", "RANGED_OPTIONS", "RAMP_US"]

ANNEAL_MODES = ("auto", "forward", "reverse")
SOLVER_OPTIONS = ("annealing_time", "anneal_schedule", "answer_mode", "label", "programming_thermalization",
                  "readout_thermalization", "reduce_intersample_correlation")
"""Solver parameters passed through to every call (the others are the sampler's own, below)."""
RAMP_US = 1.0
"""Duration of each ramp of the reverse schedule (1 -> reversal point, and back), in microseconds. With the
defaults (reversal point 0.35, pause 8 us) the schedule is ``[[0, 1], [1, 0.35], [9, 0.35], [10, 1]]``,
dwave-system's ``ReverseAdvanceComposite`` default."""


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


def check_reversal_point(option: str, point: Any) -> float:
    """The reverse anneal's ``reversal_point``: a number strictly between 0 and 1."""
    if isinstance(point, bool) or not isinstance(point, (int, float)) or not 0.0 < point < 1.0:
        raise InvalidArgumentError(f"{option}={point!r} must be a number strictly between 0 and 1 "
                                   "(the anneal fraction s the reverse anneal goes back to), e.g. 0.35")
    return float(point)


def check_reversal_pause(option: str, pause: Any) -> float:
    """The reverse anneal's ``reversal_pause``: microseconds in 0..1000."""
    if isinstance(pause, bool) or not isinstance(pause, (int, float)) or not 0.0 <= pause <= 1000.0:
        raise InvalidArgumentError(f"{option}={pause!r} must be microseconds in 0..1000, e.g. 8")
    return float(pause)


def _reverse_schedule(point: Any, pause: Any) -> tuple[tuple[float, float], ...]:
    check_reversal_point("reversal_point", point)
    check_reversal_pause("reversal_pause", pause)
    points = [(0.0, 1.0), (RAMP_US, float(point))]
    if pause > 0:
        points.append((RAMP_US + float(pause), float(point)))
    points.append((points[-1][0] + RAMP_US, 1.0))
    return tuple(points)


RANGED_OPTIONS = ("num_reads", "annealing_time", "programming_thermalization", "readout_thermalization")
"""Options whose range the solver states as a property ``<name>_range`` (:func:`check_solver_ranges`)."""


def check_solver_ranges(properties: Mapping, options: Mapping[str, Any], backend: str = "") -> None:
    """Refuse an option of :data:`RANGED_OPTIONS` outside the solver's ``<name>_range`` property, before any
    call: the QPU refuses it only when the problem is submitted (after training), and the mock took
    ``num_reads=100000``, which its annealer then ran for minutes. ``backend``: named in the error."""
    for name in RANGED_OPTIONS:
        value, bounds = options.get(name), properties.get(f"{name}_range")
        if value is None or not bounds or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        low, high = bounds
        if not low <= value <= high:
            who = f" (backend {backend!r})" if backend else ""
            raise InvalidArgumentError(f"{name}={value!r} is outside the solver's {name}_range [{low:g}, {high:g}]"
                                       f"{who}: give a value in it")


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
    reads = check_positive("num_reads", options.get("num_reads", num_reads))
    reinit = check_flag("reinitialize_state", options.get("reinitialize_state", True))
    passed = tuple((k, options[k]) for k in SOLVER_OPTIONS if k in options and options[k] is not None)
    supports = "initial_state" in parameters and "anneal_schedule" in parameters
    forward_asked = "annealing_time" in options or "anneal_schedule" in options
    if mode == "reverse" and not supports:
        raise InvalidArgumentError("anneal='reverse': this solver takes no initial_state/anneal_schedule; use "
                                   "anneal='forward' (or 'auto')")
    if mode == "reverse" and not warm:
        raise InvalidArgumentError("anneal='reverse' needs a warm start to anneal back from: use --warm-start "
                                   f"{DEFAULT_WARM_START} (the default) or anneal='forward'")
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
