"""``layer-sa`` on a single BQM: the one-problem case of the whole-layer kernel."""

from __future__ import annotations

import time
from typing import Any

import dimod
import numpy as np

from qannealq.errors import InvalidArgumentError

from ._common import warm_bits
from ._layer_dense import DenseQubos
from ._layer_run import make_run, resolve_device
from ._layer_schedule import Clock, effort

__all__ = ["sample_bqm"]


def _initial_row(initial_states: Any, labels: list, seed: int) -> np.ndarray:
    """The first initial state reordered to ``labels`` (binary), or a seeded random state."""
    if initial_states is None:
        return np.random.default_rng(seed).integers(0, 2, len(labels)).astype(np.uint8)
    try:
        arr, init_labels = dimod.as_samples(initial_states)
    except (ValueError, TypeError) as exc:  # dimod's own words named neither the argument nor the way out
        raise InvalidArgumentError(f"initial_states must be one state or a list of states (0/1 or -1/+1 values) "
                                   f"over the BQM's {len(labels)} variables, or a SampleSet; dimod could not "
                                   f"read it: {exc}") from None
    if arr.shape[0] == 0 or set(init_labels) != set(labels):
        raise InvalidArgumentError(f"initial_states must give one state over exactly the BQM's {len(labels)} "
                                   f"variables; got labels {list(init_labels)[:5]}...")
    pos = {v: k for k, v in enumerate(init_labels)}
    return warm_bits(np.asarray(arr[0])[[pos[v] for v in labels]])


def sample_bqm(bqm: dimod.BinaryQuadraticModel, params: dict[str, Any], initial_states: Any,
               seed: int) -> dimod.SampleSet:
    """Polish the initial state, run ``num_reads`` reheat anneals from it, return each read's best.

    ``initial_states`` (its first row) is the start; without it, a seeded random state. Always ``num_reads``
    samples (the preset's where None): where no anneal runs (``num_sweeps=0``, or a time limit that leaves no
    time for its set-up) every read is the polished start.
    """
    t0 = time.perf_counter_ns()
    spin = bqm.vartype is dimod.SPIN
    binary = bqm.change_vartype(dimod.BINARY, inplace=False) if spin else bqm
    dense, labels = DenseQubos.from_bqm(binary)
    if not labels:
        reads = effort(params, 1)[0]
        ss = dimod.SampleSet.from_samples_bqm((np.empty((reads, 0), np.int8), []), bqm)
        # the keys of any other BQM's info: the device a run would use (a CUDA one torch does not see is refused
        # as there), and no limit cut a run that did not start
        ss.info.update(timing={"preprocessing_ns": 0, "sampling_ns": 0, "postprocessing_ns": 0}, seed=seed,
                       device=resolve_device(params["device"]), time_limited=False)
        return ss
    start = _initial_row(initial_states, labels, seed)
    clock = Clock(params["time_limit"], start=t0 / 1e9)
    run, device = make_run(dense, params, clock)
    t1 = time.perf_counter_ns()
    with run:
        polished = run.polish(start[None, :])
        rows = run.anneal(polished, seed).v
    if not len(rows):  # no anneal (no sweeps, or no time for its set-up): each read ends at the polished start
        rows = np.repeat(polished.v, effort(params, len(labels))[0], axis=0)
    t2 = time.perf_counter_ns()
    samples = rows.astype(np.int8)
    if spin:
        samples = 2 * samples - 1
    ss = dimod.SampleSet.from_samples_bqm((samples, labels), bqm)
    ss.info.update(timing={"preprocessing_ns": t1 - t0, "sampling_ns": t2 - t1,
                           "postprocessing_ns": time.perf_counter_ns() - t2}, seed=seed, device=device,
                   time_limited=clock.cut)
    return ss
