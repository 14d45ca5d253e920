"""The search of :mod:`qannealq.backends.decompose`: sub-problem choice, clamping and rounds (see its docstring).

Works on the dense BINARY form ``E(x) = c + a·x + xᵀPx`` (``P`` symmetric, zero diagonal, each coupling split
over both triangles, as :func:`qannealq.backends._common.dense_binary` gives it).
"""

from __future__ import annotations

import time

import dimod
import numpy as np

from qannealq.contract import note_spent, sampler_name
from qannealq.errors import BackendError

__all__ = ["Search", "greedy", "timing_of", "child_summary"]

_QPU_FIGURES = ("qpu_access_time", "qpu_programming_time", "qpu_sampling_time")


def greedy(lin: np.ndarray, mat: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Single-flip steepest descent from ``x`` (binary, float) to a local minimum."""
    x = x.copy()
    field = lin + 2.0 * mat @ x
    for _ in range(10 * x.size + 10):
        delta = np.where(x > 0, -field, field)
        j = int(np.argmin(delta))
        if delta[j] >= -1e-12 * (np.abs(lin).max() + 1e-300):
            break
        step = 1.0 - 2.0 * x[j]
        x[j] += step
        field += 2.0 * step * mat[:, j]
    return x


class Search:
    """The rounds of one decomposition over the dense form of a BQM."""

    def __init__(self, lin: np.ndarray, mat: np.ndarray, offset: float, labels: list,
                 rng: np.random.Generator) -> None:
        self.lin, self.mat, self.offset, self.labels, self.rng = lin, mat, offset, labels, rng
        self.strength = np.abs(mat)

    def energy(self, x: np.ndarray) -> float:
        return float(self.offset + self.varying(x))

    def varying(self, x: np.ndarray) -> float:
        """The energy of ``x`` less the offset: rounds compare it, so that a tolerance relative to the energy does
        not grow with the offset (with 1e6 added, a gain of 1e-7 fell under 1e-12 of it and was refused)."""
        return float(self.lin @ x + x @ self.mat @ x)

    def select(self, x: np.ndarray, capacity: int, stale: int) -> np.ndarray:
        """Indices of the next sub-problem: after an improvement (``stale == 0``) the half capacity of cheapest
        single flips, else one random variable; filled up by draws weighted by coupling to those picked."""
        m = x.size
        if stale == 0:
            field = self.lin + 2.0 * self.mat @ x
            delta = np.where(x > 0, -field, field)
            chosen = list(np.argsort(delta, kind="stable")[:max(1, capacity // 2)])
        else:
            chosen = [int(self.rng.integers(m))]
        picked = np.zeros(m, bool)
        picked[chosen] = True
        pull = self.strength[:, chosen].sum(axis=1)
        while len(chosen) < capacity:
            weight = np.where(picked, 0.0, pull + 1e-12 * (pull.max() + 1e-300))
            j = int(self.rng.choice(m, p=weight / weight.sum()))
            chosen.append(j)
            picked[j] = True
            pull += self.strength[:, j]
        return np.sort(np.asarray(chosen))

    def sub_bqm(self, x: np.ndarray, idx: np.ndarray) -> dimod.BinaryQuadraticModel:
        """The BQM over ``idx`` with every other variable clamped at ``x``: its energy is the full energy."""
        rest = np.ones(x.size, bool)
        rest[idx] = False
        xr = np.where(rest, x, 0.0)
        lin = self.lin[idx] + 2.0 * self.mat[idx] @ xr
        quad = 2.0 * np.triu(self.mat[np.ix_(idx, idx)], 1)
        offset = self.offset + self.lin @ xr + xr @ self.mat @ xr
        sub = dimod.BinaryQuadraticModel(lin, quad, offset, dimod.BINARY)
        sub.relabel_variables({k: self.labels[j] for k, j in enumerate(idx.tolist())}, inplace=True)
        return sub

    def run(self, child: dimod.Sampler, x: np.ndarray, capacity: int, patience: int, max_calls: int,
            child_kw: dict) -> tuple[np.ndarray, dict, list[dict]]:
        """Rounds until ``patience`` rounds without improvement or ``max_calls`` calls; the final state, the
        log (rounds, energies...) and every child call's ``info``. Where a call fails, the QPU time of those
        answered before it goes with the error (:func:`~qannealq.contract.note_spent`: a retry counts it)."""
        infos: list[dict] = []
        try:
            return self._rounds(child, x, capacity, patience, max_calls, child_kw, infos)
        except Exception as exc:
            spent = {k: v for k, v in timing_of(infos, 0).items() if k in _QPU_FIGURES}
            if spent:
                note_spent(exc, spent)
            raise

    def _rounds(self, child: dimod.Sampler, x: np.ndarray, capacity: int, patience: int, max_calls: int,
                child_kw: dict, infos: list[dict]) -> tuple[np.ndarray, dict, list[dict]]:
        part = self.varying(x)
        energies, sizes = [self.offset + part], []
        stale = accepted = child_ns = 0
        takes = set(child.parameters)
        while len(infos) < max_calls and stale < patience:
            idx = self.select(x, capacity, stale)
            sub = self.sub_bqm(x, idx)
            kw = dict(child_kw)
            if "seed" in takes:
                kw["seed"] = int(self.rng.integers(2 ** 31))
            if "initial_states" in takes:
                kw["initial_states"] = (x[idx][None, :].astype(np.int8), list(sub.variables))
            t = time.perf_counter_ns()
            answer = child.sample(sub, **kw)
            answer.resolve()
            child_ns += time.perf_counter_ns() - t
            if len(answer) == 0:
                raise BackendError(f"{sampler_name(child)} returned no sample for the decomposition's sub-problem "
                                   f"{len(infos) + 1} ({len(idx)} of {x.size} variables): a sub-solver must return at "
                                   "least one sample per call")
            infos.append(answer.info)
            sizes.append(len(idx))
            trial = self._adopt(x, idx, sub, answer)
            trial_part = self.varying(trial)
            if trial_part < part - 1e-12 * max(abs(part), 1e-300):
                x, part, stale, accepted = trial, trial_part, 0, accepted + 1
            else:
                stale += 1
            energies.append(self.offset + part)
        stop = "patience" if stale >= patience else "max_calls"
        log = {"rounds": len(infos), "backend_calls": len(infos), "energies": energies, "accepted": accepted,
               "sub_sizes": sizes, "stop": stop, "child_ns": child_ns}
        return x, log, infos

    @staticmethod
    def _adopt(x: np.ndarray, idx: np.ndarray, sub: dimod.BinaryQuadraticModel,
               answer: dimod.SampleSet) -> np.ndarray:
        """``x`` with the sub-problem's variables set to the lowest-energy sample of ``answer``."""
        best = answer.record.sample[int(np.argmin(answer.record.energy))]
        values = dict(zip(answer.variables, best.tolist()))
        if answer.vartype is dimod.SPIN:
            values = {k: (v + 1) // 2 for k, v in values.items()}
        trial = x.copy()
        trial[idx] = [values[v] for v in sub.variables]
        return trial


def timing_of(infos: list[dict], own_ns: int) -> dict:
    """Summed child timing (ns keys and QPU figures; per-sample figures kept from the first call) + own work."""
    total: dict[str, float] = {}
    for info in infos:
        for key, value in (info.get("timing") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if "per_sample" in key:
                    total.setdefault(key, value)
                else:
                    total[key] = total.get(key, 0) + value
    for key in ("preprocessing_ns", "sampling_ns", "postprocessing_ns"):
        total[key] = int(total.get(key, 0))
    total["preprocessing_ns"] += int(own_ns)
    total["decompose_ns"] = int(own_ns)
    return total


def child_summary(infos: list[dict]) -> dict:
    """The children's details over the calls, where they report them: mean chain-break fraction and chain strength
    (a QPU); total optimiser evaluations and time, deepest circuit, and ``reps`` and ``shots`` where every call used
    the same (QAOA). A decomposed ``qaoa`` call reported none of QAOA's, and ``compare`` left them blank."""
    out = {}
    for key, combine in (("chain_break_fraction", lambda v: float(np.mean(v))),
                         ("chain_strength", lambda v: float(np.mean(v))), ("optimizer_evals", lambda v: int(sum(v))),
                         ("optimizer_time_s", lambda v: float(sum(v))), ("circuit_depth", lambda v: int(max(v)))):
        values = [i[key] for i in infos if isinstance(i.get(key), (int, float))]
        if values:
            out[key] = combine(values)
    for key in ("reps", "shots"):
        values = {i.get(key) for i in infos}
        if len(values) == 1 and isinstance(next(iter(values)), int):
            out[key] = values.pop()
    return out
