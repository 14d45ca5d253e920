"""The QPU path of the ``dwave`` backends: a neuron BQM on a fixed clique embedding, submitted without waiting.

:func:`submit` embeds the BQM (``FixedEmbeddingComposite`` over the scaling that ``DWaveCliqueSampler``
applies) and returns the composite's SampleSet unresolved, so that a caller can submit every neuron of a layer
before waiting on any. :func:`finish` runs in the resolve hook: it records the chain statistics and the
nanosecond timing (preprocessing up to submission, sampling until the QPU's answer resolved, postprocessing the
unembedding), keeping the QPU's own microsecond figures beside them.
"""

from __future__ import annotations

import dimod
import numpy as np
from dwave.preprocessing import ScaleComposite
from dwave.system import FixedEmbeddingComposite

from qannealq.backends._common import now_ns

__all__ = ["submit", "finish", "child_ranges", "chain_break_fraction"]


class _Stamped(dimod.ComposedSampler):
    """Passes through to its child, writing ``marks["submitted"]`` and ``marks["resolved"]`` (ns).

    Non-blocking: ``sample`` returns once the child's ``sample`` has returned (the QPU problem submitted); the
    resolve mark is written when the embedding composite above resolves the child's answer.
    """

    def __init__(self, child: dimod.Sampler, marks: dict) -> None:
        self._children = [child]
        self.marks = marks

    @property
    def children(self) -> list:
        return self._children

    @property
    def parameters(self) -> dict:
        return self._children[0].parameters

    @property
    def properties(self) -> dict:
        return {"child_properties": self._children[0].properties}

    @dimod.decorators.nonblocking_sample_method
    def sample(self, bqm: dimod.BinaryQuadraticModel, **kwargs):
        self.marks["submitted"] = now_ns()
        answer = self._children[0].sample(bqm, **kwargs)
        yield answer
        answer.resolve()
        self.marks["resolved"] = now_ns()
        yield answer


def child_ranges(child: dimod.Sampler) -> tuple[tuple[float, float], tuple[float, float]]:
    """The solver's ``(h_range, quadratic_range)``, the extended J range where it has one."""
    props = child.properties
    h_range = tuple(props.get("h_range", (-2.0, 2.0)))
    return h_range, tuple(props.get("extended_j_range", props.get("j_range", (-1.0, 1.0))))


def chain_break_fraction(sampleset: dimod.SampleSet) -> float:
    """The fraction of broken chains over all reads: each record weighted by its ``num_occurrences`` (a
    histogram answer, or an aggregated one, holds a repeated read once); 0.0 without reads."""
    record = sampleset.record
    if not len(record) or not record.num_occurrences.sum():
        return 0.0
    return float(np.average(record.chain_break_fraction, weights=record.num_occurrences))


def _scaled(child: dimod.Sampler) -> dimod.Sampler:
    try:  # DWaveCliqueSampler's per-qubit coupling scaling (private in dwave-system)
        from dwave.system.samplers.clique import _QubitCouplingComposite
    except ImportError:  # pragma: no cover - a future dwave-system
        return child
    return _QubitCouplingComposite(child, *child_ranges(child))


def submit(child: dimod.Sampler, bqm: dimod.BinaryQuadraticModel, embedding: dict, chain_strength,
           marks: dict, **kwargs) -> dimod.SampleSet:
    """Embed ``bqm`` (as SPIN) on ``embedding`` and submit it to ``child``; the SampleSet is left unresolved.

    Args:
        child: the structured solver (``DWaveSampler`` or ``MockDWaveSampler``).
        bqm: the problem, any vartype.
        embedding: variable -> chain of qubits.
        chain_strength: a number or a callable ``f(bqm, embedding)``.
        marks: receives the ``submitted`` and ``resolved`` times (ns).
        **kwargs: solver parameters (``num_reads``, ``annealing_time``...) and ``chain_break_method``.
    """
    h_range, j_range = child_ranges(child)
    if "auto_scale" in child.parameters:
        kwargs["auto_scale"] = False  # scaled here, as DWaveCliqueSampler does
    spin = bqm.change_vartype(dimod.SPIN, inplace=False)
    sampler = FixedEmbeddingComposite(_Stamped(ScaleComposite(_scaled(child)), marks), embedding)
    return sampler.sample(spin, chain_strength=chain_strength, bias_range=h_range, quadratic_range=j_range,
                          return_embedding=True, **kwargs)


def finish(answer: dimod.SampleSet, bqm: dimod.BinaryQuadraticModel, embedding: dict, start: int,
           marks: dict) -> dimod.SampleSet:
    """Resolve ``answer`` (from :func:`submit`) into ``bqm``'s vartype with chain statistics and timing.

    ``info`` gets ``chain_strength`` (None when it was a callable's result that is not a number),
    ``chain_break_fraction`` (mean over the reads), ``num_qubits``, ``max_chain_length``,
    ``neurons_in_call`` (1) and ``timing`` (with ``qpu_access_time_share``, the whole call's time).
    """
    answer.resolve()
    context = answer.info.pop("embedding_context", {})
    qpu_timing = dict(answer.info.pop("timing", None) or {})
    out = answer.change_vartype(bqm.vartype, energy_offset=0.0, inplace=False)
    strength = context.get("chain_strength")
    out.info.update(chain_strength=strength if isinstance(strength, (int, float)) else None,
                    chain_break_fraction=chain_break_fraction(out),
                    num_qubits=sum(len(c) for c in embedding.values()),
                    max_chain_length=max(len(c) for c in embedding.values()), neurons_in_call=1)
    submitted = marks.get("submitted", start)
    resolved = marks.get("resolved", submitted)
    out.info["timing"] = {"preprocessing_ns": submitted - start, "sampling_ns": resolved - submitted,
                          "postprocessing_ns": now_ns() - resolved, **qpu_timing}
    if "qpu_access_time" in qpu_timing:  # one neuron per call: the whole call is its share
        out.info["timing"]["qpu_access_time_share"] = qpu_timing["qpu_access_time"]
    return out
