"""``layer-sa``'s effort, anneal schedule and clock, shared by the numba and torch runs and the single-BQM path.

:func:`effort` sizes the reads and sweeps to the problem and the ``effort`` preset, :func:`hot_ladder` gives
each read its hot end, :func:`anneal_plan` the rows of the reheat anneal (owner and both schedule ends of each
row) and :class:`Clock` the time limit of a solve and its energy trace.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from ._layer_dense import DenseQubos, Rows, beta_ends, beta_schedule, excess_ends

__all__ = ["EFFORTS", "WIDE", "RTN_INPUTS", "CHAIN_INPUTS", "CHAIN_DEPTH", "POPULATION_INPUTS", "RECOMBINE_SWEEPS",
           "Preset", "Population", "preset", "population", "rtn_start", "beam_growth",
           "chain_depth", "effort", "recombination", "cycles", "time_to_target", "hot_ladder", "anneal_plan",
           "anneal_schedule", "restricted", "Clock"]


@dataclass(frozen=True)
class Preset:
    """How much an ``effort`` level anneals, on top of the size scaling of :func:`effort`.

    Attributes:
        reads: factor on the size-scaled reads.
        sweeps: factor on the size-scaled sweeps of small problems.
        max_sweeps: ceiling of those.
        wide_sweeps: sweeps per input on wide layers (where the small-problem scaling gives fewer).
        rtn_start: polish the RTN start too on layers narrower than :data:`RTN_INPUTS` (a second start: one
            more polish; on wide layers it seldom wins: 1-2 of MNIST's 128 first-layer neurons, none of 32
            CIFAR-10 ones).
        chain_sweeps, chain_per_input: sweeps of chain moves (:func:`chain_depth`) on layers that use them,
            ``max(chain_sweeps, chain_per_input · m)``, in place of ``wide_sweeps``; 0: no chains (the start is
            polished by single and pair flips in every preset).
        layer_flips: flips a layer's anneal of single and pair flips is offered at least (reads x sweeps x
            neurons x inputs), up to ``max_sweeps``: a small layer (few neurons, or few inputs) then anneals
            longer, where a sweep costs little beside the layer's fixed costs (its warm start, polish and
            energies). Layers of chain moves are not small: their sweeps are ``chain_sweeps`` and
            ``chain_per_input``'s.
        beam, beam_per_input: width of the beam search over GPTQ's roundings that the solve loop's warm start
            runs on a shared ``H`` (:func:`qannealq.baselines.warm_start_integers`), ``max(beam, round(beam_per_input
            · m))`` on ``m`` inputs (Python's rounding, half to even: 1536 for 3073 / 2; :func:`beam_width`; 0:
            GPTQ-restricted's own start).
        hot_temperature: the hot end of the schedules of layers of chain moves, in units of each neuron's
            excess over its floor (:func:`._layer_dense.excess_ends`): a beam's start is close to the optimum,
            and a colder reheat keeps what it found. Wide layers of pair flips keep :data:`HOT_TEMPERATURE`.
        population: on layers of chain moves of at least :data:`POPULATION_INPUTS` coordinates, a population
            of reads and its recombination instead of one long anneal (:class:`Population`); None: none.
        beam_sweeps: sweeps of chain moves on a layer that starts from the preset's beam (a shared ``H``, no
            population: :attr:`._layer_dense.DenseQubos.beamed`), in place of ``chain_sweeps`` and
            ``chain_per_input``'s; None: those. The beam decides the basin its start lies in, and a short cold
            anneal only polishes within it: on MNIST's first layer the default's and ``thorough``'s best states
            differ in a median 157 of a neuron's 599 live coordinates, two seeds of either in 4-7, and the
            default's 4 sweeps after a beam of 157 ended 0.04 % below one sweep; the time of the other three
            widens the beam to 196, 0.5-0.7 % lower (docs/layer-sa.md).
    """

    reads: float
    sweeps: float
    max_sweeps: int
    wide_sweeps: float
    rtn_start: bool
    chain_sweeps: int
    chain_per_input: float
    layer_flips: float
    beam: int
    beam_per_input: float
    hot_temperature: float
    population: "Population | None" = None
    beam_sweeps: int | None = None


@dataclass(frozen=True)
class Population:
    """A preset's search on wide layers (:data:`POPULATION_INPUTS` coordinates or more, chain moves): a narrower
    beam, ``reads`` short anneals per neuron, all cold (one rung of :func:`hot_ladder`), then ``rounds`` of
    recombination (:func:`recombination`).

    On such layers (CIFAR-10's first: 3073 inputs, 1024 calibration images, so ``H`` is singular far beyond its
    dead inputs) a neuron has many distinct deep minima: two anneals from the same start end a few percent apart
    and disagree on an eighth of the coordinates, and each neuron's best of several runs lies well below any one
    run. A population of short reads finds more of them than one long read, and recombination then searches
    where the reads disagree. Measured on CIFAR-10's first layer (``benchmarks/frontier.py``; docs/layer-sa.md), it
    ends lower than the beam of ``m / 5`` and one read of ``m / 192`` sweeps in the same time; on MNIST's
    (785 inputs, H of full rank), reads disagree on 4 % of the coordinates and it gains 0.1 % for 17 % more
    time, so narrower layers keep one read. Its threshold counts the layer's coordinates, dead ones included,
    as the beam's width does (:func:`population`).

    Attributes:
        reads, sweeps: the population's reads per neuron and their sweeps.
        rounds, round_sweeps: rounds of recombination and the sweeps of each round's anneal.
        beam: the warm start's beam width (:func:`beam_width`, in its last block) on these layers (None: the
            preset's own). ``default``: 768, widening from 96 (``growth`` 8); a constant width beyond 256
            bought less than the population in the same time (start energy on CIFAR-10's first layer, int4:
            1.8 % lower at 615 than at 256, for 1.9x the beam's time), the widening beam more (docs/layer-sa.md).
        cycles: populations in a row (:func:`cycles`): each after the first reheats its reads from every
            neuron's best state so far and recombines them again.
        growth: the beam's last block's width over its first's (:func:`beam_growth`; 1: a constant width).
    """

    reads: int
    sweeps: int
    rounds: int
    round_sweeps: int
    beam: int | None = None
    cycles: int = 1
    growth: float = 1.0


#: Coordinates from which a preset's :class:`Population` replaces its single read (layers of chain moves).
POPULATION_INPUTS = 1024
#: Where a ``time_limit`` narrowed the warm start's beam (``start_cut``: the limit binds, and the result depends on
#: timing anyway), a :class:`Population` has at most this many reads per cycle, and its cycles go on while the time
#: lasts (up to :data:`LIMITED_CYCLES`; ``num_reads`` and ``cycles`` override both): the preset's reads suit the
#: search without a limit, where every cycle runs its full schedule, but under a limit the anneal of many reads is
#: cut to a fraction of its sweeps and no recombination fits. A limit the warm start meets changes nothing. On
#: CIFAR-10's first layer (int4, above the best known, alternating in one process): under 10 GPTQ times 6 reads
#: ended 23.5 %, 4 22.4 %, 3 20.2 %, 2 19.5 % (ending early, at 9.56x); under 20, 6 reads 17.7 %, 4 14.8 %, 3 with
#: cycles while the time lasts 14.8 %, 2 so 15.4 %. The rule against the preset under 10x: int4 24.5 -> 20.3 %,
#: int2 26.8 -> 22.4 % (docs/layer-sa.md, "Fewer reads where the limit binds").
LIMITED_READS = 3
LIMITED_CYCLES = 64


#: The hot temperature of wide layers of pair flips (:func:`hot_temperature`). From the beam's start the
#: output layers of the MNIST and EMNIST MLPs (129 and 247 live inputs, 50 and 82 sweeps of many reads) end
#: 7 and 12 % higher at int2 at the chain layers' 0.025 (the Results sweeps), and EMNIST's at 0.2 as before.
HOT_TEMPERATURE = 0.2


#: The ``effort`` presets. ``fast`` polishes GPTQ-restricted's start (single and pair flips) and anneals only
#: problems small enough to be cheap; ``default`` starts from a beam search of width ``max(128, m / 4)`` over
#: GPTQ's roundings (:func:`qannealq.baselines.warm_start_integers`; 196 on MNIST's first layer; 157, ``m / 5``,
#: until the beam took the time of its anneal's last three sweeps: the survivors share a trunk, so the beam's
#: cost relative to GPTQ's stays about the same, :mod:`qannealq._gptq_beam`) and anneals once per neuron, cold
#: on layers of chain moves (``hot_temperature`` 0.025: the beam's start is within a few percent of the best
#: known, and a hotter reheat, 0.2 until the beam, undoes it; layers of pair flips keep 0.2); from
#: :data:`CHAIN_INPUTS` inputs on, one sweep of chain moves after the beam (``beam_sweeps``; ``max(4, m / 192)``
#: without it, and on the relu-aware objective's per-neuron ``H_i`` after theirs), below that ``m / 20`` sweeps of
#: pair flips;
#: ``thorough`` widens the beam to ``max(512, m / 2)`` and anneals 16-64 times longer. A layer of pair flips
#: gets at least ``layer_flips`` flips (2^20 by default: the output layers of the MNIST and EMNIST MLPs, 10 x 129
#: and 26 x 257, anneal 50 and 82 sweeps instead of 18 and 12, for 4-5 % less error in a few hundredths of a
#: second). From :data:`POPULATION_INPUTS` inputs on, ``default`` and ``thorough``
#: anneal a :class:`Population` of short reads and recombine it instead (``default``: a beam widening from 96
#: to 768 along GPTQ's order, then two cycles of 6 reads x 4 sweeps and a round of 8 sweeps; ``thorough``: its
#: beam, then four cycles of 8 x 4 and 2 rounds of 8; before the cycles, one population: 6 x 4 and 2 rounds of
#: 8, and 8 x 16 and 3 rounds of 16; before the widening beam, ``default``'s was a constant 256 and 4 reads).
EFFORTS: dict[str, Preset] = {
    "fast": Preset(1.0, 1.0, 256, 0.0, False, 0, 0.0, 0.0, 0, 0.0, HOT_TEMPERATURE),
    "default": Preset(1.0, 1.0, 256, 1 / 20, True, 4, 1 / 192, 2.0**20, 128, 1 / 4, 0.025,
                      Population(reads=6, sweeps=4, rounds=1, round_sweeps=8, beam=768, cycles=2, growth=8.0),
                      beam_sweeps=1),
    "thorough": Preset(4.0, 16.0, 4096, 1.0, True, 256, 1 / 12, 2.0**24, 512, 1 / 2, 0.025,
                       Population(reads=8, sweeps=4, rounds=2, round_sweeps=8, cycles=4)),
}


#: Widest layer (coordinates) on which the RTN start is polished by default.
RTN_INPUTS = 256

#: Free variables from which a layer's anneal scales its temperatures to the error left to gain: measured
#: better on 129-input layers (MNIST's second), as good at 65, worse at 33 (digits' second layer).
WIDE = 100


def preset(params: dict[str, Any]) -> Preset:
    """The :class:`Preset` named by ``params["effort"]`` (None: ``default``)."""
    return EFFORTS[params.get("effort") or "default"]


def population(params: dict[str, Any], m: int | None, inputs: int | None = None) -> Population | None:
    """The preset's :class:`Population` where it applies: layers of chain moves (:func:`chain_depth`, on ``m``
    coordinates) of at least :data:`POPULATION_INPUTS` coordinates (``inputs``, the layer's, dead ones included,
    as the beam's width counts them; None: ``m``; ``m`` None: not a layer's size, none). Where a ``time_limit``
    narrowed the warm start's beam (``start_cut``), at most :data:`LIMITED_READS` reads, and
    :data:`LIMITED_CYCLES` cycles, which end with the time."""
    p = preset(params)
    size = m if inputs is None else inputs
    if p.population is None or m is None or size < POPULATION_INPUTS or chain_depth(params, m) < 3:
        return None
    if params.get("time_limit") is not None and params.get("start_cut"):
        return dataclasses.replace(p.population, reads=min(p.population.reads, LIMITED_READS), cycles=LIMITED_CYCLES)
    return p.population


def beam_width(params: dict[str, Any], m: int | None = None) -> int:
    """The warm start's beam width: ``params["warm_start_beam"]``, or (None) the preset's on ``m`` inputs,
    ``max(beam, round(beam_per_input · m))`` (``m`` None: ``beam``), or where the preset's :class:`Population`
    applies and sets one, its width (in the beam's last block: :func:`beam_growth`). Default: 196 on MNIST's
    785-input first layer (157 before its anneal's sweeps went to the beam), 768 widening from 96 on CIFAR-10's
    3073 (a constant 256 before, 615 before the population); ``thorough`` 512 and 1536."""
    chosen = params.get("warm_start_beam")
    if chosen is not None:
        return int(chosen)
    wide = population(params, m)
    if wide is not None and wide.beam is not None:
        return int(wide.beam)
    p = preset(params)
    if not p.beam or m is None:
        return int(p.beam)
    return int(max(p.beam, round(p.beam_per_input * int(m))))


def beam_growth(params: dict[str, Any], m: int | None = None) -> float:
    """The warm start's beam's last block's width over its first's (:func:`qannealq._gptq_beam.beam_widths`):
    ``params["warm_start_growth"]``, or (None) the preset's :class:`Population`'s where one applies on ``m``
    inputs, else 1 (a constant width). ``default`` widens from 96 to 768 on CIFAR-10's first layer: the last
    inputs of GPTQ's order have the fewest left to take up their rounding errors, and a wide beam there ends
    lower than a constant width of the same cost (docs/layer-sa.md)."""
    chosen = params.get("warm_start_growth")
    if chosen is not None:
        return float(chosen)
    wide = population(params, m)
    return float(wide.growth) if wide is not None else 1.0


def hot_temperature(params: dict[str, Any], m: int) -> float:
    """``params["hot_temperature"]``, or (None) the preset's on a layer of chain moves over ``m`` coordinates
    (:func:`chain_depth`), :data:`HOT_TEMPERATURE` on one of pair flips."""
    chosen = params.get("hot_temperature")
    if chosen is not None:
        return float(chosen)
    return float(preset(params).hot_temperature if chain_depth(params, m) >= 3 else HOT_TEMPERATURE)


def rtn_start(params: dict[str, Any], m: int) -> bool:
    """Whether to polish the RTN start too: ``params["rtn_start"]``, or (None) the preset's choice below
    :data:`RTN_INPUTS` coordinates."""
    if params["rtn_start"] is not None:
        return bool(params["rtn_start"])
    return preset(params).rtn_start and m < RTN_INPUTS


#: Coordinates from which a layer's moves are chains (:func:`chain_depth`) by default.
CHAIN_INPUTS = 256

#: Default chain length on those layers.
CHAIN_DEPTH = 4


def chain_depth(params: dict[str, Any], m: int) -> int:
    """Length of the chain moves (:func:`._layer_kernel._chain_sweep`) on ``m`` coordinates: ``params["chain"]``
    up to ``m`` (at least 3), or (None) :data:`CHAIN_DEPTH` from :data:`CHAIN_INPUTS` coordinates on, else 0; below
    3, single and pair flips.

    A chain's members are distinct coordinates, so no chain is longer than ``m``: the numba kernel stops there, but
    it allocated ``chain`` slots a row and sweep (``chain=10**9`` on a 21-coordinate layer ran past 5 minutes) and
    the torch path builds every step up to ``chain`` (``chain=210`` there took 186 s against 25 s for 21, the same
    result)."""
    if params.get("chain") is not None:
        return min(int(params["chain"]), max(int(m), 3))
    return CHAIN_DEPTH if m >= CHAIN_INPUTS and preset(params).chain_sweeps > 0 else 0


def effort(params: dict[str, Any], m: int, neurons: int | None = None, inputs: int | None = None,
           beamed: bool = False) -> tuple[int, int]:
    """``(num_reads, num_sweeps)`` of problems on ``m`` coordinates, the ``neurons`` of a layer (None: not a
    layer, e.g. one BQM: no layer floor); where None, scaled to the size and the ``effort`` preset.

    Small problems are cheap and rugged, wide ones smooth and costly per sweep: ``num_reads = clip(f_r 2^25 /
    m³, 1, 128)``, ``num_sweeps = max(min(f_s 2^32 / m⁴, max), w, min(F / (reads · neurons · m), max))`` with
    the preset's factors ``f_r, f_s``, ceiling, wide-layer sweeps ``w`` (:data:`EFFORTS`: its ``chain_sweeps``
    where the moves are chains, :func:`chain_depth`, else ``wide_sweeps · m``) and layer flips ``F`` (layers of
    pair flips only); on a layer of chain moves that starts from the preset's beam (``beamed``, a layer's
    ``neurons`` given) the preset's ``beam_sweeps`` in place of ``w``; on a layer where the preset's
    :class:`Population` applies (:func:`population`), its reads and sweeps instead. Default: 1 read x 1 sweep of
    chains on a 785-input layer from its beam (1 x 4 without one, and on the relu-aware objective's per-neuron
    ``H_i`` after theirs),
    6 x 4 on a 3073-input layer (one BQM of that size: 1 x 16), 15 x 15 at 129 (10 neurons: 15 x 55), 122 x 240
    on 65-variable neurons, 128 x 256 below that.
    """
    p = preset(params)
    m = max(int(m), 1)
    chains = chain_depth(params, m) >= 3
    reads = params["num_reads"] if params["num_reads"] is not None else np.clip(p.reads * 2**25 / m**3, 1, 128)
    wide = max(p.chain_sweeps, p.chain_per_input * m) if chains else p.wide_sweeps * m
    if chains and beamed and neurons is not None and p.beam_sweeps is not None:
        wide = p.beam_sweeps  # a beam's start: polished within its basin (:class:`Preset`)
    floor = 0 if neurons is None or chains else min(
        np.ceil(p.layer_flips / (int(reads) * max(int(neurons), 1) * m)), p.max_sweeps)
    sized = max(min(p.sweeps * 2**32 / m**4, p.max_sweeps), wide, floor)
    wide_layer = population(params, m, inputs) if neurons is not None else None
    if wide_layer is not None:  # a population instead of one long read (:class:`Population`)
        reads = params["num_reads"] if params["num_reads"] is not None else wide_layer.reads
        sized = wide_layer.sweeps
    sweeps = params["num_sweeps"] if params["num_sweeps"] is not None else sized
    return int(reads), int(sweeps)


def recombination(params: dict[str, Any], m: int, reads: int, inputs: int | None = None) -> tuple[int, int]:
    """``(rounds, sweeps)`` of recombination after an anneal of ``reads`` rows per neuron on ``m`` coordinates
    (of a layer of ``inputs``, :func:`population`):
    ``params["recombine"]`` and ``params["recombine_sweeps"]``, or (None) the preset's :class:`Population`'s
    where it applies (:func:`population`; else no rounds, and :data:`RECOMBINE_SWEEPS` sweeps when only the
    rounds are given); no rounds with fewer than two reads.

    A round takes each neuron's reads, keeps the coordinates on which they all agree (its *backbone*) and
    anneals the others only, from the best state found so far, with ``reads`` rows again (one in the last
    round): the reads' disagreement marks where the search is still undecided, and a search of those
    coordinates alone, with its schedule scaled to their number, goes much further in the same time than a
    longer anneal of all (:mod:`.layer_sa`).
    """
    wide = population(params, m, inputs)
    rounds = params.get("recombine")
    rounds = (wide.rounds if wide is not None else 0) if rounds is None else int(rounds)
    sweeps = params.get("recombine_sweeps")
    sweeps = (wide.round_sweeps if wide is not None else RECOMBINE_SWEEPS) if sweeps is None else int(sweeps)
    return (rounds, sweeps) if reads >= 2 and sweeps > 0 else (0, sweeps)


def cycles(params: dict[str, Any], m: int, inputs: int | None = None) -> int:
    """Populations in a row on ``m`` coordinates (of a layer of ``inputs``, :func:`population`): ``params["cycles"]``,
    or (None) the preset's :class:`Population`'s where it applies, else 1.

    A cycle after the first anneals a new population from every neuron's best state so far (its schedule scaled
    to that state's excess over the neuron's floor, so colder as the search goes deeper) and recombines it. The
    population of one cycle collapses onto a backbone: a third recombination round moves 2 % of the coordinates
    on CIFAR-10's first layer, where a fresh population from the best reopens a quarter of them. Measured there
    (int4, a beam of 256, 6 reads x 4 sweeps, 2 rounds of 8; the error above the frontier's best known, the time
    in GPTQ times against GPTQ's old factor, about 3x as many now): one cycle 8.3 % in 8.7x, two 6.7 % in
    12.1x, where 4x the sweeps of one read gave 7.1 % in 12.9x (docs/layer-sa.md).
    """
    chosen = params.get("cycles")
    if chosen is not None:
        return int(chosen)
    wide = population(params, m, inputs)
    return wide.cycles if wide is not None else 1


#: Sweeps of each recombination round when ``recombine`` is given without ``recombine_sweeps`` on a layer
#: without a :class:`Population`.
RECOMBINE_SWEEPS = 8


def hot_ladder(params: dict[str, Any], reads: int, flat: bool = False) -> np.ndarray:
    """Hot-end acceptance of each read: the first two reheat cold, the others climb to ``ladder_acceptance``;
    with ``flat`` (a :class:`Population`'s reads) all reheat cold."""
    lo, hi = float(params["hot_acceptance"]), float(params["ladder_acceptance"])
    if flat:
        return np.full(reads, lo)
    ladder = np.geomspace(lo, max(hi, lo), max(reads - 1, 2))[1:]
    return np.concatenate([[lo, lo], ladder])[:reads] if reads > 2 else np.full(reads, lo)


def anneal_plan(dense: DenseQubos, params: dict[str, Any], rows: Rows) -> tuple[Rows, np.ndarray, np.ndarray, int]:
    """The reheat anneal from one polished row per problem: ``(start rows, hot, cold, sweeps)``.

    ``num_reads`` copies of each row (problem-major), each with the ends of its geometric schedule and its rung
    of :func:`hot_ladder`; ``sweeps`` is the schedule's length. The ends scale with the problem's single-flip
    costs at the start (:func:`beta_ends`), except for problems with a known floor (a layer) and at least
    :data:`WIDE` free variables: there they scale with each neuron's error left to gain (:func:`excess_ends`;
    on small problems that schedule is too cold at its hot end). ``beta_range`` overrides both.
    """
    n = rows.v.shape[0]
    reads, sweeps = effort(params, dense.mat.shape[0], dense.layer_neurons, dense.layer_inputs, dense.beamed)
    start = rows.take(np.repeat(np.arange(n), reads))
    m = dense.mat.shape[0]
    flat = dense.layer_neurons is not None and population(params, m, dense.layer_inputs) is not None
    ladder = np.tile(hot_ladder(params, reads, flat=flat), n)
    wide = np.zeros(start.owner.size, bool)
    if dense.floors is not None and params["beta_range"] is None:
        wide = dense.free[start.owner].sum(axis=1) >= WIDE
    hot = cold = np.zeros(start.owner.size)
    if not np.all(wide):
        hot, cold = beta_ends(start.costs(dense), ladder, params["cold_acceptance"], params["beta_range"])
    if np.any(wide):
        factor = np.log(params["hot_acceptance"]) / np.log(ladder)  # the ladder's rungs as temperature factors
        excess = start.energy - dense.floors[start.owner]
        hot_x, cold_x = excess_ends(excess, dense.free[start.owner], hot_temperature(params, dense.mat.shape[0]),
                                    params["cold_temperature"], factor)
        hot, cold = np.where(wide, hot_x, hot), np.where(wide, cold_x, cold)
    return start, hot, cold, sweeps


def restricted(dense: DenseQubos, params: dict[str, Any], movable: np.ndarray | None, reads: int | None = None,
               sweeps: int | None = None) -> tuple[DenseQubos, dict[str, Any]]:
    """The problems and parameters of an anneal whose moves are restricted to ``movable`` ``(n, m)`` (None: the
    free coordinates) with ``reads`` and ``sweeps`` (None: the effort's): the schedule (:func:`anneal_plan`)
    then scales with the coordinates that may move, as for a problem of only those."""
    override = {k: v for k, v in (("num_reads", reads), ("num_sweeps", sweeps)) if v is not None}
    if override:
        params = {**params, **override}
    if movable is not None:
        dense = dataclasses.replace(dense, free=np.ascontiguousarray(movable & dense.free))
    return dense, params


def anneal_schedule(dense: DenseQubos, params: dict[str, Any], rows: Rows) -> tuple[Rows, np.ndarray]:
    """:func:`anneal_plan` as ``(start rows, betas (R, S))``, every sweep's inverse temperature spelled out."""
    start, hot, cold, sweeps = anneal_plan(dense, params, rows)
    return start, beta_schedule(hot, cold, sweeps)


class Clock:
    """The time limit of one solve and the energy it has reached over time (its trace).

    Args:
        limit: seconds the solve may take (None: no limit).
        start: ``time.perf_counter()`` at the start of the solve (default: now).

    Attributes:
        trace: ``(seconds since start, energy)`` points, in order; the energy is the sum over the problems of
            the best energy found so far.
        cut: True once the limit has shortened the run (the result then depends on timing).
        reserve: seconds kept at the end of the limit for what follows the search whatever it found (the final
            polish's product and the layer's final errors: :meth:`keep`); the search ends that much earlier.
    """

    def __init__(self, limit: float | None = None, start: float | None = None) -> None:
        self.limit = None if limit is None else float(limit)
        self.start = time.perf_counter() if start is None else start
        self.trace: list[tuple[float, float]] = []
        self.cut = False
        self.reserve = 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def remaining(self) -> float:
        """Seconds left for the search (``inf`` without a limit): the limit less the time spent and the
        :attr:`reserve`."""
        return np.inf if self.limit is None else self.limit - self.elapsed() - self.reserve

    def keep(self, seconds: float) -> None:
        """Keep ``seconds`` of the limit for what follows the search (:attr:`reserve`; the latest estimate: the
        first of several like products ran slower, cold, on CIFAR-10's first layer, 0.28 s against 0.13-0.14)."""
        self.reserve = float(seconds)

    def expired(self, within: float = 0.0) -> bool:
        """True once the limit has passed, or is less than ``within`` seconds away (and marks the run as cut)."""
        over = bool(self.remaining() <= within)
        self.cut |= over
        return over

    def stride(self, steps_left: int, per_sweep: float | None) -> int:
        """Steps of an anneal's schedule per sweep so that the ``steps_left`` fit the time left (two sweeps kept
        for the final polish) at ``per_sweep`` seconds a sweep; 1 without a limit, until the speed is known
        (None) or when they fit (then nothing depends on timing), else marks the run as cut. Both anneals (numba
        and torch) take their schedule in such strides, so that they always end cold, however short the time."""
        if self.limit is None or per_sweep is None:
            return 1
        affordable = int(0.9 * (self.remaining() - 2.0 * per_sweep) / max(per_sweep, 1e-9))
        if affordable >= steps_left:
            return 1
        self.cut = True
        return max(1, -(-steps_left // max(affordable, 1)))

    def record(self, energy: float) -> None:
        """Add a trace point, the best total energy now, and raise the points before it that lie below it to it:
        those are the kernels' tracked energies (float32 couplings on chains) of states whose energy a later point
        reads again, in float64 or from another row's tracking, a little higher. So the trace stays non-increasing,
        the best so far, and never reaches a target before a later point confirms it (on a 1100-input layer's
        population the default's trace rose by 5e-5 relative from its first cycle's anneal to its recombination).
        The points below form the trace's tail, since it never rises."""
        energy = float(energy)
        last = len(self.trace)
        while last and self.trace[last - 1][1] < energy:
            last -= 1
            self.trace[last] = (self.trace[last][0], energy)
        self.trace.append((round(self.elapsed(), 6), energy))

    def finish(self, energy: float) -> None:
        """Add the last trace point, the returned states' energy in float64 (:meth:`record`: the points before it
        that lie below it are raised to it, so that the trace never reaches a target the result does not; a
        rise of 1e-10 relative at its last point before)."""
        self.record(energy)

    @contextmanager
    def watch(self, flag: np.ndarray) -> Iterator[None]:
        """Within the block, set ``flag[0] = 1`` when the limit passes (a timer thread), for the numba kernel. A
        limit beyond :data:`threading.TIMEOUT_MAX` (292 years) cannot pass, and a timer cannot wait that long (its
        thread died in an OverflowError, a traceback on every layer under ``--time-limit 1e10``): none then."""
        if self.limit is None or self.remaining() >= threading.TIMEOUT_MAX:
            yield
            return

        def fire() -> None:
            flag[0] = 1
            self.cut = True

        timer = threading.Timer(max(self.remaining(), 0.0), fire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()


def time_to_target(trace: dict[str, list[float]], target: float) -> float | None:
    """Seconds a solve took to reach a total energy ``<= target``, from its ``info["trace"]`` (None: never)."""
    reached = [t for t, e in zip(trace["seconds"], trace["energy"]) if e <= target]
    return reached[0] if reached else None
