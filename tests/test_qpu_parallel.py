"""Many neurons per QPU call on the mock QPU: disjoint clique embeddings (valid, cached, a corrupt entry rebuilt),
a layer in fewer calls than neurons with every sample decoded to its own neuron, per-neuron chain strength and
QPU time, reverse annealing from the warm start (its parameters reach the solver; never worse than the warm
start), ``parallel=False`` as one neuron per call, and quality not below one neuron per call."""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import replace
from types import SimpleNamespace

import dimod
import networkx as nx
import numpy as np
import pytest

pytest.importorskip("dwave.system")

from backend_fixtures import digits_layer, tiny_digits  # noqa: E402
from dwave.embedding import is_valid_embedding  # noqa: E402
from dwave.embedding.chain_breaks import discard, majority_vote  # noqa: E402
from dwave.system.testing import MockDWaveSampler  # noqa: E402

from qannealq.backends import _dwave_cliques, get_sampler  # noqa: E402
from qannealq.baselines import warm_start_integers  # noqa: E402
from qannealq.backends._dwave_cliques import CliqueCache, graph_key  # noqa: E402
from qannealq.backends._dwave_parallel import embed_piece, neuron_sampleset, submit_call  # noqa: E402
from qannealq.contract import layer_solver, qpu_planner  # noqa: E402
from qannealq.errors import InvalidArgumentError  # noqa: E402
from qannealq.experiment import formulate  # noqa: E402
from qannealq.runner import wrap_backend  # noqa: E402
from qannealq.solve import quantize_layer  # noqa: E402


def _graph(shape: int = 4, broken=()) -> tuple[nx.Graph, dict]:
    mock = MockDWaveSampler(topology_type="pegasus", topology_shape=[shape], broken_nodes=list(broken) or None)
    return mock.to_networkx_graph(), mock.properties["topology"]


class _Calls:
    """Counts the mock solver's calls and keeps their keyword arguments and problems."""

    def __init__(self, sampler, monkeypatch) -> None:
        self.kwargs: list[dict] = []
        self.bqms: list = []
        child = sampler.child
        real = child.sample

        def sample(bqm, **kwargs):
            self.kwargs.append(kwargs)
            self.bqms.append(bqm)
            return real(bqm, **kwargs)

        monkeypatch.setattr(child, "sample", sample)


def test_disjoint_clique_embeddings_are_valid_cached_and_extended(tmp_path, monkeypatch):
    graph, topology = _graph()
    cache = CliqueCache(graph, topology, tmp_path)
    one = cache.get(11, 1)
    assert len(one) == 1 and not one.exhausted
    every = cache.get(11, 1000)  # extends the one: the graph holds a few more, then no more
    assert every.exhausted and len(every) > 2 and one.embeddings[0] == every.embeddings[0]  # search order kept
    best = cache.best(11)
    couplers = [graph.subgraph([q for c in emb for q in c]).number_of_edges() for emb in best.embeddings]
    assert couplers == sorted(couplers, reverse=True) and set(best.embeddings) == set(every.embeddings)
    used = [q for emb in every.embeddings for chain in emb for q in chain]
    assert len(used) == len(set(used))  # pairwise disjoint
    for emb in every.embeddings:
        assert is_valid_embedding(dict(enumerate(emb)), nx.complete_graph(11), graph)
    assert every.qubits(0, 11) == sum(len(c) for c in every.embeddings[0]) > every.qubits(0, 5)

    def no_search(*args, **kwargs):
        raise AssertionError("searched although the cache holds the embeddings")

    monkeypatch.setattr("minorminer.utils.parallel_embeddings.find_multiple_embeddings", no_search)
    again = CliqueCache(graph, topology, tmp_path).get(11, 1000)  # a new process: read from disk
    assert again == every
    assert cache.path(11).parent.name == graph_key(graph, topology) and "pegasus-4-" in graph_key(graph, topology)
    other, _ = _graph(broken=[next(iter(used))])  # a solver with another broken qubit: another entry
    assert graph_key(other, topology) != graph_key(graph, topology)


@pytest.mark.parametrize("damage", ["garbage", "overlap", "other graph"])
def test_a_corrupt_cache_entry_is_rebuilt(tmp_path, caplog, damage):
    graph, topology = _graph()
    first = CliqueCache(graph, topology, tmp_path).get(9, 3)
    path = CliqueCache(graph, topology, tmp_path).path(9)
    data = json.loads(path.read_text())
    if damage == "garbage":
        path.write_text('{"format": 1, "embeddings": [[[1, 2')
    elif damage == "overlap":
        data["embeddings"][1] = data["embeddings"][0]
        path.write_text(json.dumps(data))
    else:
        data["graph"] = "pegasus-4-0000000000000000"
        path.write_text(json.dumps(data))
    caplog.set_level(logging.WARNING, logger=_dwave_cliques.__name__)
    rebuilt = CliqueCache(graph, topology, tmp_path).get(9, 3)
    assert "unusable" in caplog.text and str(path) in caplog.text
    assert rebuilt == first and CliqueCache(graph, topology, tmp_path)._load(9) == first  # written back, valid


def _second_layer(bits: int):
    """The tiny model's second layer: 10 neurons of up to 11 variables (exact answers in milliseconds)."""
    return formulate(tiny_digits(), bits)[1]


def test_a_layer_in_fewer_calls_than_neurons_each_sample_decoded_to_its_neuron(monkeypatch):
    problem = _second_layer(4)
    sampler = get_sampler("dwave-mock", topology_shape=[4], num_reads=100)  # P4 holds 6 cliques of 11
    assert layer_solver(sampler) is sampler
    calls = _Calls(sampler, monkeypatch)
    result = quantize_layer(problem, "qubo", sampler, "dwave-mock", seed=4, warm_start=None)
    qpu = result.info["qpu"]
    assert len(calls.kwargs) == qpu["calls"] == 2 < problem.num_neurons
    assert qpu["neurons_per_call"] == [6, 4] and qpu["per_call"] == 6
    for bqm, qubits in zip(calls.bqms, qpu["call_qubits"]):
        assert bqm.num_variables == qubits  # the call's pieces sit on disjoint qubits
    exact = quantize_layer(problem, "qubo", get_sampler("exact"), "exact")
    assert np.all(result.errors >= exact.errors - 1e-12) and result.error <= 1.25 * exact.error
    for i, ss in enumerate(result.samplesets):  # a neuron's samples are over its own variables, its energies
        bqm = problem.neuron_bqm(i)
        assert set(ss.variables) == set(bqm.variables) and np.allclose(bqm.energies(ss), ss.record.energy)
        assert ss.info["call"] == qpu["neuron_call"][i] == i // 6
        assert ss.info["chain_strength"] == pytest.approx(qpu["neuron_chain_strength"][i])
    for i in range(problem.num_neurons):
        call = qpu["neuron_call"][i]
        size = qpu["neurons_per_call"][call]
        assert qpu["neuron_qpu_access_time_us"][i] == qpu["call_qpu_access_time_us"][call] > 0
        assert qpu["neuron_qpu_share_us"][i] == pytest.approx(qpu["call_qpu_access_time_us"][call] / size)
        assert 0.0 <= qpu["neuron_chain_break_fraction"][i] <= 1.0
    assert result.info["timing"]["qpu_access_time"] == pytest.approx(sum(qpu["call_qpu_access_time_us"]))
    assert qpu["anneal"] == "forward" and "summary" in qpu  # no warm start: forward


def _failing_calls(monkeypatch, failing: set, where: str = "resolved"):
    """A ``dwave-mock`` on P4 whose calls numbered in ``failing`` (from 1) fail with a solver failure, when
    submitted or when their answer is resolved (the mock has annealed them: the device did the work)."""
    from dwave.cloud.exceptions import SolverFailureError

    sampler = get_sampler("dwave-mock", topology_shape=[4], num_reads=100)
    real, count = sampler.child.sample, [0]

    def fail(_):
        raise SolverFailureError("solver failed")

    def sample(bqm, **kwargs):
        count[0] += 1
        if count[0] in failing and where == "submitted":
            fail(None)
        answer = real(bqm, **kwargs)
        return dimod.SampleSet.from_future(answer, fail) if count[0] in failing else answer

    monkeypatch.setattr(sampler.child, "sample", sample)
    return sampler


@pytest.mark.parametrize("where", ["resolved", "submitted"])
def test_a_retried_layer_counts_its_failed_tries_qpu_time_apart(monkeypatch, where):
    """A layer's second call failed after its first was answered: the retry sent the whole layer again, and the
    first try's answered call (its QPU access time, 36 ms here) reached no figure: the layer reported the second
    try's two calls only. It is now counted apart (``failed_qpu_access_time``), the answer's own figures staying
    those of a run without the failure; a layer whose every try fails says in its error how much they spent."""
    from qannealq.backends.retry import RetryComposite
    from qannealq.errors import BackendError

    problem = _second_layer(4)
    clean = quantize_layer(problem, "qubo", get_sampler("dwave-mock", topology_shape=[4], num_reads=100),
                           "dwave-mock", seed=4, warm_start=None)
    first_call = clean.info["qpu"]["call_qpu_access_time_us"][0]
    flaky = RetryComposite(_failing_calls(monkeypatch, {2}, where), retries=2, backend="dwave-mock", backoff=0.0)
    result = quantize_layer(problem, "qubo", flaky, "dwave-mock", seed=4, warm_start=None)
    qpu, timing = result.info["qpu"], result.info["timing"]
    assert result.info["retries"] == 1 and qpu["calls"] == 2 and first_call > 0
    assert timing.get("failed_qpu_access_time", 0.0) == pytest.approx(first_call)  # was lost: 0
    assert clean.info["qpu"]["failed_qpu_access_time_us"] == 0.0
    np.testing.assert_array_equal(result.integers, clean.integers)
    for key in ("qpu_access_time_us", "call_qpu_access_time_us", "neuron_qpu_share_us"):
        assert qpu[key] == clean.info["qpu"][key]  # the answer's own time, as without the failure
    assert timing["qpu_access_time"] == clean.info["timing"]["qpu_access_time"]
    assert qpu["failed_qpu_access_time_us"] == timing["failed_qpu_access_time"]
    assert f"{first_call / 1e3:.2f} ms of QPU access on failed tries" in qpu["summary"]
    down = RetryComposite(_failing_calls(monkeypatch, {2, 4, 6}, where), retries=2, backend="dwave-mock",
                          backoff=0.0)
    with pytest.raises(BackendError, match=rf"after 3 tries: SolverFailureError: solver failed "
                                           rf"\({3 * first_call / 1e3:.2f} ms of QPU access time spent"):
        quantize_layer(problem, "qubo", down, "dwave-mock", seed=4, warm_start=None)


def test_reverse_anneal_parameters_reach_the_solver_and_never_lose_to_the_warm_start(monkeypatch):
    sampler = get_sampler("dwave-mock", topology_shape=[6], num_reads=20)
    calls = _Calls(sampler, monkeypatch)
    for bits, seed in [(4, 0), (2, 1)]:
        problem = digits_layer(bits)
        start = len(calls.kwargs)
        result = quantize_layer(problem, "qubo", sampler, "dwave-mock", seed=seed)
        assert np.all(result.errors <= result.warm_start_errors + 1e-12)  # after the best-sample selection
        qpu = result.info["qpu"]
        assert qpu["anneal"] == "reverse" and qpu["reinitialize_state"] is True
        assert qpu["anneal_schedule"] == [[0.0, 1.0], [1.0, 0.35], [9.0, 0.35], [10.0, 1.0]]
        warm = problem.encode(warm_start_integers(problem))  # the solve loop's default start
        plan = sampler.plan([problem], warm_start=True).layers[0]
        assert len(calls.kwargs) - start == len(plan.calls) == qpu["calls"]
        for call, kwargs, bqm in zip(plan.calls, calls.kwargs[start:], calls.bqms[start:]):
            assert kwargs["anneal_schedule"] == qpu["anneal_schedule"] and kwargs["reinitialize_state"] is True
            assert kwargs["auto_scale"] is False and kwargs["num_reads"] == 20
            state = kwargs["initial_state"]
            assert set(state) == set(bqm.variables)  # every active qubit starts from the warm start:
            for k, i in enumerate(call.neurons):  # each chain of neuron i holds its warm value as a spin
                chains = call.embeddings.chains(k, list(problem.neuron_bqm(i).variables))
                assert all(state[q] == 2 * int(warm[i, j]) - 1 for j, chain in chains.items() for q in chain)


def test_reverse_needs_a_warm_start_and_a_solver_that_takes_one(monkeypatch):
    problem = digits_layer(4)
    sampler = get_sampler("dwave-mock", topology_shape=[6], num_reads=5)
    with pytest.raises(InvalidArgumentError, match="needs a warm start"):
        quantize_layer(problem, "qubo", sampler, "dwave-mock", seed=0, warm_start=None, anneal="reverse")
    params = {k: v for k, v in sampler.child.parameters.items() if k != "initial_state"}
    monkeypatch.setattr(sampler.child, "parameters", params)
    result = quantize_layer(problem, "qubo", sampler, "dwave-mock", seed=0)
    assert result.info["qpu"]["anneal"] == "forward" and result.info["qpu"]["anneal_schedule"] is None
    with pytest.raises(InvalidArgumentError, match="takes no initial_state"):
        quantize_layer(problem, "qubo", sampler, "dwave-mock", seed=0, anneal="reverse")


def test_parallel_false_keeps_one_neuron_per_call(monkeypatch):
    problem = digits_layer(4)
    sampler = get_sampler("dwave-mock", topology_shape=[6], num_reads=10, parallel=False)
    assert layer_solver(sampler) is None and "anneal" not in sampler.parameters
    calls = _Calls(sampler, monkeypatch)
    result = quantize_layer(problem, "qubo", sampler, "dwave-mock", seed=2)
    assert len(calls.kwargs) == problem.num_neurons and "qpu" not in result.info
    assert all("initial_state" not in kw and "anneal_schedule" not in kw for kw in calls.kwargs)
    assert all(ss.info["neurons_in_call"] == 1 for ss in result.samplesets)
    one = get_sampler("dwave-mock", topology_shape=[6], num_reads=10)  # the option, on the whole-layer path
    calls = _Calls(one, monkeypatch)
    again = quantize_layer(problem, "qubo", one, "dwave-mock", seed=2, parallel=False, warm_start=None)
    assert len(calls.kwargs) == again.info["qpu"]["calls"] == problem.num_neurons
    assert again.info["qpu"]["neurons_per_call"] == [1] * problem.num_neurons


def test_no_neuron_of_a_call_gets_longer_chains_than_alone():
    """The greedy search finds, beside P6's 10-cliques of 2-qubit chains, some with chains of 5 and 6 qubits;
    they have the most couplers, so the best-first order put them first: a layer of 10-variable neurons had
    its first two neurons on 6- and 5-qubit chains (2 alone). Those embeddings are left out of a call."""
    sampler = get_sampler("dwave-mock", topology_shape=[6], num_reads=5)
    alone = max(map(len, sampler.embedding(10).values()))
    assert alone == 2 and max(max(map(len, emb)) for emb in sampler.cliques.get(10, 2).embeddings) > alone
    free = np.zeros((30, 12), dtype=bool)
    free[:, :10] = True
    layer = sampler.plan([SimpleNamespace(name="ten", grid=SimpleNamespace(bits=None), free=free)],
                         warm_start=False).layers[0]
    assert sum(len(call.neurons) for call in layer.calls) == 30 and layer.per_call > 1
    for call in layer.calls:
        for k in range(len(call.neurons)):
            assert max(map(len, call.embeddings.chains(k, list(range(10))).values())) == alone
            assert call.embeddings.qubits(k, 10) == 20


def _read_mean(result) -> float:
    """Sum over neurons of the mean energy of all reads (weighted by occurrences)."""
    total = 0.0
    for ss in result.samplesets:
        if len(ss.variables):
            weights = ss.record.num_occurrences
            total += float(ss.record.energy @ weights / weights.sum())
    return total


def test_quality_does_not_drop_versus_one_neuron_per_call():
    """Same reads (20), no warm start, both forward, on the tiny model's first layer (16 neurons of up to 17
    variables) at int4 and int2 with 2 seeds: the mean energy of the reads (the steady statistic) and the
    layer error of the best reads (noisier: 20 reads) are not worse with many neurons per call."""
    parallel = get_sampler("dwave-mock", num_reads=20)
    single = get_sampler("dwave-mock", num_reads=20, parallel=False)
    error, reads = {"parallel": 0.0, "single": 0.0}, {"parallel": 0.0, "single": 0.0}
    for bits in (4, 2):
        problem = digits_layer(bits)
        for seed in (0, 1):
            for name, sampler in (("parallel", parallel), ("single", single)):
                result = quantize_layer(problem, "qubo", sampler, name, seed=seed, warm_start=None)
                error[name] += result.error
                reads[name] += _read_mean(result)
    assert reads["parallel"] <= 1.03 * reads["single"], reads
    assert error["parallel"] <= 1.10 * error["single"], error


def test_each_neuron_is_decoded_from_its_own_chains():
    """Neurons over the same labels, each with its own optimum (a sign pattern), in one call: each neuron's
    samples come back from its own chains."""
    sampler = get_sampler("dwave-mock", topology_shape=[4], num_reads=10)
    child, found = sampler.child, sampler.cliques.get(6, 5)
    rng = np.random.default_rng(0)
    patterns = [[(i >> j) & 1 for j in range(6)] for i in (5, 10, 33, 62, 17)]
    bqms = [dimod.BinaryQuadraticModel({j: -1.0 if bit else 1.0 for j, bit in enumerate(row)},
                                       {(a, b): 0.05 * rng.normal() for a in range(6) for b in range(a + 1, 6)},
                                       0.0, "BINARY") for row in patterns]
    pieces = [embed_piece(i, bqm, found.chains(i, list(bqm.variables)), child.adjacency, child.properties)
              for i, bqm in enumerate(bqms)]
    sampler._seed_call(3)
    answer = submit_call(child, pieces, {"num_reads": 10}, None)
    for i, piece in enumerate(pieces):
        ss = neuron_sampleset(answer, piece, 0, len(pieces))
        assert [ss.first.sample[j] for j in range(6)] == patterns[i]
        assert ss.info["neurons_in_call"] == 5 and ss.info["num_qubits"] == found.qubits(i, 6)


def test_chain_strength_option_and_scale(monkeypatch):
    problem = digits_layer(4)
    sampler = get_sampler("dwave-mock", topology_shape=[6], num_reads=5)
    base = quantize_layer(problem, "qubo", sampler, "m", seed=0).info["qpu"]["neuron_chain_strength"]
    assert len(set(base)) > 1  # every neuron its own (neurons with other free variables differ)
    doubled = quantize_layer(problem, "qubo", sampler, "m", seed=0, chain_strength_scale=2.0)
    assert np.allclose(doubled.info["qpu"]["neuron_chain_strength"], 2 * np.asarray(base))
    fixed = quantize_layer(problem, "qubo", sampler, "m", seed=0, chain_strength=0.5)
    assert set(fixed.info["qpu"]["neuron_chain_strength"]) == {0.5}
    for bad in ({"chain_strength_scale": 0}, {"chain_strength": -1.0}, {"chain_break_method": "nope"}):
        with pytest.raises(InvalidArgumentError, match=next(iter(bad))):
            quantize_layer(problem, "qubo", sampler, "m", seed=0, **bad)
    ss = sampler.sample(problem.neuron_bqm(0), seed=1, num_reads=5, chain_strength_scale=2.0)
    assert ss.info["chain_strength"] == pytest.approx(2 * base[0])  # the one-neuron path takes the scale too


def test_empty_neurons_need_no_call():
    problem = digits_layer(4)
    free = problem.free.copy()
    free[3] = False
    trimmed = replace(problem, free=free)
    result = quantize_layer(trimmed, "qubo", get_sampler("dwave-mock", topology_shape=[6], num_reads=5), "m",
                            seed=0)
    assert result.info["qpu"]["neuron_call"][3] == -1 and sum(result.info["qpu"]["neurons_per_call"]) == 15
    assert isinstance(result.samplesets[3], dimod.SampleSet) and np.all(result.integers[3] == problem.base[3])


def test_neurons_above_the_largest_clique_take_the_layers_chain_and_solver_options(monkeypatch):
    """A decomposed neuron's sub-problem calls get the chain options (strength, scale, break method) and the
    solver options (``annealing_time``, ``label``...) given to the layer: only ``num_reads`` reached them."""
    problem = _second_layer(4)
    free = problem.free.copy()
    free[2:] = False  # two neurons of 11 variables, above P2's largest clique (10): decomposed on the QPU
    two = replace(problem, free=free)
    sampler = get_sampler("dwave-mock", topology_shape=[2], num_reads=5)
    calls = _Calls(sampler, monkeypatch)
    voted = []

    def vote(samples, chains):
        voted.append(len(chains))
        return majority_vote(samples, chains)

    result = quantize_layer(two, "qubo", sampler, "dwave-mock", seed=0, warm_start=None, chain_strength=0.5,
                            chain_strength_scale=3.0, chain_break_method=vote, annealing_time=50.0, label="mine")
    qpu = result.info["qpu"]
    assert qpu["calls"] == 0 and qpu["decomposed_neurons"] == [0, 1]
    assert len(calls.kwargs) == qpu["decomposed_calls"] == len(voted) >= 2
    assert all(kw["annealing_time"] == 50.0 and kw["label"] == "mine" and kw["num_reads"] == 5
               for kw in calls.kwargs)
    assert all(result.samplesets[i].info["chain_strength"] == pytest.approx(1.5) for i in (0, 1))


def test_the_chain_break_fraction_counts_every_read_of_a_histogram_answer(monkeypatch):
    """A QPU's histogram answer holds a repeated read once with its ``num_occurrences``: ``info``'s chain-break
    fraction is over the reads, on the one-neuron path and the whole-layer path (it averaged the records, so
    weak chains, whose few distinct broken reads sit beside many repeats of an intact one, looked broken less
    often than they were)."""
    rng = np.random.default_rng(0)
    bqm = dimod.BinaryQuadraticModel({i: rng.normal() for i in range(12)},
                                     {(i, j): rng.normal() for i in range(12) for j in range(i + 1, 12)}, 0.0, "SPIN")
    sampler = get_sampler("dwave-mock", topology_shape=[6], num_reads=200, parallel=False)
    child = sampler.child
    real = child.sample
    monkeypatch.setattr(child, "sample", lambda problem, **kw: real(problem, **kw).aggregate())  # a histogram
    one = sampler.sample(bqm, seed=1, chain_strength=0.5)
    piece = embed_piece(0, bqm, sampler.cliques.get(12, 1).chains(0, list(bqm.variables)), child.adjacency,
                        child.properties, 0.5)
    sampler._seed_call(1)
    layer = neuron_sampleset(submit_call(child, [piece], {"num_reads": 200}, None), piece, 0, 1)
    for ss in (one, layer):
        reads = ss.record.num_occurrences
        assert len(ss) < reads.sum() == 200  # repeated reads, each record once
        per_read = np.average(ss.record.chain_break_fraction, weights=reads)
        assert ss.info["chain_break_fraction"] == pytest.approx(per_read)
        assert not np.isclose(per_read, ss.record.chain_break_fraction.mean())  # the records' mean differs


def test_weighted_random_chain_breaks_repeat_with_the_seed():
    """dwave-system's ``weighted_random`` draws from numpy's global generator: with chains broken (a weak
    chain strength) two runs of the same seed on the mock gave other answers, on both paths."""
    problem = digits_layer(3)
    sampler = get_sampler("dwave-mock", topology_shape=[6], num_reads=10)
    options = {"chain_break_method": "weighted_random", "chain_strength": 0.05}
    runs = []
    for draw in (1, 2):
        np.random.seed(draw)  # what dwave-system's rule draws from: the answer must not depend on it
        runs.append(sampler.sample_layer(problem, seed=7, **options))
    assert min(runs[0].info["qpu"]["neuron_chain_break_fraction"]) > 0.1
    assert np.array_equal(runs[0].assignments, runs[1].assignments)
    assert runs[0].energies.tolist() == runs[1].energies.tolist()
    one = []
    for draw in (1, 2):
        np.random.seed(draw)
        one.append(sampler.sample(problem.neuron_bqm(0), seed=3, num_reads=10, **options))
    assert one[0].info["chain_break_fraction"] > 0.1
    assert one[0].record.sample.tolist() == one[1].record.sample.tolist()
    other = sampler.sample_layer(problem, seed=8, **options)  # the draws follow the seed
    assert not np.array_equal(other.assignments, runs[0].assignments)


def test_a_chain_break_method_that_drops_reads_is_refused(monkeypatch):
    """``discard`` drops every read with a broken chain: with few reads a neuron had none left and the layer
    failed in ``np.argmin`` of an empty sequence. It is refused before any call, on both paths; a function of
    the user's that drops every read fails naming chain_break_method and the neuron."""
    problem = digits_layer(3)
    sampler = get_sampler("dwave-mock", topology_shape=[6], num_reads=1)
    calls = _Calls(sampler, monkeypatch)
    for method in (discard, "discard"):
        with pytest.raises(InvalidArgumentError, match="chain_break_method=.*use majority_vote"):
            sampler.sample_layer(problem, seed=1, chain_break_method=method)
        with pytest.raises(InvalidArgumentError, match="chain_break_method=.*use majority_vote"):
            sampler.sample(problem.neuron_bqm(0), chain_break_method=method)
    assert not calls.kwargs  # refused before any QPU call

    def drop_all(samples, chains):
        unembedded, rows = majority_vote(samples, chains)
        return unembedded[:0], rows[:0]

    with pytest.raises(InvalidArgumentError, match=r"chain_break_method=.*left neuron \d+ without a read"):
        sampler.sample_layer(problem, seed=1, chain_break_method=drop_all)


def test_the_decomposition_options_reach_the_neurons_it_decomposes(monkeypatch):
    """``capacity``, ``patience`` and ``max_calls`` (``run --sampler-option capacity=N``, as the README has it) were
    taken by the option check and then dropped by the whole-layer path with an 'unknown kwarg' warning: the
    neurons above the largest clique took up to 100 sub-problem calls each whatever ``max_calls`` said, and a
    ``capacity`` below the clique decomposed nothing. The plan decomposes (lists, does not count) the neurons
    above a given capacity as the run does; one above the largest clique is refused before any call."""
    problem = _second_layer(4)
    free = problem.free.copy()
    free[2:] = False  # two neurons of 11 variables, above P2's largest clique (10)
    two = replace(problem, free=free)
    sampler = wrap_backend("dwave-mock", get_sampler("dwave-mock", topology_shape=[2], num_reads=5), 0, 0)
    calls = _Calls(qpu_planner(sampler), monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no option dropped
        result = quantize_layer(two, "qubo", sampler, "dwave-mock", seed=0, warm_start=None, max_calls=2,
                                patience=5, capacity=4)
    qpu = result.info["qpu"]
    assert qpu["decomposed_neurons"] == [0, 1] and len(calls.kwargs) == qpu["decomposed_calls"] == 4  # 2 each
    assert all(result.samplesets[i].info["capacity"] == 4 for i in (0, 1))
    assert all(bqm.num_variables <= 4 for bqm in calls.bqms)  # sub-problems of 4 (P2's chains: one qubit)
    qpu_sampler = qpu_planner(sampler)
    first = digits_layer(4)  # 16 neurons of up to 17 variables: in one call on P16, decomposed under capacity=12
    plan = get_sampler("dwave-mock", num_reads=5).plan([first], capacity=12).layers[0]
    over = [i for i in range(first.num_neurons) if first.free[i].sum() > 12]
    assert over and list(plan.decomposed) == over and sum(len(c.neurons) for c in plan.calls) == 16 - len(over)
    for ask in (lambda: qpu_sampler.check_ranges(capacity=11), lambda: qpu_sampler.plan([two], capacity=11),
                lambda: sampler.sample_layer(two, capacity=11)):
        with pytest.raises(InvalidArgumentError, match="capacity=11 is above the 10 variables of the largest clique"):
            ask()
    assert len(calls.kwargs) == 4  # refused before any call


def test_a_decomposed_neurons_failed_sub_call_keeps_the_qpu_time_of_those_before(monkeypatch):
    """Two neurons decomposed in 2 sub-calls each; the fourth call (the second neuron's second) fails once. The
    failed try's first three calls were answered, but the retry counted only the first neuron's two: the
    decomposition dropped its own answered sub-calls' QPU time when a later one failed."""
    from dwave.cloud.exceptions import SolverFailureError

    from qannealq.backends.retry import RetryComposite

    problem = _second_layer(4)
    free = problem.free.copy()
    free[2:] = False
    two = replace(problem, free=free)
    sampler = get_sampler("dwave-mock", topology_shape=[2], num_reads=5)
    real, times = sampler.child.sample, []

    def sample(bqm, **kwargs):
        if len(times) == 3:
            times.append(None)  # the fourth call fails, once
            raise SolverFailureError("solver failed")
        answer = real(bqm, **kwargs)
        times.append(answer.info["timing"]["qpu_access_time"])
        return answer

    monkeypatch.setattr(sampler.child, "sample", sample)
    flaky = RetryComposite(sampler, retries=1, backend="dwave-mock", backoff=0.0)
    result = quantize_layer(two, "qubo", flaky, "dwave-mock", seed=0, warm_start=None, max_calls=2, patience=5,
                            capacity=4)
    assert result.info["retries"] == 1 and times[3] is None and len(times) == 8
    assert result.info["timing"]["failed_qpu_access_time"] == pytest.approx(sum(times[:3]))  # was sum(times[:2])
    assert result.info["qpu"]["failed_qpu_access_time_us"] == pytest.approx(sum(times[:3]))
