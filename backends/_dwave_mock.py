"""The offline QPU behind ``dwave-mock``: dwave-system's ``MockDWaveSampler`` with a timing model and a
reverse-anneal emulation, so that the ``dwave`` code path (plans, budgets, warm starts) runs without a token.

* :class:`TimedMockDWaveSampler` publishes ``problem_timing_data`` (dwave-cloud-client's mock of an
  Advantage system's, the data its own tests use) and reports each call's ``info["timing"]`` from that model
  for the problem actually submitted (active qubits, reads, anneal schedule, reverse-anneal deltas), where
  ``MockDWaveSampler`` reports fixed demonstration figures. These are modelled, not measured, times.
* :class:`MockAnnealer`, its substitute sampler: simulated annealing on the embedded problem, each connected
  component (a neuron of a many-neuron call) on its own. A forward anneal is dwave-samplers' default schedule;
  a reverse anneal (``initial_state`` with a schedule starting at s=1) starts every read from
  ``initial_state`` and anneals from an intermediate temperature: with ``(b_hot, b_cold)`` the default beta
  range and ``s`` the schedule's reversal point, from ``b_hot**(1-s*s) * b_cold**(s*s)`` to ``b_cold``
  (s -> 1 keeps the state, s -> 0 is a forward anneal; s = 0.35, near where an Advantage QPU's transverse and
  problem energy scales cross, starts warm). This is a modelling choice for offline runs, not a model of the
  QPU's dynamics. ``reinitialize_state`` and the pause are not emulated; every other QPU parameter is
  accepted and ignored, as the mock does.
"""

from __future__ import annotations

import threading
from typing import Any

import dimod
import networkx as nx
import numpy as np
from dwave.system.testing import MockDWaveSampler

from qannealq.backends._common import solver_seed
from qannealq.backends._dwave_anneal import estimate_access_us

__all__ = ["TimedMockDWaveSampler", "MockAnnealer", "modelled_timing"]

_QPU_PARAMETERS = ("initial_state", "anneal_schedule", "reinitialize_state", "annealing_time", "auto_scale",
                   "answer_mode", "label", "programming_thermalization", "readout_thermalization",
                   "reduce_intersample_correlation", "num_reads", "seed")


class MockAnnealer(dimod.Sampler):
    """Simulated annealing standing in for the QPU, honouring ``initial_state`` for a reverse anneal.

    Each connected component of the problem (on a QPU, a piece that shares no coupler with the others) is
    annealed on its own, with its own default beta range, as disjoint pieces anneal independently on a QPU:
    so many neurons in one call see what each would see alone (simulated annealing's beta range is a heuristic
    of the whole problem, and the weakest piece would otherwise set it for all).
    """

    properties: dict = {}

    @property
    def parameters(self) -> dict:
        return {name: [] for name in _QPU_PARAMETERS}

    def sample(self, bqm: dimod.BinaryQuadraticModel, num_reads: int = 1, seed: int | None = None,
               initial_state: dict | None = None, anneal_schedule: list | None = None,
               **ignored: Any) -> dimod.SampleSet:
        order = {v: k for k, v in enumerate(bqm.variables)}
        parts = [sorted(c, key=order.__getitem__) for c in nx.connected_components(_graph(bqm))]
        # dwave-samplers' annealer takes seeds below 2**31; a larger one of the contract's is hashed into them
        seeds = [solver_seed(seed, 2 ** 31)] if len(parts) == 1 else \
            (np.random.SeedSequence(seed).generate_state(len(parts)) & 0x7FFFFFFF).tolist()
        columns = [self._anneal(bqm, part, num_reads, s, initial_state, anneal_schedule)
                   for part, s in zip(parts, seeds)]
        labels = [v for part in parts for v in part]
        samples = np.hstack(columns) if columns else np.zeros((num_reads, 0), dtype=np.int8)
        return dimod.SampleSet.from_samples_bqm((samples, labels), bqm)

    @staticmethod
    def _anneal(bqm: dimod.BinaryQuadraticModel, part: list, num_reads: int, seed, initial_state: dict | None,
                anneal_schedule: list | None) -> np.ndarray:
        """Reads ``(num_reads, len(part))`` of the sub-problem on ``part`` (forward, or reverse from the state)."""
        from dwave.samplers import SimulatedAnnealingSampler
        from dwave.samplers.sa.sampler import default_beta_range

        inside = set(part)
        sub = dimod.BinaryQuadraticModel({v: bqm.get_linear(v) for v in part},
                                         {(u, v): b for u, v, b in bqm.iter_quadratic() if u in inside},
                                         0.0, bqm.vartype) if len(part) < bqm.num_variables else bqm
        kwargs = {"num_reads": num_reads, "seed": seed}
        if initial_state and anneal_schedule and float(anneal_schedule[0][1]) == 1.0:
            s = min(float(point[1]) for point in anneal_schedule) ** 2
            hot, cold = default_beta_range(sub)
            kwargs.update(beta_range=(hot ** (1 - s) * cold ** s, cold),
                          initial_states=([[initial_state[v] for v in part]] * num_reads, part))
        answer = SimulatedAnnealingSampler().sample(sub, **kwargs)
        return answer.record.sample[:, [answer.variables.index(v) for v in part]]


def _graph(bqm: dimod.BinaryQuadraticModel) -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from(bqm.variables)
    graph.add_edges_from((u, v) for u, v, _ in bqm.iter_quadratic())
    return graph


def modelled_timing(properties: dict, num_qubits: int, kwargs: dict) -> dict[str, float]:
    """The QPU's microsecond timing keys for one call, from the solver's timing model (see the module doc)."""
    reads = int(kwargs.get("num_reads", 1))
    total = estimate_access_us(properties, num_qubits, kwargs)
    programming = estimate_access_us(properties, num_qubits, {**kwargs, "num_reads": 0})
    data = properties["problem_timing_data"]
    schedule = kwargs.get("anneal_schedule")
    anneal = kwargs.get("annealing_time") or (schedule[-1][0] if schedule else data["default_annealing_time"])
    reverse = bool(schedule) and float(schedule[0][1]) == 1.0
    delay = data["qpu_delay_time_per_sample"] + (
        0.0 if not reverse else data["reverse_annealing_with_reinit_delay_time_delta"]
        if kwargs.get("reinitialize_state") else data["reverse_annealing_without_reinit_delay_time_delta"])
    per_read = (total - programming) / reads if reads else 0.0
    return {"qpu_access_time": total, "qpu_programming_time": programming,
            "qpu_sampling_time": total - programming, "qpu_anneal_time_per_sample": float(anneal),
            "qpu_readout_time_per_sample": per_read - anneal - delay, "qpu_delay_time_per_sample": delay}


class TimedMockDWaveSampler(MockDWaveSampler):
    """``MockDWaveSampler`` with ``problem_timing_data`` and per-call modelled timing (see the module doc)."""

    def __init__(self, **options: Any) -> None:
        from dwave.cloud.testing.mocks import qpu_problem_timing_data

        options.setdefault("substitute_sampler", MockAnnealer())
        options.setdefault("parameter_warnings", False)
        super().__init__(**options)
        self.properties["problem_timing_data"] = qpu_problem_timing_data("advantage")

    @property
    def substitute_kwargs(self) -> dict:
        """The substitute sampler's keyword arguments for this thread's calls: those the last call of this thread
        set (:meth:`qannealq.backends.dwave.MockQPUSampler._seed_call`, the seed of its next call), else the
        constructor's. They were the instance's: a sampler shared by threads (``--executor threads:N``, a user's
        own threads) seeded the mock, another thread seeded it again before it sampled, and a call recorded with
        seed 11 returned seed 22's reads (7 of 20 calls two threads made at once)."""
        return getattr(self._calls, "kwargs", self._constructed)

    @substitute_kwargs.setter
    def substitute_kwargs(self, value: dict) -> None:
        if "_calls" not in self.__dict__:  # the constructor's: every thread's until it sets its own
            self._calls, self._constructed = threading.local(), value
        else:
            self._calls.kwargs = value

    def sample(self, bqm: dimod.BinaryQuadraticModel, **kwargs: Any) -> dimod.SampleSet:
        answer = super().sample(bqm, **kwargs)
        answer.info["timing"] = {**answer.info.get("timing", {}),
                                 **modelled_timing(self.properties, bqm.num_variables, kwargs)}
        return answer
