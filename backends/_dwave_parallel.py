"""Many neurons per QPU call: each neuron on its own disjoint clique embedding, one tiled problem per call.

An equivalent of dwave-system's ``ParallelEmbeddingComposite.sample_multiple`` that does not wait, with the
scaling of ``DWaveCliqueSampler`` per neuron:

1. each neuron's BQM (as SPIN) is embedded on its clique (:class:`Piece`) with its **own chain strength**:
   dwave-system's ``uniform_torque_compensation`` of that neuron (or the ``chain_strength`` given: a number
   or a callable ``f(bqm, embedding)``), times ``chain_strength_scale``;
2. each embedded piece is scaled on its own into the solver's ``h_range`` and extended ``j_range`` and within
   its ``per_qubit_coupling_range`` (its qubits are its own, so the limits hold piece by piece);
3. the pieces, on disjoint qubits, are summed into one problem and submitted with ``auto_scale`` off
   (:func:`submit_call`), with ``initial_state`` the warm start on every chain for a reverse anneal;
4. each neuron's SampleSet is a future on the call's answer (:func:`neuron_sampleset`): resolving it unembeds
   that neuron's chains (majority vote) with energies from the neuron's own BQM, and records the chain
   strength, chain-break fraction, the call, the call's QPU times and this neuron's share of them (the call's
   time divided equally among its neurons).

:func:`solve_layer` submits every call of a layer (as planned by :mod:`._dwave_plan`) before resolving any,
keeps each neuron's lowest-energy sample, or the warm start where no sample beats it, and returns a
:class:`~qannealq.contract.LayerSample` whose ``info["qpu"]`` holds the per-call and per-neuron figures. A
neuron with more variables than the largest clique (or than a ``capacity`` option) is solved by capacity-aware
decomposition (:class:`~.decompose.DecomposingSampler` around the QPU, one sub-problem per call, with the
``capacity``, ``patience`` and ``max_calls`` options given), as the per-neuron path does. Where a call fails,
every other call of the layer is still waited for, and the QPU time of those answered goes with the error
(:func:`~qannealq.contract.note_spent`): a retry counts it (``failed_qpu_access_time``).
"""

from __future__ import annotations

from dataclasses import dataclass

import dimod
import numpy as np
from dwave.embedding import embed_bqm, unembed_sampleset
from dwave.embedding.chain_breaks import majority_vote
from dwave.embedding.chain_strength import uniform_torque_compensation

from qannealq.backends._common import now_ns
from qannealq.backends._dwave_embed import chain_break_fraction, child_ranges
from qannealq.backends._dwave_report import answered_timing, layer_result
from qannealq.backends.decompose import OPTION_RULES as DECOMPOSE_RULES
from qannealq.checks import check_number
from qannealq.contract import LayerSample, note_spent
from qannealq.errors import InvalidArgumentError, ProblemTooLargeError

__all__ = ["Piece", "embed_piece", "chain_strength_of", "chain_break_method", "seeded_chain_breaks", "submit_call",
           "neuron_sampleset", "solve_layer", "CHAIN_OPTIONS", "DECOMPOSE_OPTIONS"]

CHAIN_OPTIONS = ("chain_strength", "chain_strength_scale", "chain_break_method")
DECOMPOSE_OPTIONS = tuple(DECOMPOSE_RULES)
"""The decomposition's options (:meth:`.decompose.DecomposingSampler.sample`): the neurons above ``capacity`` (else
the largest clique) and how many sub-problem calls each may take."""


@dataclass
class Piece:
    """One neuron of a call: its BQM, the SPIN form, chains, chain strength and the scaled embedded problem."""

    neuron: int
    bqm: dimod.BinaryQuadraticModel
    spin: dimod.BinaryQuadraticModel
    embedding: dict
    chain_strength: float
    embedded: dimod.BinaryQuadraticModel

    @property
    def num_qubits(self) -> int:
        return sum(len(chain) for chain in self.embedding.values())


def chain_strength_of(spin: dimod.BinaryQuadraticModel, embedding: dict, chain_strength=None,
                      scale: float = 1.0) -> float:
    """``scale`` x (``chain_strength``, its value ``f(spin, embedding)`` if callable, or uniform torque
    compensation of ``spin`` when None)."""
    scale = check_number("chain_strength_scale", scale)  # the rule of the sampler option of that name
    if chain_strength is None:
        base = uniform_torque_compensation(spin, embedding) if spin.num_interactions else 1.0
    elif callable(chain_strength):
        base = chain_strength(spin, embedding)
    else:
        base = chain_strength
    if isinstance(base, bool) or not isinstance(base, (int, float, np.floating)) or not base > 0:
        raise InvalidArgumentError(f"chain_strength={chain_strength!r} gives {base!r}: use a positive number, a "
                                   "callable f(bqm, embedding) returning one, or None (uniform torque compensation)")
    return float(scale * base)


def _scale_into(embedded: dimod.BinaryQuadraticModel, properties: dict) -> None:
    """Scale ``embedded`` in place into the solver's ranges, as ``DWaveCliqueSampler`` does for one problem."""
    (h_lo, h_hi), (j_lo, j_hi) = child_ranges(_Props(properties))
    embedded.normalize(bias_range=(h_lo, h_hi), quadratic_range=(j_lo, j_hi))
    limits = properties.get("per_qubit_coupling_range")
    if limits and embedded.num_interactions:
        sums = [sum(embedded.adj[v].values()) for v in embedded.variables]
        factor = max(min(sums) / limits[0], max(sums) / limits[1])
        if factor > 1.0:
            embedded.scale(1.0 / factor)
    for v, bias in embedded.iter_linear():  # rounding after the scalings: clip into range
        embedded.set_linear(v, min(max(bias, h_lo), h_hi))
    for u, v, bias in embedded.iter_quadratic():
        embedded.set_quadratic(u, v, min(max(bias, j_lo), j_hi))


@dataclass(frozen=True)
class _Props:
    properties: dict


def embed_piece(neuron: int, bqm: dimod.BinaryQuadraticModel, embedding: dict, adjacency, properties: dict,
                chain_strength=None, scale: float = 1.0) -> Piece:
    """Neuron ``neuron``'s BQM embedded on ``embedding`` with its own chain strength and scaling."""
    spin = bqm.change_vartype(dimod.SPIN, inplace=False)
    strength = chain_strength_of(spin, embedding, chain_strength, scale)
    embedded = embed_bqm(spin, embedding, adjacency, chain_strength=strength)
    _scale_into(embedded, properties)
    return Piece(neuron, bqm, spin, embedding, strength, embedded)


def submit_call(child: dimod.Sampler, pieces: list[Piece], kwargs: dict, warm: dict | None) -> dimod.SampleSet:
    """Sum the pieces into one problem and submit it; returns the child's (possibly unresolved) SampleSet.

    ``warm`` maps each piece's neuron to its warm state (spin per variable); it becomes ``initial_state`` on
    every qubit of every chain when ``kwargs`` asks for a reverse anneal.
    """
    tiled = dimod.BinaryQuadraticModel.empty(dimod.SPIN)
    for piece in pieces:
        tiled.update(piece.embedded)
    kwargs = dict(kwargs)
    if "initial_state" in kwargs:
        kwargs["initial_state"] = {q: int(warm[p.neuron][v]) for p in pieces
                                   for v, chain in p.embedding.items() for q in chain}
    if "auto_scale" in child.parameters:
        kwargs["auto_scale"] = False  # scaled per piece above
    return child.sample(tiled, **kwargs)


def neuron_sampleset(answer: dimod.SampleSet, piece: Piece, call: int, neurons_in_call: int,
                     chain_break_method=majority_vote) -> dimod.SampleSet:
    """Neuron ``piece``'s SampleSet from the call's ``answer``, unembedded and annotated when resolved."""

    def finish(done: dimod.SampleSet) -> dimod.SampleSet:
        start = now_ns()
        out = unembed_sampleset(done, piece.embedding, piece.spin, chain_break_method=chain_break_method,
                                chain_break_fraction=True)
        if not len(out):  # a chain_break_method of the user's that drops reads
            raise InvalidArgumentError(f"chain_break_method={chain_break_method!r} left neuron {piece.neuron} "
                                       "without a read: give one that keeps every read (majority_vote)")
        out = out.change_vartype(piece.bqm.vartype, energy_offset=0.0, inplace=False)
        qpu = {k: float(v) for k, v in (done.info.get("timing") or {}).items() if not k.endswith("_ns")}
        access = qpu.get("qpu_access_time")
        out.info.update(chain_strength=piece.chain_strength, chain_break_fraction=chain_break_fraction(out),
                        num_qubits=piece.num_qubits, call=call, neurons_in_call=neurons_in_call,
                        problem_id=done.info.get("problem_id"))
        out.info["timing"] = {"preprocessing_ns": 0, "sampling_ns": 0, "postprocessing_ns": now_ns() - start,
                              **qpu, "qpu_access_time_share": None if access is None else access / neurons_in_call}
        return out

    return dimod.SampleSet.from_future(answer, finish)


def chain_break_method(option: str, method):
    """A chain-break function, or its name in ``dwave.embedding.chain_breaks`` (a sampler option is text); the
    option rule of ``chain_break_method`` (:data:`qannealq.backends.dwave.OPTION_RULES`).

    ``discard`` is refused: it drops every read with a broken chain, so a neuron could end with no sample."""
    from dwave.embedding import chain_breaks

    keeps = "use majority_vote (the default) or weighted_random, or a function f(samples, chains) that keeps every read"
    if method is chain_breaks.discard:
        raise InvalidArgumentError(f"{option}=discard drops the reads with a broken chain, so a neuron can be left "
                                   f"without a sample: {keeps}")
    if callable(method):
        return method
    if not isinstance(method, str) or method not in ("majority_vote", "weighted_random"):
        raise InvalidArgumentError(f"{option}={method!r}: {keeps}")
    return getattr(chain_breaks, method)


def seeded_chain_breaks(method, seed):
    """``method``, or for dwave-system's ``weighted_random`` the same rule drawing from a generator seeded with
    ``seed`` (a SeedSequence entropy; None: fresh): dwave-system's draws from numpy's global generator, so a
    mock run with a recorded seed gave another answer every time its chains broke."""
    from dwave.embedding import chain_breaks

    if method is not chain_breaks.weighted_random:
        return method
    rng = np.random.default_rng(seed)

    def weighted_random(samples, chains):  # one qubit per chain, for every read, as dwave-system's
        samples, labels = dimod.as_samples(samples)
        index = {v: k for k, v in enumerate(labels)}
        picks = [index[rng.choice(list(chain))] for chain in chains]
        return samples[:, picks], np.arange(samples.shape[0])

    return weighted_random


def _warm_states(problem, initial_states: np.ndarray | None) -> dict | None:
    if initial_states is None:
        return None
    warm = np.asarray(initial_states)
    if warm.shape != (problem.num_neurons, problem.num_coordinates):
        raise InvalidArgumentError(f"initial_states has shape {warm.shape}; expected "
                                   f"{(problem.num_neurons, problem.num_coordinates)} (neurons x coordinates)")
    return {i: {int(j): 2 * int(warm[i, j]) - 1 for j in problem.variables(i)} for i in range(problem.num_neurons)}


def solve_layer(qpu, problem, initial_states: np.ndarray | None = None, seed: int | None = None,
                **options) -> LayerSample:
    """Every neuron of ``problem`` on the QPU, many per call (see the module docstring).

    ``qpu`` is a :class:`~.dwave.QPUSampler` (its ``plan``, ``child`` and per-call seeding are used).
    """
    start = now_ns()
    chain = {k: options.pop(k) for k in CHAIN_OPTIONS if k in options}
    decompose = {k: v for k in DECOMPOSE_OPTIONS if (v := options.pop(k, None)) is not None}
    plan = qpu.plan([problem], warm_start=initial_states is not None, capacity=decompose.get("capacity"),
                    **options).layers[0]
    if plan.problem:
        raise ProblemTooLargeError(f"backend {qpu.name!r}, layer {problem.name}: {plan.problem}")
    bqms = {i: problem.neuron_bqm(i) for call in plan.calls for i in call.neurons}
    warm = _warm_states(problem, initial_states)
    kwargs = plan.settings.solver_kwargs({} if plan.settings.reverse else None)
    method = chain_break_method("chain_break_method", chain.get("chain_break_method", majority_vote))
    seeds = np.random.SeedSequence(seed).generate_state(max(len(plan.calls), 1)) & 0x7FFFFFFF
    futures, answers, decomposed = {}, [], {}
    try:
        for c, call in enumerate(plan.calls):
            pieces = [embed_piece(i, bqms[i], call.embeddings.chains(k, list(bqms[i].variables)),
                                  qpu.child.adjacency, qpu.child.properties,
                                  chain.get("chain_strength", qpu.chain_strength),
                                  chain.get("chain_strength_scale", qpu.chain_strength_scale))
                      for k, i in enumerate(call.neurons)]
            qpu._seed_call(int(seeds[c]))
            answers.append(submit_call(qpu.child, pieces, kwargs, warm))
            futures.update({p.neuron: neuron_sampleset(answers[-1], p, c, len(pieces),
                                                       seeded_chain_breaks(method, [int(seeds[c]), k]))
                            for k, p in enumerate(pieces)})
        submitted = now_ns()
        warm_rows = None if initial_states is None else np.asarray(initial_states)
        _decomposed(qpu, problem, plan, warm_rows, seed, chain, decompose, decomposed)
        futures.update(decomposed)
        for answer in answers:
            answer.resolve()
        resolved = now_ns()
        return layer_result(problem, plan, futures, warm_rows, seed, (start, submitted, resolved))
    except Exception as exc:
        note_spent(exc, answered_timing([*answers, *decomposed.values()]))
        raise


def _decomposed(qpu, problem, plan, warm_rows: np.ndarray | None, seed: int | None, chain: dict,
                decompose: dict, out: dict) -> None:
    """Neurons above the largest clique (or ``decompose["capacity"]``), each by capacity-aware decomposition on
    the QPU (one sub-problem per call; ``decompose``: its :data:`DECOMPOSE_OPTIONS`, the decomposition's settings
    for every neuron), warm-started like the others.
    Every sub-call takes the layer's ``chain`` options and solver options (``annealing_time``, ``label``...) as the
    planned calls do; it is a forward anneal (one neuron, no warm state on its qubits), so a reverse anneal's
    schedule is not passed. Each neuron's SampleSet goes into ``out`` as it is made (a later one's failure
    keeps the time of those before)."""
    if not plan.decomposed:
        return
    from qannealq.backends.decompose import DecomposingSampler

    sampler = DecomposingSampler(qpu, **decompose)
    seeds = np.random.SeedSequence([seed or 0, 1]).generate_state(len(plan.decomposed)) & 0x7FFFFFFF
    for i, neuron_seed in zip(plan.decomposed, seeds.tolist()):
        start = None if warm_rows is None else {int(j): int(warm_rows[i, j]) for j in problem.variables(i)}
        out[i] = sampler.sample(problem.neuron_bqm(i), initial_states=start, seed=neuron_seed,
                                num_reads=plan.settings.num_reads, **dict(plan.settings.solver_options), **chain)
