"""Solve loop: formulate each layer, solve it with a baseline or any ``dimod.Sampler``, decode, evaluate.

A sampler that takes whole layers (:func:`qannealq.contract.layer_solver`: ``sample_layer(problem,
initial_states=None, seed=None, **kwargs)`` returning a :class:`~qannealq.contract.LayerSample`) solves all
neurons of a layer at once; otherwise each neuron's BQM is sampled on its own and the lowest-energy sample is
used. Every neuron of a layer is submitted before any SampleSet is resolved, so that the calls of a cloud or
QPU sampler (which return ``SampleSet.from_future``) overlap; an ``executor`` maps whole neuron solves instead.

With a ``checkpoint`` (:class:`NeuronCheckpoint`, e.g. :class:`qannealq.checkpoint.StoreCheckpoint`) the neurons
are solved in batches of ``checkpoint.batch_size``, each batch's rows saved when it is finished and loaded instead
of solved when it was saved before, so that an interrupted layer loses at most one batch (a whole-layer solve is
one batch). Every neuron's seed is derived from the layer seed alone, so a resumed layer equals an uninterrupted
one. A :class:`~qannealq.errors.BackendError` raised by a neuron's solve is raised again naming the layer and the
neuron, and so is a sampler's ``MemoryError`` (:class:`~qannealq.errors.SolveMemoryError`).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from concurrent.futures import BrokenExecutor, Executor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, Sequence

import dimod
import numpy as np

from qannealq import _near
from qannealq._pool import beam_threads
from qannealq._sample_checks import best_sample_row, check_layer_sample
from qannealq.baselines import (BASELINES, BEAM_STARTS, DEFAULT_WARM_START, layer_blas_threads, prepare_start,
                                rank_deficient, rehearse_start, warm_start_integers)
from qannealq.contract import (accepted_options, check_keywords, check_start_rows, draw_seed, layer_solver,
                               merge_timing, warms_up, load_compiled, warm_start_beam, warm_start_growth,
                               warm_start_paths, warm_start_pilot, warm_start_deadline, warm_start_threads,
                               sampler_name)
from qannealq.errors import BackendError, InvalidArgumentError, SolveMemoryError
from qannealq.formulation import LayerProblem, LayerStats, build_problem
from qannealq.grid import Grid, make_grid

__all__ = ["METHODS", "WARM_STARTS", "parse_warm_start", "LayerResult", "quantize_layer", "solve_neuron",
           "submit_neuron", "best_row", "NeuronProgress", "NeuronCheckpoint", "accepts_parameter", "warm_up",
           "check_warm_rows"]

logger = logging.getLogger(__name__)

METHODS = (*BASELINES, "qubo")
WARM_STARTS = (*BASELINES, None)
NeuronProgress = Callable[[int], None]


def parse_warm_start(value: str | None, name: str = "--warm-start") -> str | None:
    """The one rule for a warm start, the command line's and the Python API's alike: ``none``/``None``/empty
    -> None; else one of the baselines (``gptq-restricted-pivot``, ``gptq-restricted-act``, ``gptq-restricted``,
    their unrestricted forms, ``rtn``). ``name``: the argument named in the refusal."""
    if value in (None, "none", "None", ""):
        return None
    choices = tuple(w for w in WARM_STARTS if w)
    if value not in choices:
        raise InvalidArgumentError(f"{name}={value!r} must be one of {', '.join(choices)} or none")
    return value


class NeuronCheckpoint(Protocol):
    """Where the finished rows of a layer's QUBO solve are kept, batch by batch, so that it can resume.

    ``load`` returns the binary rows ``(stop - start, m)`` of neurons ``start..stop-1`` saved before for the same
    problem and layer seed, or None; ``save`` keeps them once solved. A checkpoint with a ``load_warm_start(problem,
    start, stop, warm_start)`` method (:class:`~qannealq.checkpoint.StoreCheckpoint`) also keeps a whole-layer
    solve's warm start: its ``save`` is given ``warm_start=(name, per-neuron errors)``, and a layer whose batch and
    warm-start errors are stored is resumed without computing its warm start.
    """

    batch_size: int

    def load(self, problem: LayerProblem, start: int, stop: int, seed: int) -> np.ndarray | None: ...

    def save(self, problem: LayerProblem, start: int, rows: np.ndarray, seed: int) -> None: ...


@dataclass
class LayerResult:
    """One layer quantized by one method.

    Attributes:
        name: layer name.
        method: ``rtn``, ``gptq``, ``gptq-restricted`` or ``qubo``.
        backend: sampler name for ``qubo`` (else ``""``).
        bits: bit width.
        integers: grid integers ``(n, m)``.
        values: dequantized augmented rows ``(n, m)``.
        errors: per-neuron reconstruction error on the layer's ``H`` ``(n,)``.
        seconds: wall time of the solve (formulation excluded, and the first loading of its compiled code in the
            process: :func:`warm_up`, ``info["warm_up_seconds"]``).
        seed: seed given to the sampler (``None`` for deterministic baselines).
        warm_start_errors: per-neuron errors of the warm start, when one was used.
        samplesets: the raw per-neuron SampleSets (per-neuron path only; None for neurons loaded from a
            checkpoint).
        info: sampler info (timing in ns, etc.).
        num_variables: BQM variables over all neurons (free coordinates).
        grid: the layer's grid (steps, offset, range): what :meth:`ModelResult.save` stores beside the integers.
    """

    name: str
    method: str
    backend: str
    bits: int
    integers: np.ndarray
    values: np.ndarray
    errors: np.ndarray
    seconds: float
    seed: int | None = None
    warm_start_errors: np.ndarray | None = None
    samplesets: list[dimod.SampleSet] | None = None
    info: dict = field(default_factory=dict)
    num_variables: int = 0
    grid: Grid | None = None

    @property
    def error(self) -> float:
        """The layer's objective: the sum of its neuron errors."""
        return float(np.sum(self.errors))


def accepts_parameter(sampler: dimod.Sampler, name: str) -> bool:
    try:
        return name in sampler.parameters
    except Exception:  # a sampler whose parameters property needs a network call
        return False


def check_warm_rows(sampler: dimod.Sampler, options: dict[str, Any], warm_start: str | None,
                    given: str = "--sampler-option") -> None:
    """Refuse sampler ``options`` that need more initial states than the solve loop will give each neuron (one
    warm row, :func:`submit_neuron`, or a whole-layer solver's row of the layer's start; none without
    ``warm_start``), before training (:func:`check_start_rows`)."""
    whole = layer_solver(sampler) is not None
    warm = warm_start is not None and (whole or accepts_parameter(sampler, "initial_states"))
    check_start_rows(sampler, options, int(warm), given)


def submit_neuron(problem: LayerProblem, i: int, sampler: dimod.Sampler, warm: np.ndarray | None,
                  seed: int | None, sampler_kwargs: dict[str, Any]) -> dimod.SampleSet:
    """Submit neuron ``i``'s BQM to ``sampler`` and return its SampleSet, possibly not yet resolved.

    A cloud or QPU sampler returns at once (``SampleSet.from_future``), so submitting every neuron of a
    layer before resolving any lets the calls overlap.
    """
    bqm = problem.neuron_bqm(i)
    if bqm.num_variables == 0:
        return dimod.SampleSet.from_samples_bqm([{}], bqm)
    kwargs = dict(sampler_kwargs)
    if seed is not None and accepts_parameter(sampler, "seed"):
        kwargs.setdefault("seed", seed)
    if _handed_warm(sampler, warm, sampler_kwargs):
        idx = problem.variables(i)
        kwargs.setdefault("initial_states", (warm[i, idx][None, :].astype(np.int8), idx.tolist()))
    return sampler.sample(bqm, **kwargs)


def best_row(problem: LayerProblem, i: int, sampleset: dimod.SampleSet, backend: str = "the sampler") -> np.ndarray:
    """Resolve neuron ``i``'s SampleSet and return the binary row ``(m,)`` of its lowest-energy sample, by the BQM's
    energies; a SampleSet that breaks the contract (other labels, values, energies than the BQM's) is refused naming
    ``backend`` (:func:`qannealq._sample_checks.best_sample_row`)."""
    return best_sample_row(problem, i, sampleset, backend)


def solve_neuron(problem: LayerProblem, i: int, sampler: dimod.Sampler, warm: np.ndarray | None,
                 seed: int | None, sampler_kwargs: dict[str, Any],
                 backend: str = "") -> tuple[np.ndarray, dimod.SampleSet]:
    """Sample neuron ``i``'s BQM and wait for it; return its best binary row ``(m,)`` and the raw SampleSet."""
    sampleset = submit_neuron(problem, i, sampler, warm, seed, sampler_kwargs)
    return best_row(problem, i, sampleset, sampler_name(sampler, backend)), sampleset


#: What to do after a per-neuron solve ran out of memory (:func:`_naming`).
_PER_NEURON_MEMORY = ("the neurons of earlier batches are kept in a run's results store (--resume): resume with more "
                      "memory for each solve (fewer executor workers per machine, e.g. a smaller processes:N or Dask "
                      "workers with more memory each) or a lighter one (fewer reads, e.g. --sampler-option "
                      "num_reads=N)")
#: A whole-layer solver's options that lighten its solve (:func:`_whole_layer_memory`): the executor maps no
#: whole-layer solve, and its own threads each hold their rows (and its warm start's beam groups).
_LIGHTER = {"num_threads": "fewer threads (num_threads=N)", "num_reads": "fewer reads (num_reads=N)",
            "warm_start_beam": "a narrower warm-start beam (warm_start_beam=N)",
            "effort": "a lighter effort (effort=fast)"}


def _whole_layer_memory(sampler: dimod.Sampler) -> str:
    """What to do after a whole-layer solve ran out of memory: the options of :data:`_LIGHTER` ``sampler`` takes."""
    ways = [text for key, text in _LIGHTER.items() if key in (accepted_options(sampler) or ())]
    return ("the layers finished before are kept in a run's results store (--resume): resume with more memory or a "
            "lighter solve" + (f" (--sampler-option: {', '.join(ways)})" if ways else ""))


#: What to do after a baseline (a method, or a per-neuron sampler's warm start) ran out of memory: its ``H`` and
#: factors are ``m²``, its rows ``n · m``, whatever the options.
_BASELINE_MEMORY = ("the results finished before are kept in a run's results store (--resume): resume with more "
                    "memory (fewer runs or workers beside it on the machine)")


def _start_memory(sampler: dimod.Sampler, whole: bool) -> str:
    """What to do after the solve loop's warm start for ``sampler`` ran out of memory: a whole-layer sampler's
    options lighten its beam (:func:`_whole_layer_memory`); RTN has no factorization, and no beam."""
    return (f"{_whole_layer_memory(sampler) if whole else _BASELINE_MEMORY}, or RTN's warm start (--warm-start rtn: "
            "no factorization, no beam)")


@contextmanager
def _naming(problem: LayerProblem, where: str,
            advice: str | Callable[[], str] = _PER_NEURON_MEMORY) -> Iterator[None]:
    """Raise a :class:`BackendError` again with the layer and the neuron(s) it failed on; a sampler's
    ``MemoryError`` too (:class:`SolveMemoryError`, saying what to do: ``advice``, or what it returns, formed only
    then: a sampler's options may be read from its solver), in the process that ran it: from an executor's worker it
    came back as a bare ``MemoryError`` naming nothing, while one of the command's own code stays what it is."""
    try:
        yield
    except SolveMemoryError:
        raise
    except BackendError as exc:
        raise BackendError(f"layer {problem.name!r}, {where}: {exc}") from exc
    except MemoryError as exc:
        raise SolveMemoryError(f"layer {problem.name!r}, {where}: out of memory in the solve (MemoryError: "
                               f"{exc or 'no details'}); {advice() if callable(advice) else advice}") from exc


def _solve_named(problem: LayerProblem, i: int, *args: Any) -> tuple[np.ndarray, dimod.SampleSet]:
    """:func:`solve_neuron` in an executor's worker, naming the neuron of its error there: a process or Dask
    executor sends the calls in chunks, and a chunk's error reached the caller at the chunk's first neuron."""
    with _naming(problem, f"neuron {i}"):
        return solve_neuron(problem, i, *args)


def _solve_batch(problem: LayerProblem, neurons: Sequence[int], sampler: dimod.Sampler, warm: np.ndarray | None,
                 seeds: np.ndarray, executor: Executor | None, progress: NeuronProgress | None,
                 sampler_kwargs: dict[str, Any], backend: str = "") -> tuple[list[np.ndarray], list[dimod.SampleSet]]:
    """The neurons' BQMs: mapped by ``executor``, or all submitted first and then resolved in order."""
    backend = sampler_name(sampler, backend)
    args = [(problem, i, sampler, warm, int(seeds[i]), sampler_kwargs, backend) for i in neurons]
    rows, samplesets = [], []
    if executor is not None:
        try:
            for row, sampleset in executor.map(_solve_named, *zip(*args)):
                rows.append(row)
                samplesets.append(sampleset)
                if progress:
                    progress(1)
        except BrokenExecutor as exc:  # not a QannealqError: the command ended in a traceback, naming nothing
            raise BackendError(f"layer {problem.name!r}, neurons {neurons[0]}-{neurons[-1]}: the executor stopped "
                               f"abruptly (a worker killed, out of memory or crashed in compiled code, or a Dask "
                               f"scheduler gone: {type(exc).__name__}: {exc}); the neurons of earlier batches are kept "
                               "in a run's results store (--resume)") from exc
        return rows, samplesets
    for a in args:
        with _naming(problem, f"neuron {a[1]}"):  # a sampler that solves in sample() fails here
            samplesets.append(submit_neuron(*a[:-1]))
    for i, sampleset in zip(neurons, samplesets):
        with _naming(problem, f"neuron {i}"):
            rows.append(best_row(problem, i, sampleset, backend))
        if progress:
            progress(1)
    return rows, samplesets


def _per_neuron(problem: LayerProblem, sampler: dimod.Sampler, warm: np.ndarray | None, seed: int,
                executor: Executor | None, progress: NeuronProgress | None, sampler_kwargs: dict[str, Any],
                checkpoint: NeuronCheckpoint | None = None, backend: str = "") -> tuple[list[np.ndarray], list]:
    """Every neuron's BQM, in batches saved to (or loaded from) ``checkpoint``, else all at once."""
    n = problem.num_neurons
    seeds = np.random.SeedSequence(seed).generate_state(n) & 0x7FFFFFFF
    size = n if checkpoint is None else max(1, int(checkpoint.batch_size))
    rows: list[np.ndarray] = []
    samplesets: list = []
    for start in range(0, n, size):
        stop = min(start + size, n)
        stored = None if checkpoint is None else checkpoint.load(problem, start, stop, seed)
        if stored is not None:
            rows.extend(np.asarray(stored))
            samplesets.extend([None] * (stop - start))
            if progress:
                progress(stop - start)
            continue
        batch_rows, batch_sets = _solve_batch(problem, range(start, stop), sampler, warm, seeds, executor,
                                              progress, sampler_kwargs, backend)
        if checkpoint is not None:
            checkpoint.save(problem, start, np.stack(batch_rows), seed)
        rows.extend(batch_rows)
        samplesets.extend(batch_sets)
    return rows, samplesets


def _stored_layer(problem: LayerProblem, checkpoint: NeuronCheckpoint | None, seed: int,
                  warm_start: str | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A whole-layer solve's stored batch (the layer's one): its rows, and the errors of its warm start where the
    checkpoint kept them (``load_warm_start``, :class:`qannealq.checkpoint.StoreCheckpoint`), so that a resume
    computes no warm start for it (a beam: minutes on CIFAR-10 at ``effort=thorough``); None where not stored."""
    stored = None if checkpoint is None else checkpoint.load(problem, 0, problem.num_neurons, seed)
    kept = getattr(checkpoint, "load_warm_start", None)
    if stored is None or warm_start is None or kept is None:
        return stored, None
    return np.asarray(stored), kept(problem, 0, problem.num_neurons, warm_start)


def _whole_layer(problem: LayerProblem, solver, warm: np.ndarray | None, seed: int,
                 checkpoint: NeuronCheckpoint | None, sampler_kwargs: dict[str, Any],
                 backend: str = "", stored: np.ndarray | None = None,
                 warm_start: tuple[str, np.ndarray] | None = None) -> tuple[np.ndarray, dict]:
    """All neurons at once (one checkpoint batch, ``stored`` where :func:`_stored_layer` found it, saved with
    ``warm_start``'s name and errors where the checkpoint keeps them); the result checked against the contract
    (:func:`qannealq._sample_checks.check_layer_sample`) before it is decoded or saved."""
    n = problem.num_neurons
    if stored is not None:
        return np.asarray(stored), {"resumed": True}
    with _naming(problem, f"all {n} neurons (whole-layer solve)", lambda: _whole_layer_memory(solver)):
        result = solver.sample_layer(problem, initial_states=warm, seed=seed, **sampler_kwargs)
        assignments, info = check_layer_sample(problem, result, sampler_name(solver, backend))
    if checkpoint is not None:
        keeps = warm_start is not None and hasattr(checkpoint, "load_warm_start")
        checkpoint.save(problem, 0, assignments, seed, **({"warm_start": warm_start} if keeps else {}))
    return assignments, info


def _solve_qubo(problem: LayerProblem, sampler: dimod.Sampler, warm: np.ndarray | None, seed: int,
                executor: Executor | None, progress: NeuronProgress | None, sampler_kwargs: dict[str, Any],
                checkpoint: NeuronCheckpoint | None = None, backend: str = "", stored: np.ndarray | None = None,
                warm_start: tuple[str, np.ndarray] | None = None) -> tuple[np.ndarray, list | None, dict]:
    whole = layer_solver(sampler)
    if whole is not None:
        assignments, info = _whole_layer(problem, whole, warm, seed, checkpoint, sampler_kwargs, backend, stored,
                                         warm_start)
        if progress:
            progress(problem.num_neurons)
        return assignments, info.pop("samplesets", None), info  # a whole-layer sampler may keep its raw sets
    rows, samplesets = _per_neuron(problem, sampler, warm, seed, executor, progress, sampler_kwargs, checkpoint,
                                   backend)
    info = {"timing": merge_timing(ss.info for ss in samplesets if ss is not None)}
    assignments = np.stack(rows)
    handed = _started_neurons(problem, sampler, warm, sampler_kwargs)
    if handed.any():  # its start is an assignment it was given: never worse
        # the stored batches hold the sampler's own rows, so a resumed layer keeps the same neurons' starts
        assignments, _, kept = problem.keep_lower(assignments, np.where(handed[:, None], warm, assignments))
        info["warm_start_kept"] = int(kept.sum())
    return assignments, samplesets, info


def _handed_warm(sampler: dimod.Sampler, warm: np.ndarray | None, sampler_kwargs: dict[str, Any]) -> bool:
    """Whether :func:`submit_neuron` gives each neuron's BQM its warm row as the initial state."""
    return (warm is not None and "initial_states" not in sampler_kwargs
            and accepts_parameter(sampler, "initial_states"))


def _started_neurons(problem: LayerProblem, sampler: dimod.Sampler, warm: np.ndarray | None,
                     sampler_kwargs: dict[str, Any]) -> np.ndarray:
    """Which neurons' solves start from the warm row :func:`submit_neuron` gives them, ``(n,)`` bool. The
    decomposition (``uses_initial_states``; ``qannealq run`` puts qaoa, exact and dwave-hybrid in it) takes initial
    states, yet passes a neuron within its capacity straight to its child, which may take none: that neuron's
    reads are its child's own. Only the number of a neuron's variables decides it, so a BQM of its variables alone
    is asked about (a neuron's whole BQM is ``m²`` coefficients)."""
    n = problem.num_neurons
    if not _handed_warm(sampler, warm, sampler_kwargs):
        return np.zeros(n, dtype=bool)
    uses = getattr(sampler, "uses_initial_states", None)
    if not callable(uses):
        return np.ones(n, dtype=bool)
    capacity = sampler_kwargs.get("capacity")
    return np.array([uses(dimod.BinaryQuadraticModel(dict.fromkeys(problem.variables(i).tolist(), 0.0), {}, 0.0,
                                                     "BINARY"), capacity) for i in range(n)], dtype=bool)


#: The most inputs a warm-up's stand-in layer has (:func:`warm_up`): above every size at which ``layer-sa``
#: changes its kernels (chain moves from 256 inputs; its population from 1024 runs the same kernels:
#: ``tests/test_warm_up.py``), and its solve short (CIFAR-10's first layer: 0.69 s with 1100 inputs).
WARM_UP_INPUTS = 400
#: Neurons of a warm-up's stand-in layer: one group of the beam (:data:`qannealq._gptq_beam.GROUP`) a thread.
WARM_UP_NEURONS = 16
#: The time limit of a warm-up's solve (:func:`warm_up`), whatever the layer's: long enough for the stand-in to
#: load and run every phase of the search (the default's took 0.16-0.22 s on MNIST-like stand-ins, loading
#: included), short for any options (``thorough`` anneals to its limit; a beam of 4096 and 100 000 sweeps would
#: run for minutes without one).
WARM_UP_LIMIT = 0.5
#: The most solves of a warm-up's stand-in (:func:`warm_up`): it solves again while its last solve was cut and
#: loaded compiled code. Where numba's on-disk cache is empty (a fresh install), each loading solve compiles for
#: seconds and is cut short of a later phase, which the next one reaches: ``thorough`` on MNIST's first layer took
#: three such solves (the third the first to anneal), and with two its layer compiled the anneal inside the clock
#: (11.6 s under a limit of 0.1 s).
WARM_UP_SOLVES = 6
#: The widest beam of a warm-up's warm start without a deadline (:func:`_load_beam`): as wide as the beam's
#: widest branch (:data:`qannealq.baselines.BOTH_ORDERS_WIDTH`), narrower than a preset's (128-512: 40-370 ms on
#: MNIST-like stand-ins).
WARM_UP_BEAM = 64
#: Options that are not part of a warm-up's kind of layer (:func:`warm_up`): the limit is the warm-up's own.
_NOT_KIND = ("time_limit", "time_spent")
_warmed: set = set()
_warming = threading.RLock()
_inside = threading.local()  # a warm-up's own solve (a sampler whose defaults hold a limit) warms nothing


def _stand_in(problem: LayerProblem) -> LayerProblem:
    """A small random layer of ``problem``'s kind for :func:`warm_up`: as many inputs up to
    :data:`WARM_UP_INPUTS`, the same share of them dead, a singular ``H`` where ``problem``'s is
    (:func:`qannealq.baselines.rank_deficient`), the same bits, granularity, int1 scheme and bias."""
    m = min(problem.num_coordinates, WARM_UP_INPUTS)
    f = m - 1 if problem.has_bias else m
    dead = int(round(np.count_nonzero(problem.dead) / problem.num_coordinates * f)) if f > 1 else 0
    samples = max(2, (f - dead) // 2) if rank_deficient(problem) else 2 * m + 8
    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, f))
    x[:, :min(dead, f - 1)] = 0.0
    n = WARM_UP_NEURONS
    weight = rng.standard_normal((n, f)) / np.sqrt(f)
    bias = 0.1 * rng.standard_normal(n) if problem.has_bias else None
    targets = x @ weight.T + (0.0 if bias is None else bias)
    grid = problem.grid
    scheme = grid.scheme if grid.bits == 1 else "sign"
    return build_problem(LayerStats.from_arrays(x, targets, bias=problem.has_bias), weight, bias,
                         make_grid(weight, bias, grid.bits, grid.granularity, scheme), name=f"{problem.name} warm-up")


def compiled_count() -> int:
    """How many compiled signatures qannealq's numba functions hold in this process (each compilation or load from
    numba's on-disk cache adds one): :func:`warm_up` solves its stand-in again while a cut solve added some."""
    count = 0
    for name, module in list(sys.modules.items()):
        if name.startswith("qannealq") and module is not None:
            for value in list(vars(module).values()):
                signatures = getattr(value, "signatures", None) if hasattr(value, "py_func") else None
                count += len(signatures) if isinstance(signatures, list) else 0
    return count


def _load_beam(stand_in: LayerProblem, sampler: dimod.Sampler, warm_start: str, options: dict[str, Any]) -> None:
    """:func:`warm_up`'s warm start on ``stand_in`` with the beam ``sampler`` asks for, narrowed to
    :data:`WARM_UP_BEAM`, and no deadline: every branch of the beam's code runs, so its compiled functions are
    loaded whatever the stand-in solves' timing (under their own limit, a loaded machine cut their beam, or left it
    out, and the layer's solve loaded ``_group_search`` and ``_spread_paths`` inside its limit)."""
    m = stand_in.num_coordinates
    beam = min(warm_start_beam(sampler, options, m), WARM_UP_BEAM)
    if warm_start not in BEAM_STARTS or beam == 0:
        return
    with beam_threads(warm_start_threads(sampler, options, m)):
        warm_start_integers(stand_in, warm_start, beam, min(warm_start_paths(sampler, options, m), beam),
                            growth=warm_start_growth(sampler, options, m), pilot=warm_start_pilot(sampler, options, m))


def _sampler_defaults(sampler: dimod.Sampler) -> str:
    """A whole-layer sampler's own defaults but its time limit (``properties["defaults"]``: ``layer-sa``'s
    constructor options, a composite's child's), as part of a warm-up's kind: ``LayerSASampler(effort="thorough")``
    after ``LayerSASampler()`` runs other phases with the same call options."""
    try:
        defaults = dict(sampler.properties.get("defaults") or {})
    except Exception:  # a sampler whose properties need the network, or whose defaults are no mapping: none
        return ""
    return repr(sorted(((k, v) for k, v in defaults.items() if k not in _NOT_KIND), key=repr))


def warm_up(problem: LayerProblem, method: str = "qubo", sampler: dimod.Sampler | None = None,
            warm_start: str | None = DEFAULT_WARM_START, **sampler_kwargs: Any) -> float:
    """Load the compiled code that :func:`quantize_layer` runs for ``method`` (with ``sampler`` and
    ``warm_start``) on a layer like ``problem``, once per process and kind of layer, before its clock starts;
    returns the seconds it took (0: done before, or nothing to do).

    The kernels (``layer-sa``'s, the warm start's beam, GPTQ's pivoted factorization and passes) are compiled ahead
    into numba's on-disk cache, but the first call of each in a process loads them: on MNIST's first layer about
    50-270 ms for ``layer-sa`` and 0.35 s for GPTQ, whose solve takes 16 ms once loaded. So the first time-limited
    layer of a process ended at 0.12-0.35 s under a limit of 0.083 s (5 GPTQ times), 33-35 % above the best known
    where the same limit reached 7 % once loaded, and ``qannealq run``'s table gave GPTQ 0.43 s against the QUBO's
    0.67 s (now 0.12-0.14 and 0.43-0.47 s). :func:`quantize_layer` calls this first (``info["warm_up_seconds"]``
    records the time, which the layer's ``seconds`` and a time limit do not count). It runs the same solve on a
    small random layer of the same kind (:func:`_stand_in`): a baseline as such; a whole-layer sampler that allows
    it (:func:`qannealq.contract.warms_up`: ``layer-sa``, not a QPU's whole-layer path) with its options and warm
    start, under a limit of its own (:data:`WARM_UP_LIMIT`, where it takes ``time_limit``), again while a solve was
    cut and loaded compiled code (:func:`compiled_count`), up to :data:`WARM_UP_SOLVES` solves: the loading cuts a
    solve short of its later phases (a narrowed beam skips GPTQ's own starts; a late search, the anneal), which
    the next reaches. A layer of another kind (inputs up to :data:`WARM_UP_INPUTS`, singular or not, dead inputs,
    bits 1 or more, bias), method, options or sampler defaults (:func:`_sampler_defaults`) warms again. For a
    per-neuron sampler (its SDK's own code), or a whole-layer one that does not allow it, the warm start's baseline
    alone; per-neuron problems (``problem.per_neuron``, other kernels) are left alone. A failed warm-up warns and
    the layer goes on. Last, where the layer's warm start will run under a deadline on a full-rank ``H``, its
    first fixed costs are rehearsed at the layer's own shape on stand-in arrays (:func:`_rehearse`, once per
    shape), so that its decisions read steady times from its first layer on.
    """
    whole = method == "qubo" and sampler is not None and layer_solver(sampler) is not None and warms_up(sampler)
    if method == "qubo" and not whole:  # a per-neuron sampler's own code is its SDK's: its warm start's alone
        return warm_up(problem, warm_start) if warm_start in BASELINES else 0.0
    if problem.per_neuron or getattr(_inside, "active", False) or not (whole or method in BASELINES):
        return 0.0
    options = {k: v for k, v in sampler_kwargs.items() if k not in _NOT_KIND} if whole else {}
    m = min(problem.num_coordinates, WARM_UP_INPUTS)
    kind = (method, type(sampler) if whole else None, m, rank_deficient(problem),
            np.count_nonzero(problem.dead) * 8 >= problem.dead.size, problem.grid.bits == 1, problem.has_bias,
            warm_start if whole else None, repr(sorted(options.items(), key=repr)),
            _sampler_defaults(sampler) if whole else None)
    with _warming:
        t0 = time.perf_counter()
        if kind in _warmed:
            return _rehearse(problem, sampler, warm_start, sampler_kwargs, t0, False) if whole else 0.0
        _warmed.add(kind)  # once, whatever happens below
        _inside.active = True
        try:
            stand_in = _stand_in(problem)
            if not whole:
                BASELINES[method](stand_in)
            else:
                if accepts_parameter(sampler, "time_limit"):
                    options["time_limit"] = WARM_UP_LIMIT
                    if warm_start in BASELINES:  # a start too short for its beam is the baseline's own (SKIP_BEAM)
                        BASELINES[warm_start](stand_in)
                        _load_beam(stand_in, sampler, warm_start, options)
                _near.load()  # a solution's errors near a remembered product's (compiled)
                load_compiled(sampler, options)  # every kernel signature, though a solve below be cut before it
                for _ in range(WARM_UP_SOLVES):  # the loading itself may cut a solve short of a later phase
                    before = compiled_count()
                    done = quantize_layer(stand_in, "qubo", sampler, warm_start=warm_start, seed=0, **options)
                    if not done.info.get("time_limited") or compiled_count() == before:
                        break
        except InvalidArgumentError:  # the caller's options: the layer's own solve would say the same
            raise
        except Exception as error:  # the layer's solve goes on, its first loads then inside its clock
            logger.warning("%s: the warm-up of %s on a stand-in layer failed (%s: %s); the layer's time will "
                           "count the first loading of its compiled code", problem.name, method,
                           type(error).__name__, error)
        finally:
            _inside.active = False
        logger.info("%s: %s's compiled code loaded on a stand-in layer before the layer's clock (%.2f s)",
                    problem.name, method, time.perf_counter() - t0)
        if whole:
            return _rehearse(problem, sampler, warm_start, sampler_kwargs, t0, True)
        return time.perf_counter() - t0


def _rehearse(problem: LayerProblem, sampler: dimod.Sampler, warm_start: str | None, sampler_kwargs: dict,
              t0: float, loaded: bool) -> float:
    """:func:`warm_up`'s last step for a whole-layer solve: where its warm start will run under a deadline
    (:func:`qannealq.contract.warm_start_deadline`), the work arrays of its shape touched
    (:func:`qannealq.baselines.prepare_start`) and, on a full-rank ``H``, its first fixed costs rehearsed at the
    layer's own shape (:func:`qannealq.baselines.rehearse_start`), each once per shape; the seconds since ``t0``, or
    0.0 where nothing ran since (nothing ``loaded`` on a stand-in, no rehearsal)."""
    ran = False
    if warm_start in BEAM_STARTS:
        try:
            if warm_start_deadline(sampler, sampler_kwargs, problem.num_coordinates) is not None:
                ran = prepare_start(problem)
                if not rank_deficient(problem):
                    ran = rehearse_start(problem) or ran
        except InvalidArgumentError:  # the caller's options: the layer's own solve says so
            pass
        except Exception as error:  # the layer goes on, its first fixed costs then read as it takes them
            logger.warning("%s: the rehearsal of the warm start's fixed costs failed (%s: %s)", problem.name,
                           type(error).__name__, error)
    return time.perf_counter() - t0 if ran or loaded else 0.0


def quantize_layer(problem: LayerProblem, method: str = "qubo", sampler: dimod.Sampler | None = None,
                   backend: str = "", warm_start: str | None = DEFAULT_WARM_START, seed: int | None = None,
                   executor: Executor | None = None, progress: NeuronProgress | None = None,
                   checkpoint: NeuronCheckpoint | None = None, **sampler_kwargs: Any) -> LayerResult:
    """Quantize one layer with a baseline or with a sampler on its neuron QUBOs.

    Args:
        problem: the layer's QUBOs (:func:`qannealq.formulation.build_problem`).
        method: one of :data:`METHODS`.
        sampler: the ``dimod.Sampler`` for ``method="qubo"``.
        backend: the sampler's name, recorded in the result.
        warm_start: baseline whose floor/ceil assignment seeds the sampler (``initial_states``), or None
            (``"none"`` too, as on the command line).
        seed: base seed; each neuron gets a seed derived from it; drawn at random (and recorded) if None.
        executor: optional executor mapping the per-neuron solves.
        progress: called with the number of neurons just finished.
        checkpoint: keeps finished batches of neuron rows so that an interrupted solve resumes (qubo only).
        **sampler_kwargs: passed to ``sampler.sample`` (or ``sample_layer``).
    """
    if method not in METHODS:
        raise InvalidArgumentError(f"method={method!r} is unknown: choose one of {', '.join(METHODS)}")
    warm_start = parse_warm_start(warm_start, "warm_start")  # "none", as --warm-start none says it, was refused
    if method == "qubo" and sampler is not None and not getattr(_inside, "active", False):
        check_keywords(backend, sampler, sampler_kwargs, given="quantize_layer keyword")  # before the warm-up
    # the layer's time (and a time limit) counts its solve, not the first loading of its compiled code here
    warmed = warm_up(problem, method, sampler, warm_start, **sampler_kwargs)
    t0 = time.perf_counter()
    warm_errors = None
    samplesets, info, used_seed = None, {}, None
    if method in BASELINES:
        with _naming(problem, f"method {method}", _BASELINE_MEMORY):
            integers = BASELINES[method](problem)
        values = problem.grid.dequantize(integers, problem.steps)
        if progress:
            progress(problem.num_neurons)
    else:
        if sampler is None:
            raise InvalidArgumentError("method='qubo' needs a sampler (a backend name or a dimod.Sampler)")
        warm = deadline = None
        m = problem.num_coordinates
        whole = layer_solver(sampler) is not None
        beam = warm_start_beam(sampler, sampler_kwargs, m)
        used_seed = draw_seed(seed)
        # a whole layer is one batch: stored with its warm start's errors, it is resumed without the warm start
        stored, warm_errors = _stored_layer(problem, checkpoint, used_seed, warm_start) if whole else (None, None)
        # a whole-layer solve with a beam, of a narrow layer, on one BLAS thread, whatever the caller set: its own
        # threads use the cores (qannealq.baselines.layer_blas_threads)
        with layer_blas_threads(problem, beam) if whole else nullcontext():
            if warm_start is not None and warm_errors is None:
                # a whole-layer solver may ask for several starts per neuron (the beam's survivors): (n, paths, m)
                paths = warm_start_paths(sampler, sampler_kwargs, m) if whole else 1
                # a whole-layer sampler's time limit covers the layer: its share for the start, the rest after it
                deadline = warm_start_deadline(sampler, sampler_kwargs, m, t0) if whole else None
                # its beams in the sampler's threads: a run on one thread searches on one, beam included
                with beam_threads(warm_start_threads(sampler, sampler_kwargs, m) if whole else None), \
                        _naming(problem, f"warm start {warm_start}" + (f" (beam of {beam})" if beam else ""),
                                lambda: _start_memory(sampler, whole)):
                    starts = warm_start_integers(problem, warm_start, beam, paths,
                                                 growth=warm_start_growth(sampler, sampler_kwargs, m),
                                                 pilot=warm_start_pilot(sampler, sampler_kwargs, m),
                                                 deadline=deadline)
                if beam and warm_start not in BEAM_STARTS:  # it asked for a beam, its start has none (RTN): say so
                    sampler_kwargs = {**sampler_kwargs, "warm_start_beam": 0}
                warm = problem.encode(starts)
                warm_ints = starts if starts.ndim == 2 else starts[:, 0]
                warm_errors = problem.errors(problem.grid.dequantize(warm_ints, problem.steps))
                # its trace (and a limit) count the layer's time from its start, the warm start included: without a
                # limit layer-sa's trace began after the beam, most of the layer's time (a quarter of it read)
                if deadline is not None or (whole and "time_spent" in (accepted_options(sampler) or ())):
                    sampler_kwargs = {**sampler_kwargs, "time_spent": time.perf_counter() - t0}
                if deadline is not None:
                    if deadline.late:  # the start left its beam out for lack of time: the search its polish alone
                        sampler_kwargs["late"] = True
                    if deadline.cut:  # the limit narrowed the start's beam: it binds, the search is planned for it
                        sampler_kwargs["start_cut"] = True
                    if deadline.searched_tight:  # little time was left for the beam: the search is planned for it
                        sampler_kwargs["start_tight"] = True
            kept = None if warm_start is None else (warm_start, warm_errors)
            assignments, samplesets, info = _solve_qubo(problem, sampler, warm, used_seed, executor, progress,
                                                        sampler_kwargs, checkpoint, backend, stored, kept)
            if deadline is not None and deadline.cut:  # the time limit narrowed the warm start's beam
                info = {**info, "time_limited": True}
            integers, values = problem.decode_layer(assignments)
    if warmed:
        info = {**info, "warm_up_seconds": warmed}
    seconds = time.perf_counter() - t0
    logger.debug("%s %s: %.3g s", problem.name, method, seconds)
    return LayerResult(problem.name, method, backend if method == "qubo" else "", problem.grid.bits, integers,
                       values, problem.errors(values), seconds, used_seed, warm_errors, samplesets, info,
                       int(problem.free.sum()), problem.grid)
