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
from qannealq.checks import check_flag, check_positive, is_number
from qannealq.errors import InvalidArgumentError

__all__ = ["AnnealSettings", "anneal_settings", "check_solver_ranges", "check_anneal_schedule", "estimate_access_us",
           "ANNEAL_MODES", "starts_at_one",
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
    ``num_reads=100000``, which its annealer then ran for minutes. ``backend``: named in the error.

    ``annealing_time`` and ``anneal_schedule`` together are refused too: the solver takes one or the other (a
    schedule's last time is its anneal time); both went through every check and failed in dwave-cloud-client's
    timing estimate (a ``ValueError`` traceback after training) or at the first call."""
    if options.get("annealing_time") is not None and options.get("anneal_schedule") is not None:
        who = f" (backend {backend!r})" if backend else ""
        raise InvalidArgumentError(f"annealing_time={options['annealing_time']!r} and anneal_schedule="
                                   f"{options['anneal_schedule']!r} were both given{who}: the solver takes only one "
                                   "(a schedule's last time t is its anneal time); give one of them")
    for name in RANGED_OPTIONS:
        value, bounds = options.get(name), properties.get(f"{name}_range")
        if value is None or not bounds or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        low, high = bounds
        if not low <= value <= high:
            who = f" (backend {backend!r})" if backend else ""
            raise InvalidArgumentError(f"{name}={value!r} is outside the solver's {name}_range [{low:g}, {high:g}]"
                                       f"{who}: give a value in it")
    if options.get("anneal_schedule") is not None:
        check_anneal_schedule(options["anneal_schedule"], properties, backend)
    _check_run_duration(properties, options, backend)


def _check_run_duration(properties: Mapping, options: Mapping[str, Any], backend: str) -> None:
    """Refuse a call longer than the solver's ``problem_run_duration_range``, before any call. D-Wave's formula
    (the property's documentation; dwave-cloud-client's ``max_num_reads``) is ``(annealing_time +
    readout_thermalization) x num_reads + programming_thermalization``, the solver's defaults where not given and
    an ``anneal_schedule``'s last time as the anneal. Each option alone may be in its range while their product
    is not (``num_reads=10000, annealing_time=2000``: 20 s against Advantage's 1 s), which the QPU refuses only
    when the problem is submitted, after training."""
    bounds, reads = properties.get("problem_run_duration_range"), options.get("num_reads")
    if not bounds or not is_number(reads):
        return
    schedule = options.get("anneal_schedule")
    anneal = float(schedule[-1][0]) if schedule else options.get("annealing_time")
    parts = {"annealing_time": anneal, "readout_thermalization": options.get("readout_thermalization"),
             "programming_thermalization": options.get("programming_thermalization")}
    for name, value in parts.items():
        parts[name] = float(value if is_number(value) else properties.get(f"default_{name}", 0.0) or 0.0)
    per_read = parts["annealing_time"] + parts["readout_thermalization"]
    duration = per_read * reads + parts["programming_thermalization"]
    if duration > bounds[1]:
        who = f" (backend {backend!r})" if backend else ""
        most = int((bounds[1] - parts["programming_thermalization"]) // per_read) if per_read > 0 else 0
        raise InvalidArgumentError(
            f"num_reads={reads!r} x (annealing time {parts['annealing_time']:g} us + readout_thermalization "
            f"{parts['readout_thermalization']:g} us) + programming_thermalization "
            f"{parts['programming_thermalization']:g} us = {duration:g} us is over the solver's "
            f"problem_run_duration_range maximum of {bounds[1]:g} us{who}: use at most {max(most, 0)} reads per "
            f"call at these settings, or a shorter anneal")


def check_anneal_schedule(schedule: Any, properties: Mapping, backend: str = "") -> None:
    """Refuse an ``anneal_schedule`` the solver would refuse, before any call (the QPU refuses it only when a
    problem is submitted, after training; the mock did not at all). The rules are those of D-Wave's
    ``anneal_schedule`` parameter, as dwave-system's ``DWaveSampler.validate_anneal_schedule`` applies them
    with the solver's ``annealing_time_range`` and ``max_anneal_schedule_points``: 2 to that many ``[t, s]``
    points, ``t`` (microseconds) increasing up to the longest anneal time, ``s`` in [0, 1] ending at 1 and
    starting at 0 (a forward anneal, ``s`` never decreasing) or 1 (a reverse one), no slope steeper than one
    over the shortest anneal time."""
    who = f" (backend {backend!r})" if backend else ""
    example = "e.g. [[0, 0], [20, 1]] (forward, 20 us) or [[0, 1], [1, 0.35], [9, 0.35], [10, 1]] (reverse)"

    def refuse(why: str) -> None:
        raise InvalidArgumentError(f"anneal_schedule={schedule!r}{who}: {why}; {example}")

    if not isinstance(schedule, (list, tuple)) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and is_number(p[0]) and is_number(p[1]) for p in schedule):
        refuse("must be a list of [t, s] points, t in microseconds and s the anneal fraction")
    most = properties.get("max_anneal_schedule_points")
    if len(schedule) < 2 or (most is not None and len(schedule) > most):
        refuse(f"has {len(schedule)} point(s); the solver takes 2 to {most if most is not None else 'its maximum'}")
    times, fractions = [float(p[0]) for p in schedule], [float(p[1]) for p in schedule]
    if any(b <= a for a, b in zip(times, times[1:])):
        refuse("its times t must increase from point to point")
    if any(not 0.0 <= f <= 1.0 for f in fractions):
        refuse("its anneal fractions s must lie in [0, 1]")
    if fractions[-1] != 1.0:
        refuse("its last point's anneal fraction s must be 1")
    if fractions[0] not in (0.0, 1.0):
        refuse("its first point's s must be 0 (a forward anneal) or 1 (a reverse anneal)")
    if fractions[0] == 0.0 and any(b < a for a, b in zip(fractions, fractions[1:])):
        refuse("a forward anneal's s must never decrease")
    bounds = properties.get("annealing_time_range")
    if bounds and times[-1] > bounds[1]:
        refuse(f"it lasts {times[-1]:g} us, beyond the solver's longest anneal ({bounds[1]:g} us, "
               "annealing_time_range)")
    if bounds and bounds[0] > 0:
        steepest = max(abs(b - a) / (u - t) for (t, a), (u, b) in zip(zip(times, fractions),
                                                                       zip(times[1:], fractions[1:])))
        if round(steepest, 10) > 1.0 / bounds[0]:
            refuse(f"a segment's slope {steepest:g} per us is steeper than the solver allows (1 / its shortest "
                   f"anneal time {bounds[0]:g} us = {1.0 / bounds[0]:g})")


NO_WARM_REVERSE = (f"anneal='reverse' needs a warm start to anneal back from: use --warm-start {DEFAULT_WARM_START} "
                   "(the default) or anneal='forward'")


def starts_at_one(schedule: Any) -> bool:
    """Whether an ``anneal_schedule`` starts at s=1 (a reverse anneal; :func:`check_anneal_schedule` names what is
    wrong with a malformed one)."""
    try:
        return float(schedule[0][1]) == 1.0
    except (TypeError, ValueError, IndexError, KeyError):
        return False


def anneal_settings(parameters: Mapping, options: Mapping[str, Any], warm: bool, num_reads: int,
                    reversal_point: float = 0.35, reversal_pause: float = 8.0) -> AnnealSettings:
    """The calls' solver parameters from the sampler options.

    ``anneal``: ``auto`` (default: reverse from the warm start when there is one and the solver takes
    ``initial_state`` and ``anneal_schedule``, forward otherwise), ``forward`` or ``reverse``. A given
    ``annealing_time`` or forward ``anneal_schedule`` means forward under ``auto``; an ``anneal_schedule`` that
    starts at s=1 means reverse (it was passed as a forward anneal, which dwave-cloud-client's estimate and the
    solver refuse without an ``initial_state``).

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
    given = options.get("anneal_schedule")
    if starts_at_one(given):
        if mode == "forward":
            raise InvalidArgumentError(f"anneal_schedule={given!r} starts at s=1, a reverse anneal, and anneal="
                                       "'forward' was asked: give a schedule starting at s=0, or anneal='auto'")
        if not warm:
            raise InvalidArgumentError(f"anneal_schedule={given!r} starts at s=1, a reverse anneal, which needs a "
                                       f"warm start to anneal back from and there is none (--warm-start "
                                       f"{DEFAULT_WARM_START}, the default, with parallel=True gives one): give a "
                                       "schedule starting at s=0")
        mode = "reverse"
    forward_asked = "annealing_time" in options or given is not None
    if mode == "reverse" and not supports:
        raise InvalidArgumentError("anneal='reverse': this solver takes no initial_state/anneal_schedule; use "
                                   "anneal='forward' (or 'auto')")
    if mode == "reverse" and not warm:
        raise InvalidArgumentError(NO_WARM_REVERSE)
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
