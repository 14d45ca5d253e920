"""A layer's QPU answers into a :class:`~qannealq.contract.LayerSample` with per-call and per-neuron figures.

:func:`layer_result` resolves every neuron's SampleSet (unembedding), keeps its lowest-energy sample, or the
warm start where no sample is lower (both scored by the layer's own QUBO energies, so the result is never worse
than the warm start), and writes ``info``:

* ``timing``: nanoseconds (``preprocessing_ns`` planning, embedding, scaling and submitting; ``sampling_ns``
  waiting for the answers; ``postprocessing_ns`` unembedding and selection) and, beside them, the QPU's own
  microsecond figures summed over the calls (``qpu_access_time``, ``qpu_programming_time``,
  ``qpu_sampling_time``);
* ``qpu``: JSON-ready figures: calls, neurons per call, qubits and estimated/reported access time per call,
  and per neuron its call, the call's access time, its share (the call's time over its neurons), its
  chain-break fraction and chain strength; the anneal (forward/reverse, schedule) and how many neurons kept
  the warm start; the neurons decomposed (above the largest clique or the ``capacity`` option), their calls and
  QPU time (also in the ``timing`` sums); ``failed_qpu_access_time_us``, the QPU time of failed tries of the
  layer that a retry sent again (0 here: :func:`count_failed` sets it); ``summary`` is one line of them;
* ``samplesets``: each neuron's raw SampleSet (a neuron without variables: its one empty sample, no call).
"""

from __future__ import annotations

import dimod
import numpy as np

from qannealq.backends._common import now_ns
from qannealq.contract import LayerSample

__all__ = ["layer_result", "qpu_summary", "answered_timing", "count_failed"]

_SUMMED = ("qpu_access_time", "qpu_programming_time", "qpu_sampling_time")


def _best_rows(problem, futures: dict) -> tuple[np.ndarray, list]:
    rows = np.zeros((problem.num_neurons, problem.num_coordinates), dtype=np.int64)
    samplesets: list = [None] * problem.num_neurons
    for i in range(problem.num_neurons):
        if i not in futures:  # no free variable: its only sample, as the per-neuron path returns it
            samplesets[i] = dimod.SampleSet.from_samples_bqm([{}], problem.neuron_bqm(i))
    for i, future in futures.items():
        future.resolve()
        best = int(np.argmin(future.record.energy))
        rows[i] = problem.assignment(i, dict(zip(future.variables, future.record.sample[best].tolist())))
        samplesets[i] = future
    return rows, samplesets


def _per_call(plan, samplesets: list) -> dict:
    """Reported QPU figures per call (from the first neuron of each call: all share the call's answer)."""
    reported = [samplesets[call.neurons[0]].info["timing"] for call in plan.calls]
    return {"call_clique_size": [c.clique_size for c in plan.calls], "call_qubits": [c.qubits for c in plan.calls],
            "call_estimated_us": [c.estimate_us for c in plan.calls],
            "call_qpu_access_time_us": [t.get("qpu_access_time") for t in reported],
            "call_problem_id": [samplesets[c.neurons[0]].info.get("problem_id") for c in plan.calls]}


def _per_neuron(n: int, samplesets: list) -> dict:
    """Per neuron: its call (-1: none, or decomposed), the call's QPU access time and its share of it (a
    decomposed neuron: the time of all its sub-problem calls), its chain-break fraction and chain strength."""
    def column(get, missing=None, decomposed=None):
        return [get(ss.info) if "call" in ss.info else decomposed(ss.info) if decomposed and
                ss.info.get("decomposed") else missing for ss in samplesets[:n]]

    def own(info):
        return (info.get("timing") or {}).get("qpu_access_time")

    return {"neuron_call": column(lambda info: info["call"], -1),
            "neuron_qpu_access_time_us": column(lambda info: info["timing"].get("qpu_access_time"), None, own),
            "neuron_qpu_share_us": column(lambda info: info["timing"].get("qpu_access_time_share"), None, own),
            "neuron_chain_break_fraction": column(lambda info: info["chain_break_fraction"]),
            "neuron_chain_strength": column(lambda info: info["chain_strength"])}


def _total(values: list) -> float | None:
    return None if not values or any(v is None for v in values) else float(sum(values))


def qpu_summary(qpu: dict) -> str:
    """One line: calls, neurons per call, access time (reported and estimated), share, chain breaks, anneal."""
    def ms(value):
        return "n/a" if value is None else f"{value / 1e3:.2f} ms"

    cbf = [f for f in qpu["neuron_chain_break_fraction"] if f is not None]
    shares = [s for s in qpu["neuron_qpu_share_us"] if s is not None]
    return (f"{qpu['calls']} QPU call(s) for {sum(qpu['neurons_per_call'])} neurons "
            f"({'+'.join(map(str, qpu['neurons_per_call'])) or '-'} per call), QPU access "
            f"{ms(qpu['qpu_access_time_us'])} (estimated {ms(qpu['estimated_qpu_access_time_us'])}), "
            f"{ms(float(np.mean(shares)) if shares else None)} per neuron, chain breaks "
            f"{float(np.mean(cbf)) if cbf else 0.0:.1%}, {qpu['anneal']} anneal, {qpu['num_reads']} reads"
            + (f", warm start kept for {qpu['warm_start_kept']} neuron(s)" if qpu["warm_start_kept"] else "")
            + (f", {len(qpu['decomposed_neurons'])} neuron(s) above the largest clique (or the "
               f"capacity given) decomposed in "
               f"{qpu['decomposed_calls']} more call(s) ({ms(qpu['decomposed_qpu_access_time_us'])})"
               if qpu["decomposed_neurons"] else "")
            + (f", and {ms(qpu['failed_qpu_access_time_us'])} of QPU access on failed tries sent again"
               if qpu.get("failed_qpu_access_time_us") else ""))


def answered_timing(samplesets: list) -> dict[str, float]:
    """The QPU's own figures (:data:`_SUMMED`) summed over the ``samplesets`` that resolve (a layer's calls when
    one failed: each is waited for; a failed one reports nothing)."""
    total: dict[str, float] = {}
    for sampleset in samplesets:
        try:
            timing = sampleset.info.get("timing") or {}  # resolves it
        except Exception:  # noqa: BLE001 (a failed call's own error: the layer's first is raised)
            continue
        for key in _SUMMED:
            if key in timing:
                total[key] = total.get(key, 0.0) + float(timing[key])
    return total


def count_failed(qpu: dict, failed_us: float) -> None:
    """Add to a layer's ``qpu`` figures the QPU access time of its failed tries (a retry's; microseconds), kept
    apart from ``qpu_access_time_us``, which with the per-call and per-neuron figures is the answer's own."""
    qpu["failed_qpu_access_time_us"] = float(qpu.get("failed_qpu_access_time_us") or 0.0) + float(failed_us)
    qpu["summary"] = qpu_summary(qpu)


def layer_result(problem, plan, futures: dict, warm_rows: np.ndarray | None, seed: int | None,
                 marks: tuple[int, int, int]) -> LayerSample:
    """The layer's :class:`LayerSample` (see the module docstring); ``marks`` = (start, submitted, resolved) ns."""
    start, submitted, resolved = marks
    rows, samplesets = _best_rows(problem, futures)
    kept = np.zeros(problem.num_neurons, dtype=bool)
    if warm_rows is None:
        energies = problem.qubo_energies(rows)
    else:
        rows, energies, kept = problem.keep_lower(rows, warm_rows)
    settings = plan.settings
    qpu = {"clique_size": plan.clique_size, "per_call": plan.per_call, "calls": len(plan.calls),
           "neurons_per_call": [len(c.neurons) for c in plan.calls], "num_reads": settings.num_reads,
           "anneal": settings.anneal, "anneal_schedule": None if settings.schedule is None else
           [list(p) for p in settings.schedule], "reinitialize_state": settings.reinitialize_state if
           settings.reverse else None, "warm_start_kept": int(kept.sum()),
           **_per_call(plan, samplesets), **_per_neuron(problem.num_neurons, samplesets)}
    decomposed = [samplesets[i].info for i in plan.decomposed]
    qpu["decomposed_neurons"] = list(plan.decomposed)
    qpu["decomposed_calls"] = int(sum(info.get("backend_calls", 0) for info in decomposed))
    qpu["decomposed_qpu_access_time_us"] = _total([(info.get("timing") or {}).get("qpu_access_time", 0.0)
                                                   for info in decomposed]) if decomposed else 0.0
    qpu["qpu_access_time_us"] = _total(qpu["call_qpu_access_time_us"])
    qpu["estimated_qpu_access_time_us"] = _total(qpu["call_estimated_us"])
    qpu["failed_qpu_access_time_us"] = 0.0
    qpu["summary"] = qpu_summary(qpu)
    reported = [samplesets[c.neurons[0]].info["timing"] for c in plan.calls]
    reported += [samplesets[i].info.get("timing") or {} for i in plan.decomposed]
    timing = {"preprocessing_ns": submitted - start, "sampling_ns": resolved - submitted,
              "postprocessing_ns": now_ns() - resolved,
              **{k: float(sum(t.get(k, 0.0) for t in reported)) for k in _SUMMED if any(k in t for t in reported)}}
    return LayerSample(rows, energies, {"timing": timing, "seed": seed, "qpu": qpu, "samplesets": samplesets})
