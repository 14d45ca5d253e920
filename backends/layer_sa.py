"""``layer-sa``: simulated annealing of all neurons of a layer at once over the shared Hessian.

Every neuron's rounding QUBO has the quadratic matrix ``2 d_j d_l H_jl`` with the layer's one ``H``
(ARCHITECTURE.md §1), so the solver keeps ``H`` once and, per neuron and read, only a state row and its field
``H (d ∘ v)`` (one GEMM for all rows at the start, one row of ``H`` per accepted flip after). Algorithm:

1. **Starts**: the warm start (GPTQ restricted to floor/ceil in pivot order, or ``initial_states``) and, on
   layers narrower than 256 inputs unless the effort is ``fast``, RTN (clipped to floor/ceil), each polished
   by greedy descent; each neuron keeps the better. The solve loop asks :meth:`LayerSASampler.warm_start_beam`
   how wide a beam search over GPTQ's roundings its warm start should run (by default ``max(128, m / 4)`` on
   ``m`` inputs: each neuron starts from the best of that many lowest-energy partial roundings,
   :func:`qannealq.baselines.warm_start_integers`);
   without ``initial_states`` the sampler computes that start itself.
2. **Reheat anneal**: ``num_reads`` rows per neuron start from that local minimum and run ``num_sweeps``
   Metropolis sweeps of single flips and *pair flips* (each coordinate with its ``pairs`` most correlated
   inputs: rounding one pixel up and its neighbour down crosses the ridges single flips cannot), under a
   geometric schedule derived from each neuron's single-flip costs at the start (:func:`._layer_dense.beta_ends`).
   On layers of at least 256 inputs (``default`` and ``thorough``), the moves are *chains* instead
   (``chain``, :func:`._layer_kernel._chain_sweep`): from each coordinate, the cheapest of its
   ``chain_partners`` most correlated inputs given the flips so far, and so on up to ``chain`` (4) flips, the
   cheapest prefix being one Metropolis move. Chains cross the wider ridges of strongly correlated inputs
   (neighbouring pixels, colour channels): on the CIFAR-10 MLP's first layer 24 sweeps of them reach a lower
   error than 4096 sweeps of pair flips (``benchmarks/frontier.py``).
   Reads and sweeps follow the ``effort`` preset and the size (:func:`._layer_schedule.effort`): on layers of
   chain moves one cold anneal per neuron (``default``: one sweep after its beam, which decides the basin the
   anneal polishes; 4 without a beam), and from :data:`._layer_schedule.POPULATION_INPUTS` (1024) inputs
   on a *population* of short cold reads instead (:class:`._layer_schedule.Population`: ``default`` 6 reads x 4
   sweeps after a beam widening from 96 to 768, ``thorough`` 8 x 4 after its own beam), in ``cycles``: each
   cycle after the first reheats a new population from every neuron's best state so far.
   The first population's reads start from distinct states where the solve loop gives them
   (:meth:`LayerSASampler.warm_start_paths`: the beam's final survivors, spread over its width; ``initial_states``
   of shape ``(n, k, m)``), else all from the polished warm start.
3. **Recombination** (``recombine`` rounds, by default the population's: 1, 2 with ``thorough``): each neuron's
   coordinates on which all its reads agree (its backbone) are kept, and ``recombine_sweeps`` sweeps (8)
   anneal only the others, from the best state found so far, with the same number of reads (one in the last
   round), on a schedule scaled to their count (:func:`_recombine`). On CIFAR-10's first layer (3073 inputs,
   ``H`` singular: 1024 images) a neuron has many distinct deep minima: reads from one start disagree on a fifth
   of the coordinates, and searching those alone ends lower, in the same time, than a wider beam and one longer
   read (docs/layer-sa.md).
4. **Polish** each read greedily, recompute the energies in float64 and keep each neuron's best (never worse
   than the warm start).

``time_limit`` (seconds per layer) bounds a solve, the warm start included. The warm start's factorizations run
first, in any case (about 0.7 GPTQ times on CIFAR-10's first layer; GPTQ's own starts follow the beam where time
is left); its beam then takes :data:`WARM_START_SHARE` of the time they leave (:data:`POPULATION_SHARE` where a
population follows it; :data:`SHORT_SEARCH_SHARE` where that time is under :data:`qannealq._deadline.TIGHT` (3.5)
times their own, :data:`DESCENT_SHARE` under :data:`POPULATION_TIGHT` and :data:`THOROUGH_TIGHT` before a
population, where the search is then the polish and a greedy descent by chains, ``start_tight``;
where one sweep follows, all of it but what :data:`SHORT_SEARCH_KEEP` keeps for what follows) and narrows to end
by then (groups of neurons it does not reach keep GPTQ's start; :func:`qannealq.baselines.warm_start_integers`'s
``deadline``); the search gets the rest (the solve loop passes the start's seconds as ``time_spent``): the first
chunk of the anneal measures the speed and the schedule is shortened to fit (so that it still ends cold), and a
watchdog stops the kernel at the limit in any case; the best states found are returned. Where the limit narrowed
the beam (``start_cut``), a population runs at most :data:`._layer_schedule.LIMITED_READS` reads a cycle and
cycles while the time lasts (:func:`._layer_schedule.population`). Where the time left is
under :data:`LATE_SHARE` of the start's, or, where one sweep follows the beam, under
:data:`SHORT_SEARCH_PRODUCTS` products of the layer's rows, the search is the polish alone (``info["late"]``; on
a layer of a population, the polish and a greedy descent by chain moves while the time lasts, ``_Run.descend``,
``info["descended"]``). The
polish of the starts (a run under any limit ends at least where ``fast`` does from its start) and the final
energies run in any case. ``info["trace"]`` records the total energy reached over time
(``seconds`` since the layer's solve began, ``time_spent`` before the call, ``energy``: the sum over neurons of
the best so far), for time-to-target (:func:`time_to_target`).

Runs in a numba kernel, rows in parallel threads, each with its own seeded generator: deterministic for a
seed whatever the thread count, and whatever the time limit as long as it cuts neither the beam nor the run
(``info["time_limited"]`` is False; when it is True the result depends on timing). With a GPU (``device``),
in torch on CUDA (:mod:`._layer_torch`: the same starts, schedule, moves (chains included), polish and late
descent, all rows updated in parallel one coordinate at a time; there a time limit stops the run after the sweep
that passes it, without shortening the schedule). It is also a plain ``dimod.Sampler`` for single BQMs.

Modules, each importing only those below it: this one (the sampler) -> :mod:`._layer_single` (one BQM) ->
:mod:`._layer_run` (device choice, numba run) -> :mod:`._layer_kernel` (numba) and :mod:`._layer_torch`
(loaded only for a torch device) -> :mod:`._layer_schedule` (effort, anneal schedule) -> :mod:`._layer_dense`
(the dense problems and the constants shared by both kernels).
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any, Callable

import dimod
import numpy as np

from qannealq._deadline import TIGHT, Deadline
from qannealq._gptq_beam import check_growth
from qannealq._pool import beam_threads, thread_count
from qannealq.baselines import layer_blas_threads, rtn, warm_start_integers
from qannealq.checks import check_positive, check_range, is_number
from qannealq.errors import InvalidArgumentError
from qannealq.formulation import LayerProblem, check_single_precision
from qannealq.contract import LayerSample, draw_seed

from ._common import as_bits
from ._layer_dense import DenseQubos, Rows
from ._layer_kernel import fields_from_products, load_signatures
from ._layer_run import _Run, make_run, resolve_device  # noqa: F401  (re-exported: tests import them here)
from ._layer_schedule import (EFFORTS, Clock, anneal_schedule, beam_growth, beam_width, chain_depth,  # noqa: F401
                              cycles, effort, hot_ladder, population, preset, recombination, rtn_start)
from ._layer_schedule import time_to_target  # noqa: F401  (re-exported: the trace's reader)
from ._layer_single import sample_bqm
from ._layer_weighted import sample_per_neuron

__all__ = ["LayerSASampler"]

_DEFAULTS = {"effort": "default", "time_limit": None, "num_reads": None, "num_sweeps": None, "pairs": 4,
             "chain": None, "chain_partners": 8, "chain_precision": "float32",
             "hot_temperature": None, "cold_temperature": 1.0, "hot_acceptance": 1e-9, "ladder_acceptance": 0.3,
             "cold_acceptance": 1e-3, "beta_range": None, "polish_sweeps": 200, "rtn_start": None,
             "num_threads": None, "device": "cpu", "warm_start_beam": None, "recombine": None,
             "recombine_sweeps": None, "cycles": None, "warm_start_paths": None, "warm_start_growth": None,
             "warm_start_pilot": True, "time_spent": 0.0, "late": False, "start_cut": False,
             "start_tight": False}
_DEVICES = ("auto", "cpu", "cuda", "torch-cpu")
#: The share of the time a ``time_limit`` leaves, once the warm start's fixed costs are paid (its factorizations,
#: and on a rank-deficient layer GPTQ's own starts), that the warm start's beam may take where a long anneal
#: follows it (``thorough`` below the population's width; :meth:`LayerSASampler.warm_start_deadline`,
#: :meth:`qannealq._deadline.Deadline.search`): the search has the rest. Below the beam's own time the beam
#: narrows to it; a wider limit changes nothing of the start.
WARM_START_SHARE = 0.5
#: That share where a population follows the beam (:class:`._layer_schedule.Population`, from 1024 inputs on):
#: its reads and recombination gain more from the time than a wider beam does. On CIFAR-10's first layer (int4,
#: this machine's retrained model) under 10 GPTQ times the default ended 6.5–8.8 % above a fixed reference total
#: (0.0653934, a frontier table's best known in docs/layer-sa.md, for its own model) with 0.3 of the time after
#: those costs, 13–15 % with 0.5 of it, and 9.5–13.5 % with half of the whole limit (the rule before; 3–4 runs
#: each, 2026-12-02). ``benchmarks/time_limits.py``'s three rounds of each code later found the two within their
#: spread under 10 GPTQ times (32 against 33 % above its own reference on int4, 35 against 32 % on int2) and the new
#: rule far lower under 5–6 (docs/layer-sa.md).
POPULATION_SHARE = 0.3
#: The share where the time left is under :data:`qannealq._deadline.TIGHT` times the fixed costs, less
#: :data:`qannealq._deadline.RESERVE` times them (too little for the anneal or population to be worth its own
#: fixed costs: the search is then the polish alone, :data:`LATE_SHARE`). On MNIST's first layer under 10 GPTQ
#: times (0.18 s), where it was also the share before a single sweep (:data:`SHORT_SEARCH_KEEP` since
#: 2026-12-03), the default ended 7.2 % (int4) and 5.5–6.4 % (int2) above the best known with it, 17–19 % and
#: 9–12 % with half of the limit (3 rounds, 2026-12-02). On CIFAR-10's first layer (int4) under 5 GPTQ times the
#: default ended 17–26 % above the same fixed reference as :data:`POPULATION_SHARE`'s, against 61–84 % with half
#: of the limit for the beam and the population after it (2–3 runs each, 2026-12-02).
SHORT_SEARCH_SHARE = 0.85
#: The share where the time left is that tight before a population (wide layers of chain moves, where
#: :data:`POPULATION_TIGHT` or :data:`THOROUGH_TIGHT` says so): the search is then the polish of the start and a
#: greedy descent by chains while the time lasts (``_Run.descend``; ``start_tight``), which needs more of the time
#: than the polish alone did. On CIFAR-10's first layer every move that lowers the energy is a chain (each single
#: flip costs thousands of the anneal's temperatures), and the polish of single and pair flips left the beam's
#: start about where it was. Under 5 GPTQ times (int4, alternating in one process, 5 runs each; above the best
#: known): the polish alone 43.3 %; with the descent at a share of 0.85 39.0 % (it had time in 2 runs of 5), 0.7
#: 25.7 % (24.9-30.0 %), 0.55 31.4 %, 0.4 29.0 %; int2 (4 runs) 40.8 -> 26.6 % (0.6: 27.1 %); ``thorough`` under 4x
#: (3 runs) 74.2 -> 34.3 %. Under 10x the descent in the population's place first read 23.3 % against 22.4 % (4
#: runs each); remeasured with more runs it won there (:data:`POPULATION_TIGHT`; docs/layer-sa.md, "A descent by
#: chains where the time is tight", "The tight path under 10x").
DESCENT_SHARE = 0.7
#: Where the search after the beam is a single sweep (the default below the population's width: the beam decides
#: the basin, :class:`._layer_schedule.Preset`'s ``beam_sweeps``), the beam takes all the time its fixed costs
#: leave but this many times its factorizations' time, :data:`qannealq._deadline.KEEP_ROWS` times that per neuron
#: per live input, and :data:`qannealq._deadline.KEEP_SECONDS` (:attr:`qannealq._deadline.Deadline.keep`;
#: :data:`SHORT_SEARCH_SHARE` of it where those costs are not measured, the beams on per-neuron ``H_i``), however
#: little is left: what follows it (the start's choice, the sampler's set-up, the sweep, the polish, the final
#: errors) took 0.6-2.5 times the factorizations on MNIST's first layer (median 1.24, 10 runs under 5 and 10 GPTQ
#: times; 1.26 kept), where :data:`SHORT_SEARCH_SHARE` of the time left ended 5x GPTQ at 4.97-5.77x and 10x at
#: 9.20-10.12x (0.92 of its limit under 15-20x), and 1.6-2.0 times on EMNIST-letters' (256 neurons; 1.81 kept).
#: Since the solution's errors take their product from the start's (2026-12-05, :mod:`qannealq._near`), what
#: follows grows with the neurons per live input and little else: 0.61-0.71 times the factorizations on MNIST's
#: first layer (0.214 neurons per live input), 1.0-1.3 on EMNIST-letters' (0.379), 0.47-0.53 on Fashion-MNIST's
#: (0.163), beyond :data:`qannealq._deadline.KEEP_SECONDS`. So 0.3 here and 3.6 per neuron per live input
#: (:data:`qannealq._deadline.KEEP_ROWS`) instead of 0.7 and 2.6. Alternating both in one process (int4 / int2,
#: medians): MNIST's first layer under 5 GPTQ times ended at 4.78 / 4.83x (4.65 / 4.68x; at most 4.91x) and 6.92 /
#: 6.64 % above the best known (7.15 / 7.26 %), under 3x 2.84x and 13.4 % (2.71x, 18.3 %, int4), under 10x 9.75x
#: and 3.79 % (9.66x, 3.99 %); under 5x Fashion-MNIST's ended at 4.73x (4.51x), EMNIST-letters' at 4.86x (4.82x;
#: at most 5.09x against 5.15x), int2. 0.05 and 4.2 ended MNIST's under 10x at 9.94x (at most 10.12x).
SHORT_SEARCH_KEEP = 0.3
#: Where the time a ``time_limit`` leaves the search is under this share of the time the layer took before it
#: (its warm start: ``time_spent``), the search is the polish of its starts alone, ``fast``'s (no floors, no
#: population, no anneal; ``info["late"]``): on CIFAR-10's first layer the fixed costs of a population (the
#: floors, its reads' fields, the anneal's plan) took about 1.2 s, 1.5 GPTQ times, beyond a limit the beam had
#: nearly spent. Where the start's time was not tight (:data:`POPULATION_SHARE` of it to the beam), at least
#: about 0.7 times the start's time is left for the search.
LATE_SHARE = 0.5
#: Where a single sweep follows the beam (the default below the population's width) and a ``time_limit`` leaves
#: the search under this many products of the layer's rows with ``H`` (:attr:`LayerProblem.product_seconds`,
#: timed on the problem by the warm start), the search is the polish alone (``info["late"]``), as under
#: :data:`LATE_SHARE`. The sweep's search pays for its floors (:func:`._layer_dense.continuous_floor`: then a
#: factorization of ``H``, since a product where the calibration is float), the anneal's set-up and chains, the
#: sweep and its polish whatever its length: from a beam of 24, under a roomy limit, 18-29 products (44-64 ms) on
#: the first layers of MNIST, Fashion-MNIST and EMNIST-letters (int4 and int2; one MNIST run 47) against 3-4 for
#: the polish alone, for 0.2-0.9 points less error. Where a beam ended early under 3-6 GPTQ times on MNIST's first
#: layer, the sweep's search began with 11-18 ms left and ended 6-30 ms past the limit (up to 6.1x under 4x).
SHORT_SEARCH_PRODUCTS = 20.0
#: ``thorough``'s threshold for the tight path where a population follows its beam (a layer of 1024 inputs or
#: more), in units of the warm start's fixed costs (:attr:`qannealq._deadline.Deadline.tight`; the default's is
#: :data:`POPULATION_TIGHT` there, :data:`qannealq._deadline.TIGHT` elsewhere): ``thorough``'s population (8
#: reads) needs more of the time than the default's. On CIFAR-10's first layer (fixed costs 1.02-1.07 s, GPTQ's
#: own starts then among them; each regime forced, three runs each, int4 / int2, above the best known) the tight
#: path ended lower at 4.3-4.4 times the fixed costs left (33.4 against 40.6 %, 33.3 against 50.1 %) and 5.1-5.3
#: (32.8 against 36.5 %, 32.3 against 38.0 %), tied at 5.8-6.0 (32.5 against 31.5 %, 30.9 against 31.7 %) and lost
#: at 6.7 (31.7 against 26.3 %, 30.5 against 28.0 %): 6 until 2026-12-05. Since GPTQ's own starts follow the beam
#: there too, the fixed costs are the factorizations alone (about 0.6 s), and the same crossover, about 6.3 s left,
#: is 10 of them; under 12 GPTQ times (int4, four runs each, alternating) 6 ended 31.7 % above the best known
#: (median; one run at 62 %) and 10 32.3 % (32.1-32.4 %). Below 1024 inputs ``thorough`` keeps
#: :data:`qannealq._deadline.TIGHT`: on MNIST's first layer the tight path tied from 6 GPTQ times and lost under 3-4.
#: Re-measured with the descent by chains on another machine (2026-12-05 evening; its searches about 1.3 times slower
#: against its factorizations), CIFAR-10 int4, three runs each: the tight path won at 12, 14 and 15 times the fixed
#: costs left (13.2 / 12.5 / 12.3 % above a reference against 14.3 / 13.7 / 14.0 %) and tied at 17 (12.3 % both).
#: 10 (measured before the descent) until then; 15, below that tie by about what separates the two machines'
#: crossovers for the default (:data:`POPULATION_TIGHT`; docs/layer-sa.md, "The tight thresholds on a second machine").
THOROUGH_TIGHT = 15.0
#: The default's threshold for the tight path where a population follows its beam (a layer of 1024 inputs or
#: more), in units of the warm start's fixed costs: :data:`qannealq._deadline.TIGHT` (3.5) until 2026-12-05, when
#: those costs still held a rank-deficient layer's two GPTQ starts (0.2-0.36 s on CIFAR-10's first layer, of
#: about 1 s; the crossover then lay between 4.3 and 5.2 times them). With the factorizations alone (about 0.6 s
#: there), the default under 6 GPTQ times (4.2 times them left) ended 38.6 % above the best known with the tight
#: path and 42.2 % with the population, under 7 (5.1 times) 37.4 % either way (int4, four runs each, medians): 4.5
#: until the tight path's greedy descent by chains (``c1fde13``). With it the crossover moved to about 12 GPTQ times
#: (7.5 times the fixed costs left; each regime forced, alternating in one process, medians above the best known,
#: int4 / int2): under 10x the tight path 19.9 / 20.4 % at 9.1-9.2x against the population's 22.2 / 22.5 % (6 runs
#: each), under 12x 18.8 / 20.6 % against 19.4 / 19.9 % (5 runs), under 15x 17.2 % against 16.9 % (int4, 4 runs),
#: under 20x 16.0 % against 14.9 %. With 7: the default under 10x (about 6 times them left) 21.05 -> 19.78 % and
#: 22.52 -> 20.40 % (8 runs each; docs/layer-sa.md, "The tight path under 10x"). But the costs read are the fastest
#: recorded in the process: in the frontier's long process (0.45 s GPTQ) the default under 10x read more than 7 of
#: them left and took the population (20.3 / 21.1 %, ending at 9.8x). 9 kept 10x on the tight path wherever the
#: fastest costs fell (0.5-0.63 s: 6.6-8.3 of them left), 12x between (the tie), and 15x on the population (10-13).
#: The crossover in these units is the machine's: on another (2026-12-05 evening; GPTQ 0.63 s on one BLAS thread,
#: the factorizations 0.6 s) the tight path won at 9.7, 12, 13 and 14 of them left (int4 / int2, three or four runs
#: each: 13.9 / 16.6 % above a reference against 16.5 / 20.0 % at 9.7, 12.6 / 13.9 against 13.2 / 14.6 % at 14) and
#: lost at 15 (12.5 / 13.3 against 10.4 / 12.8 %): about 10 there, 14.5 here. 13 takes the tight path up to 10x on
#: both and, between the crossovers, loses about 0.3 points on the first (15x) where 9 lost 0.5-3.4 on the second
#: (docs/layer-sa.md, "The tight thresholds on a second machine").
POPULATION_TIGHT = 13.0
#: Where the search runs on one thread (``num_threads=1``, or a machine of one core), the factor on
#: :data:`POPULATION_TIGHT` and :data:`THOROUGH_TIGHT`, whose crossovers were measured on two. The beam and the
#: population are searches, slower on one thread, while the fixed costs the thresholds count in (the
#: factorizations, on one BLAS thread either way) are not, so the crossover lies at more of them. On CIFAR-10's
#: first layer (the second machine, the beam and the search on one thread; each regime forced, alternating in one
#: process, three runs each, medians above the frontier's best known, int4 / int2, tight against population) the
#: tight path won at 13-16 times the fixed costs left (17.9 / 19.4 against 22.4 / 24.6 %) and 17-21 (16.6 / 18.7
#: against 20.2 / 21.0 %), tied or lost at 23-26 (16.3 / 16.8 against 15.0 / 16.6 %) and lost at 28-32 (15.9 /
#: 16.3 against 13.2 / 14.9 %): about 22-24, against 14.5 on two threads there. ``thorough`` (int4, three runs
#: each): the tight path won at 17-18 (17.2 against 19.4 %), tied or lost at 25-26 (16.3 against 15.5 %), lost at
#: 29-32 (15.7 against 14.5 %): about 24, 1.6 times its 15. Until 2026-12-05 the warm start's beam ran on every
#: core whatever ``num_threads`` said (:meth:`LayerSASampler.warm_start_threads`; docs/layer-sa.md, "One thread").
ONE_THREAD_TIGHT = 1.6
_PRECISIONS = ("float32", "float64")


def _search_threads(params: dict[str, Any]) -> int:
    """The threads a run's search and warm start use: ``num_threads`` up to the cores (None: the cores)."""
    return thread_count(params["num_threads"], cap=True)


def _check(params: dict[str, Any]) -> None:
    for name in ("num_reads", "num_sweeps", "pairs", "chain", "chain_partners", "polish_sweeps", "num_threads",
                 "warm_start_beam", "recombine", "recombine_sweeps", "cycles", "warm_start_paths"):
        value = params[name]
        low = 1 if name in ("num_reads", "num_threads", "cycles", "warm_start_paths") else 0
        if value is None and name in ("num_reads", "num_sweeps", "num_threads", "chain", "warm_start_beam",
                                      "recombine", "recombine_sweeps", "cycles", "warm_start_paths"):
            continue
        check_positive(name, value, low)
    if not isinstance(params["effort"], str) or params["effort"] not in EFFORTS:
        raise InvalidArgumentError(f"effort={params['effort']!r} must be one of {list(EFFORTS)}")
    if params["warm_start_growth"] is not None:  # None: the effort's
        check_growth(params["warm_start_growth"], "warm_start_growth")
    if params["rtn_start"] is not None and not isinstance(params["rtn_start"], (bool, np.bool_)):
        raise InvalidArgumentError(f"rtn_start={params['rtn_start']!r} must be True, False or None (None: the "
                                   "preset's, the RTN start on layers narrower than 256 inputs)")
    if not isinstance(params["warm_start_pilot"], (bool, np.bool_)):
        raise InvalidArgumentError(f"warm_start_pilot={params['warm_start_pilot']!r} must be True or False")
    limit = params["time_limit"]
    if limit is not None and (not is_number(limit) or not limit > 0):
        raise InvalidArgumentError(f"time_limit={limit!r} must be a finite number of seconds > 0 (or None: no "
                                   "limit)")
    spent = params["time_spent"]
    if isinstance(spent, bool) or not isinstance(spent, (int, float)) or not spent >= 0:
        raise InvalidArgumentError(f"time_spent={spent!r} must be a number of seconds >= 0 (the layer's time "
                                   "before the call, counted against time_limit)")
    if not isinstance(params["late"], (bool, np.bool_)):
        raise InvalidArgumentError(f"late={params['late']!r} must be True or False (True: the search is the polish "
                                   "of the start alone)")
    if not isinstance(params["start_cut"], (bool, np.bool_)):
        raise InvalidArgumentError(f"start_cut={params['start_cut']!r} must be True or False (True: the time limit "
                                   "narrowed the warm start's beam)")
    if not isinstance(params["start_tight"], (bool, np.bool_)):
        raise InvalidArgumentError(f"start_tight={params['start_tight']!r} must be True or False (True: the time "
                                   "limit left the warm start's beam little time, the search the polish and a "
                                   "descent)")
    if params["chain_precision"] not in _PRECISIONS:
        raise InvalidArgumentError(f"chain_precision={params['chain_precision']!r} must be one of "
                                   f"{list(_PRECISIONS)}")
    device = params["device"]
    if not isinstance(device, str) or not (device in _DEVICES or re.fullmatch(r"cuda:\d+", device)):
        raise InvalidArgumentError(f"device={device!r} must be one of {list(_DEVICES)} or 'cuda:<index>'")
    for name in ("hot_temperature", "cold_temperature"):
        value = params[name]
        if value is None and name == "hot_temperature":
            continue
        if not is_number(value) or not value > 0:  # inf ended a wide layer's anneal in a ZeroDivisionError
            raise InvalidArgumentError(f"{name}={value!r} must be a finite number > 0")
    for name in ("hot_acceptance", "ladder_acceptance", "cold_acceptance"):
        value = params[name]
        if not is_number(value) or not 0 < value < 1:
            raise InvalidArgumentError(f"{name}={value!r} must be a probability within (0, 1)")
    if params["beta_range"] is not None:  # a bare number failed deep in the schedule with a TypeError; a reversed
        check_range("beta_range", params["beta_range"])  # pair once a layer's solve began, after training


def _as_bits(given: np.ndarray) -> np.ndarray:
    """``initial_states`` of the right shape as 0/1 bits, read as dwave-samplers (and this sampler's ``sample``)
    read a start: 0/1 values are bits, -1/+1 values spins (1 is 1 either way); anything else is refused, naming the
    first such value (the shape's message alone read "must be of shape (5, 17) ... got shape (5, 17)")."""
    bits = as_bits(given)
    if bits is not None:
        return bits
    spins = np.any(given == -1)  # a spin start with a stray 0 named its first -1, a value it allows, not the 0
    bad = (given != (-1 if spins else 0)) & (given != 1)
    at = tuple(int(k) for k in np.argwhere(bad)[0])
    kind = "holds -1, so it is read as -1/+1 spins" if spins else "must hold 0/1 bits (problem.encode of grid " \
        "integers) or -1/+1 spins"
    raise InvalidArgumentError(f"initial_states {kind}; got initial_states[{', '.join(map(str, at))}]="
                               f"{np.asarray(given[at]).item()!r}")


def _best_per_problem(energies: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Index of the lowest-energy row of each problem (first on ties)."""
    order = np.lexsort((np.arange(owner.size), energies, owner))
    first = np.ones(order.size, bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    picked = order[first]
    return picked[np.argsort(owner[picked])][:n]


def _short_search(params: dict[str, Any], inputs: int) -> bool:
    """Whether the search after the warm start is a single sweep after a beam (the default below the
    population's width: one read, one sweep where beamed) on a layer of ``inputs`` coordinates."""
    return beam_width(params, inputs) > 0 and bool(np.prod(effort(params, inputs, 1, inputs, beamed=True)) <= 1)


class LayerSASampler(dimod.Sampler):
    """Whole-layer simulated annealing over the shared Hessian (see the module docstring).

    Args:
        **defaults: override the defaults of ``effort`` ("fast", "default" or "thorough": see
            :data:`._layer_schedule.EFFORTS`), ``time_limit`` (None, or seconds per call: see the module
            docstring), ``num_reads`` and ``num_sweeps`` (None: from the effort and the size, see
            :func:`effort`; default 1 read x 4 sweeps of chains on a 785-input layer), ``pairs`` (4),
            ``chain`` (None: 4 on layers of 256 inputs or more except with ``fast``, else 0; 3 or more: chain
            moves of that length; 0-2: single and pair flips), ``chain_partners`` (8), ``chain_precision``
            ("float32": the numba kernel's chain moves read a float32 copy of ``H``, 1.3-1.6x faster on
            CIFAR-10's first layer, energies recomputed in float64; "float64": ``H`` itself),
            ``hot_temperature`` (None: on layers of chain moves the effort's, 0.025 by default and with
            ``thorough``, 0.2 with ``fast``; 0.2 on layers of pair flips: the hot end of a wide layer's schedule
            in units of each neuron's excess over its floor),
            ``cold_temperature`` (1.0), ``hot_acceptance`` (1e-9), ``ladder_acceptance`` (0.3),
            ``cold_acceptance`` (1e-3), ``beta_range`` (None), ``polish_sweeps`` (200), ``rtn_start`` (None: on layers narrower than 256 inputs, not
            with ``fast``),
            ``num_threads`` (None: one per CPU core; the warm start's beams too, :meth:`warm_start_threads`),
            ``warm_start_beam`` (None: the effort's, 0 with ``fast``, ``max(128, m / 4)`` by default (768 from
            1024 inputs on, where a population follows), ``max(512, m / 2)`` with ``thorough`` on ``m`` inputs:
            the width of the beam search over GPTQ's roundings that the solve loop's warm start runs, in its last
            block, :meth:`warm_start_beam`),
            ``warm_start_growth`` (None: the effort's, 8 by default where a population follows, else 1: the
            beam's last block's width over its first's, :meth:`warm_start_growth`), ``recombine`` (None: the
            effort's population's rounds of recombination on layers of 1024 inputs or more, else 0; needs 2 reads
            or more), ``recombine_sweeps`` (None: the population's, else 8; the sweeps of each round),
            ``cycles`` (None: the population's, else 1; populations in a row, each reheated from every neuron's
            best state so far and recombined, :func:`._layer_schedule.cycles`), ``warm_start_paths`` (None: one
            per read of the first population where one follows the beam, else 1; 1: every read from the warm
            start, :meth:`warm_start_paths`), ``warm_start_pilot`` (True: without a beam, on a rank-deficient
            ``H``, the warm start takes the layer's damping from a pilot, :meth:`warm_start_pilot`; False: both
            dampings on every neuron), ``time_spent`` (0: seconds the layer took before this call, its warm
            start, which ``time_limit`` counts and ``info["trace"]`` starts from; the solve loop passes it,
            :meth:`warm_start_deadline`; where little of the limit is left after it, the search is the polish alone,
            :data:`LATE_SHARE`), ``late`` (False; True: the search is the polish of the start alone, as where
            little of the limit is left, and on a layer of a population a greedy descent by chains while the time
            lasts; the solve loop passes it where its warm start left its beam out for lack of time,
            :data:`qannealq.baselines.SKIP_BEAM`), ``start_cut`` (False; True: the time limit narrowed the
            warm start's beam, so it binds: a population then runs at most
            :data:`._layer_schedule.LIMITED_READS` reads a cycle and cycles while the time lasts; the solve loop
            passes it, and the sampler's own warm start sets it), ``start_tight`` (False; True: the time left after
            the warm start's fixed costs was tight, ``qannealq._deadline.Deadline.searched_tight``: on a layer of a
            population the search is then the polish of the start and a greedy descent by chains while the time
            lasts, :data:`DESCENT_SHARE`; the solve loop passes it, and the sampler's own warm start sets it) and
            ``device`` ("cpu", the default: the numba kernel; "cuda" or "cuda:<index>": torch on that GPU,
            required; "auto": torch on CUDA when ``torch.cuda.is_available()``, else numba; "torch-cpu": the
            torch implementation on the CPU). The default is the CPU also where a GPU is present: on an H200 the
            torch path ran MNIST's first layer 66x slower than numba at the default effort (``docs/layer-sa.md``,
            "The torch path on an H200").
            ``info["device"]`` records the device used.
    """

    default_max_variables = None  # any size: memory grows with the rows, never with a per-neuron matrix
    capacity_reason = ""

    def __init__(self, **defaults: Any) -> None:
        unknown = set(defaults) - set(_DEFAULTS)
        if unknown:
            raise InvalidArgumentError(f"unknown layer-sa options {sorted(unknown)}; known: {sorted(_DEFAULTS)}")
        self.defaults = {**_DEFAULTS, **defaults}
        _check(self.defaults)

    @property
    def parameters(self) -> dict:
        return {**{name: [] for name in _DEFAULTS}, "seed": [], "initial_states": []}

    @property
    def properties(self) -> dict:
        return {"defaults": dict(self.defaults), "whole_layer": True, "max_variables": None,
                "warm_up": True}  # the solve loop may load its kernels on a stand-in first (qannealq.solve.warm_up)

    def _params(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        params = {**self.defaults, **{k: v for k, v in kwargs.items() if k in _DEFAULTS and v is not None}}
        _check(params)
        return params

    def check_options(self, options: dict[str, Any]) -> None:
        """Refuse a bad option value before any work (:func:`qannealq.contract.check_options`): the checks each
        solve runs (``effort``, ``time_limit``, ``num_threads``...), so that ``qannealq run --sampler-option
        effort=slow`` stops before training, not at its first layer; a CUDA ``device`` torch does not see too
        (``BackendUnavailableError``)."""
        resolve_device(self._params(options)["device"])

    def load_compiled(self, **kwargs: Any) -> None:
        """Load every signature of the compiled kernels a run with these options may call, whatever its timing
        (:func:`qannealq.contract.load_compiled`, called by :func:`qannealq.solve.warm_up` before its stand-in
        solves): on the CPU, :func:`._layer_kernel.load_signatures` (a torch device runs none of them)."""
        if resolve_device(self._params(kwargs)["device"]) == "cpu":
            load_signatures()

    def warm_start_beam(self, inputs: int | None = None, **kwargs: Any) -> int:
        """The width of the beam search this run's warm start should run on a layer of ``inputs`` coordinates
        (``warm_start_beam``, or the ``effort`` preset's, :func:`._layer_schedule.beam_width`: 0 with ``fast``,
        by default ``max(128, inputs / 4)``, with ``thorough`` ``max(512, inputs / 2)``): the solve loop asks
        before it computes the warm start (:func:`qannealq.baselines.warm_start_integers`)."""
        return beam_width(self._params(kwargs), inputs)  # _params keeps the sampler's own options only

    def warm_start_growth(self, inputs: int | None = None, **kwargs: Any) -> float:
        """How the warm start's beam widens along GPTQ's order on a layer of ``inputs`` coordinates
        (:func:`qannealq.contract.warm_start_growth`): its last block's width over its first's,
        ``warm_start_growth`` or the effort's (:func:`._layer_schedule.beam_growth`: 8 by default where a
        population follows, from 96 to 768 on CIFAR-10's first layer; else 1, a constant width)."""
        return beam_growth(self._params(kwargs), inputs)

    def warm_start_deadline(self, inputs: int | None = None, start: float | None = None,
                            **kwargs: Any) -> Deadline | None:
        """When this run's warm start should end (:func:`qannealq.contract.warm_start_deadline`) on a layer of
        ``inputs`` coordinates whose solve began at ``start`` (``time.perf_counter()``; None: now): with a
        ``time_limit``, its end, from which the beam takes, once the start's fixed costs are paid,
        :data:`WARM_START_SHARE` of the time left (:data:`POPULATION_SHARE` where a population follows), or
        all of it less what :data:`SHORT_SEARCH_KEEP` keeps (in the start's factorizations' time) where a single
        sweep follows the beam, or :data:`SHORT_SEARCH_SHARE` of it less some for the polish where it is tight
        (:meth:`qannealq._deadline.Deadline.search`; before a population, tight under :data:`POPULATION_TIGHT` or
        :data:`THOROUGH_TIGHT` times those costs, :data:`ONE_THREAD_TIGHT` times that on one thread); the beam
        narrows to end by then, and the search has the rest, after the seconds the start took (``time_spent``).
        None without a limit (no bound)."""
        params = self._params(kwargs)
        limit = params["time_limit"]
        if limit is None:
            return None
        start = time.perf_counter() if start is None else float(start)
        # a single sweep follows the beam: the time to the beam but what follows it, however tight (the search is
        # about the polish anyway)
        if inputs is not None and _short_search(params, inputs):
            return Deadline(start + float(limit), share=SHORT_SEARCH_SHARE, keep=SHORT_SEARCH_KEEP)
        crowd = population(params, inputs) is not None
        tight = (THOROUGH_TIGHT if params["effort"] == "thorough" else POPULATION_TIGHT) if crowd else TIGHT
        if crowd and _search_threads(params) < 2:  # the thresholds' crossovers were measured on two threads
            tight *= ONE_THREAD_TIGHT
        return Deadline(start + float(limit), share=POPULATION_SHARE if crowd else WARM_START_SHARE,
                        tight_share=DESCENT_SHARE if crowd else SHORT_SEARCH_SHARE, tight=tight)

    def warm_start_threads(self, inputs: int | None = None, **kwargs: Any) -> int | None:
        """The threads this run's warm start runs its beams on (:func:`qannealq.contract.warm_start_threads`):
        ``num_threads`` (None: one per core), the search's own, so that a run on one thread searches on one (the
        factorizations keep their BLAS threads)."""
        return self._params(kwargs)["num_threads"]

    def warm_start_pilot(self, inputs: int | None = None, **kwargs: Any) -> bool:
        """Whether this run's warm start without a beam takes a rank-deficient layer's damping from a pilot
        (:func:`qannealq.contract.warm_start_pilot`; ``warm_start_pilot``, True by default), as its beam does:
        the search goes on from the start, and on CIFAR-10's first layer ``fast`` ends 2.0 % (int4) and 0.5 %
        (int2) lower from the pilot's damping than from both dampings per neuron, whose start is 10 % lower,
        in about half the start's time (docs/layer-sa.md)."""
        return bool(self._params(kwargs)["warm_start_pilot"])

    def warm_start_paths(self, inputs: int | None = None, **kwargs: Any) -> int:
        """How many warm starts per neuron this run takes on a layer of ``inputs`` coordinates
        (:func:`qannealq.contract.warm_start_paths`): where a population follows a beam
        (:func:`._layer_schedule.population`), one per read of its first cycle (``num_reads``, or the
        population's; ``warm_start_paths`` overrides), else 1. The solve loop then passes ``initial_states``
        ``(n, k, m)``: the warm start and the beam's other final survivors, spread over its width; the reads start
        one from each. Measured on CIFAR-10's first layer (int4, the default's population and its cycles): 0.5 %
        lower error than every read from the warm start, for 6 % more time (docs/layer-sa.md)."""
        params = self._params(kwargs)
        wide = population(params, inputs)
        if wide is None or not beam_width(params, inputs):
            return 1
        if params["warm_start_paths"] is not None:
            return int(params["warm_start_paths"])
        return int(params["num_reads"] or wide.reads)

    def sample_layer(self, problem: LayerProblem, initial_states: np.ndarray | None = None,
                     seed: int | None = None, **kwargs: Any) -> LayerSample:
        """Solve every neuron of ``problem``; best assignment ``(n, m)`` and its energy per neuron.

        Args:
            problem: the layer's QUBOs.
            initial_states: warm assignments ``(n, m)`` (default: GPTQ restricted to floor/ceil in pivot order,
                from the effort's beam), or ``(n, k, m)``: each neuron's warm start first, then ``k − 1`` more
                states, the starts of its first population's reads (:meth:`warm_start_paths`; ignored where no
                population runs, and by the torch run). The result is never worse than the warm start.
            seed: seed of the anneal (drawn and recorded when None).
            **kwargs: any default named in the class docstring.

        With a beam in its effort (not ``fast``), on a layer below :data:`qannealq.baselines.ONE_BLAS_INPUTS` inputs
        it runs on one BLAS thread per library, whatever the caller set (:func:`qannealq.baselines.layer_blas_threads`).
        """
        check_single_precision(problem, "layer-sa")
        with layer_blas_threads(problem, self.warm_start_beam(problem.num_coordinates, **kwargs)):
            return self._sample_layer(problem, initial_states, seed, **kwargs)

    def _sample_layer(self, problem: LayerProblem, initial_states: np.ndarray | None, seed: int | None,
                      **kwargs: Any) -> LayerSample:
        """:meth:`sample_layer` within its BLAS threads."""
        self.remove_unknown_kwargs(**kwargs)
        params = self._params(kwargs)
        seed = draw_seed(seed)
        t0 = time.perf_counter_ns()
        clock = Clock(params["time_limit"], start=t0 / 1e9 - params["time_spent"])  # the layer's time so far
        m = problem.num_coordinates
        if initial_states is None:
            deadline = self.warm_start_deadline(m, start=clock.start, **params)
            with beam_threads(self.warm_start_threads(m, **params)):
                given = problem.encode(warm_start_integers(
                    problem, beam=self.warm_start_beam(m, **params), growth=self.warm_start_growth(m, **params),
                    paths=1 if problem.per_neuron else self.warm_start_paths(m, **params),
                    pilot=self.warm_start_pilot(m, **params), deadline=deadline))
            clock.cut |= deadline is not None and deadline.cut
            params["late"] |= deadline is not None and deadline.late  # no time for its beam: none for a search
            params["start_cut"] |= deadline is not None and deadline.cut  # the limit binds: a search planned for it
            params["start_tight"] |= deadline is not None and deadline.searched_tight
        else:
            given = np.asarray(initial_states)
        # the start took nearly all of the limit: the search is the polish alone, whose fixed costs are the least;
        # where the time was tight before a population, the polish and a descent by chains (_solve)
        late = params["late"] or (clock.limit is not None and clock.remaining() < LATE_SHARE * clock.elapsed())
        late |= params["start_tight"] and clock.limit is not None and population(params, m) is not None
        if not late and clock.limit is not None and _short_search(params, m):  # no room for the sweep's set-up
            late = clock.remaining() < SHORT_SEARCH_PRODUCTS * problem.product_seconds
        if late:
            params = {**params, "late": True, "num_reads": 1, "num_sweeps": 0, "recombine": 0, "cycles": 1}
            clock.cut = True
        shape = problem.free.shape
        fits = given.shape == shape or (given.ndim == 3 and given.shape[0] == shape[0] and given.shape[1] >= 1
                                        and given.shape[2] == shape[1])
        if not fits:
            raise InvalidArgumentError(f"initial_states must be a binary array of shape {shape} or (n, k, m) = "
                                       f"({shape[0]}, k, {shape[1]}) (problem.encode of grid integers; k starts "
                                       f"per neuron, the warm start first); got shape {given.shape}")
        given = _as_bits(given)
        others = None
        if given.ndim == 3:
            given, others = given[:, 0], given[:, 1:]
            others = np.where(problem.free[:, None], others, 0).astype(np.uint8) if others.shape[1] else None
        warm = np.where(problem.free, given, 0).astype(np.uint8)
        if others is not None and np.array_equal(others, np.broadcast_to(warm[:, None], others.shape)):
            others = None  # copies of the warm start (no beam ran): the reads start from it polished
        starts = [warm]
        if rtn_start(params, problem.num_coordinates):
            starts.append(problem.encode(problem.restrict(rtn(problem))))
        if problem.per_neuron:  # one H_i per neuron (qannealq.weighted): the same search, one run per neuron
            return sample_per_neuron(problem, warm, starts, params, seed, _solve, t0, clock, late)
        # the energies are the neurons' errors (the QUBO is exact): the solve loop asked for the warm start's,
        # and the result asks for the solution's, each remembered by the problem (one product each, not two)
        warm_values = problem.decode_layer(warm)[1]
        warm_energies = problem.errors(warm_values)
        clock.record(float(warm_energies.sum()))
        anneals = effort(params, problem.num_coordinates)[1] > 0  # the schedule then scales with the floors
        # the start is the preset's beam (the solve loop's warm start asks this sampler for its width)
        beamed = bool(self.warm_start_beam(m, **params))
        dense, live = dataclasses.replace(DenseQubos.from_problem(problem, floors=anneals),
                                          beamed=beamed).live(problem.live_block)  # the block its products keep
        # the warm start's up-fields from the product its errors took (the problem remembers it), its energies
        # those errors, and the greedy tolerance from its flip gains: no product of the run's own, and the QUBO's
        # linear terms and offsets (another product) only if the search needs them (fast on a wide layer: never)
        fields = energies = None
        device = resolve_device(params["device"])
        products = problem.remembered_products(warm_values) if len(starts) == 1 and device == "cpu" else None
        if products is not None:
            fields = fields_from_products(products, problem.stats.cross, dense.diag, dense.steps,
                                          np.ascontiguousarray(warm[:, live]), live)
            energies = warm_energies
        run, device = make_run(dense, params, clock, None if fields is None else dense.steps * fields, device,
                               _layer_fields(problem, dense, live))
        t1 = time.perf_counter_ns()
        best = np.zeros_like(warm)
        best[:, live], stats = _solve(run, [s[:, live] for s in starts], seed,
                                      None if others is None else others[:, :, live], fields, energies)
        t2 = time.perf_counter_ns()
        energies = problem.errors(problem.decode_layer(best)[1])
        worse = energies > warm_energies
        best[worse], energies[worse] = warm[worse], warm_energies[worse]  # float ties only
        clock.finish(float(energies.sum()))
        info = {"timing": {"preprocessing_ns": t1 - t0, "sampling_ns": t2 - t1,
                           "postprocessing_ns": time.perf_counter_ns() - t2},
                "seed": seed, "device": device, "params": params, "effort": params["effort"],
                "reads_sweeps": effort(params, dense.mat.shape[0], dense.layer_neurons, dense.layer_inputs,
                                       dense.beamed),
                "chain": chain_depth(params, dense.mat.shape[0]),
                "time_limited": clock.cut, "late": late,
                "trace": {"seconds": [t for t, _ in clock.trace], "energy": [e for _, e in clock.trace]},
                **stats}
        return LayerSample(best, energies, info)

    def sample(self, bqm: dimod.BinaryQuadraticModel, initial_states: Any = None, seed: int | None = None,
               **kwargs: Any) -> dimod.SampleSet:
        """Anneal one BQM; returns ``num_reads`` samples (the best of each read), also where no anneal runs
        (``num_sweeps=0``, or a ``time_limit`` that leaves no time for its set-up): each read is then the polished
        start."""
        self.remove_unknown_kwargs(**kwargs)
        seed = draw_seed(seed)
        return sample_bqm(bqm, self._params(kwargs), initial_states, seed)


def _layer_fields(problem: LayerProblem, dense: DenseQubos, live: np.ndarray
                  ) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The up-fields and energies of one row per neuron ``(n, k)`` on the ``live`` coordinates of ``dense`` (the
    layer's problems there) from the product of their values with ``H`` and the errors it gives
    (:meth:`qannealq.formulation.LayerProblem.errors_from_products`, :func:`._layer_kernel.fields_from_products`):
    no ``lin`` (a product of its own; 0.17 s on CIFAR-10's first layer), and the problem remembers the product,
    so the final errors of a polish of those rows take theirs from it (:mod:`qannealq._near`) instead of another.
    The product is always formed afresh (not from a remembered one's), so the search does not depend on what the
    problem remembers from earlier solves, even in the last bits."""
    def fields(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        full = np.zeros(problem.free.shape, np.uint8)
        full[:, live] = v
        values = np.ascontiguousarray(problem.decode_layer(full)[1], dtype=np.float64)
        products = problem.products(values)
        errors = problem.errors_from_products(values, products)
        return fields_from_products(products, problem.stats.cross, dense.diag, dense.steps, v, live), errors
    return fields


def _solve(run: _Run, starts: list[np.ndarray], seed: int, others: np.ndarray | None = None,
           fields: np.ndarray | None = None, energies: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Polish each start, anneal from each problem's best polished start, return the best row per problem.

    Where a population recombines (:func:`._layer_schedule.recombination`) and runs several cycles
    (:func:`._layer_schedule.cycles`), each cycle after the first anneals a new population from every problem's
    best state so far (the last recombination's polished rows) and recombines it in turn. ``others``
    ``(n, k, m)``: more states per problem; the first population's reads start one from each of them after
    one from the best polished start (:func:`_first_population`). ``fields`` and ``energies``: the starts'
    up-fields and energies, where the caller has them.
    """
    n, k = starts[0].shape[0], len(starts)
    with run:  # the solve's kernel calls
        polished = run.polish(np.concatenate(starts), np.tile(np.arange(n), k), fields, energies)
        start_e = polished.energy.reshape(k, n)
        which = np.argmin(start_e, axis=0)
        chosen = polished.take(which * n + np.arange(n))
        run.clock.record(float(chosen.energy.sum()))
        m = run.dense.mat.shape[0]
        d = run.dense
        reads, population_sweeps = effort(run.params, m, d.layer_neurons, d.layer_inputs, d.beamed)
        rounds, sweeps = recombination(run.params, m, reads, d.layer_inputs)
        if others is not None and not (isinstance(run, _Run) and reads >= 2  # the torch run: reads by problem
                                       and population(run.params, m, d.layer_inputs) is not None):
            others = None  # distinct starts only for a population's reads
        best, start, report, done = chosen, chosen, [], 0
        for cycle in range(cycles(run.params, m, d.layer_inputs)):
            if cycle and run.clock.expired():
                break
            if start is None:  # no recombination: the next population starts from the best so far
                start = run.start(best.v)
            cycle_seed = seed if cycle == 0 else int(np.random.SeedSequence([seed, 0, cycle])
                                                      .generate_state(1, np.uint32)[0])
            if cycle == 0 and others is not None:
                annealed = _first_population(run, start, others, reads, population_sweeps, cycle_seed, not rounds)
            else:
                annealed = run.anneal(start, cycle_seed, exact=not rounds)  # recombination: by tracked energies
            best, done = _fold(best, annealed, n), done + 1
            start = None
            if rounds and annealed.owner.size >= 2 * n:  # its polished best: the next population's start
                start, rounds_report = _recombine(run, best, annealed, cycle_seed, rounds, sweeps)
                best = _fold(best, start, n)
                report += [{"cycle": cycle, **r} for r in rounds_report]
        # late (no sweeps, so no anneal ran: the time was tight, or nearly spent) on a layer of a population (wide,
        # of chain moves): the search is the polish and a greedy descent by chains while the time lasts
        descended = False
        if run.params.get("late") and population(run.params, m, d.layer_inputs) is not None:
            rows = run.descend(chosen)
            best, descended = _fold(best, rows, n), rows.owner.size > 0
    stats = {"polished_start_energies": start_e.sum(axis=1).tolist(),
             "starts_chosen": np.bincount(which, minlength=k).tolist(),
             "cycles": done, "recombination": report, "descended": descended}
    return best.v.copy(), stats


def _first_population(run: _Run, chosen: Rows, others: np.ndarray, reads: int, sweeps: int, seed: int,
                      exact: bool) -> Rows:
    """The population's ``reads`` reads (problem-major, as :meth:`._layer_run._Run.anneal` returns them) from
    distinct starts: read 0 of each problem from its polished start ``chosen``, read ``t`` from
    ``others[:, t − 1]`` (cycling through them when there are fewer), each one anneal of ``sweeps`` sweeps.
    Their fields come from ``chosen``'s where they differ from it in few coordinates
    (:meth:`._layer_run._Run.start_near`: the beam's other survivors differ from its best in about 1 % of CIFAR-10's
    first layer's, 15-17 ms a read there), else from one GEMM per read (0.16 s on one BLAS thread). Under a time
    limit each read starts from ``others`` only where the time left before the run's reserve still holds its
    start (a GEMM: the latest timed product of the layer's rows, ``run.product_seconds``): the reads left start
    from ``chosen`` too. With the limit alone as the bound, a GEMM begun just before it ran past it (0.13-0.28 s
    each on CIFAR-10's first layer), and ``thorough`` there ended up to 0.5 s past a limit of 5.6 s.
    """
    n = chosen.v.shape[0]
    pick = np.arange(reads - 1) % others.shape[1]
    parts, limited = [chosen], run.clock.limit is not None
    for t in pick:  # one read's n rows at a time, each only where its start still fits (timing decides then)
        late = limited and run.clock.expired(run.product_seconds)
        parts.append(chosen if late else run.start_near(chosen, others[:, t]))
    rows = Rows(*(np.stack([getattr(r, k) for r in parts], axis=1).reshape(n * reads, *getattr(chosen, k).shape[1:])
                  for k in ("v", "owner", "energy", "h")))
    return run.anneal(rows, seed, reads=1, sweeps=sweeps, exact=exact)


def _recombine(run: _Run, chosen: Rows, population: Rows, seed: int, rounds: int,
               sweeps: int) -> tuple[Rows, list[dict]]:
    """Rounds of recombination (:func:`._layer_schedule.recombination`) from the anneal's ``population``
    (``reads`` rows per neuron, problem-major) and the polished starts ``chosen``: each round anneals, from
    every neuron's best state so far, only the coordinates on which its population disagrees (``sweeps`` sweeps,
    ``reads`` rows; one in the last round, which is then polished over all coordinates). Returns the rows it
    found and, per round, the share of the free coordinates it annealed (``movable``: where the reads
    disagreed) and the layer's energy after it (the kernel's tracked energies: float32 couplings on chains)."""
    n = chosen.v.shape[0]
    free = run.dense.free
    best = _fold(chosen, population, n)
    reads = population.owner.size // n
    report = []
    for k in range(rounds):
        if run.clock.expired():
            break
        states = population.v.reshape(n, reads, -1)
        movable = free & np.any(states != states[:, :1], axis=1)
        if not movable.any():
            break
        last = k == rounds - 1
        round_seed = int(np.random.SeedSequence([seed, k + 1]).generate_state(1, np.uint32)[0])
        population = run.anneal(run.start(best.v), round_seed, movable=movable, reads=1 if last else reads,
                                sweeps=sweeps, exact=False)
        if population.owner.size == 0:
            break
        reads = population.owner.size // n
        best = _fold(best, population, n)
        report.append({"movable": float(movable.sum() / max(free.sum(), 1)), "energy": float(best.energy.sum())})
    polished = run.polish(best.v)
    run.clock.record(float(np.minimum(polished.energy, best.energy).sum()))
    return polished, report


def _fold(best: Rows, rows: Rows, n: int) -> Rows:
    """Each neuron's lowest-energy row among ``best`` (one per neuron, in order) and ``rows``."""
    pick = _best_per_problem(np.concatenate([best.energy, rows.energy]), np.concatenate([best.owner, rows.owner]), n)
    v = np.concatenate([best.v, rows.v])[pick]
    return Rows(v, np.arange(n), np.concatenate([best.energy, rows.energy])[pick])
