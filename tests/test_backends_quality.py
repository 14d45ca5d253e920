"""Backends on real neuron BQMs of the tiny digits model (16 -> 16 -> 10, 4x4 inputs)."""

from __future__ import annotations

import sys
from unittest import mock

import dimod
import numpy as np
import pytest
import torch

from backend_fixtures import digits_layer, digits_neurons, mock_qpu, optimum
from qannealq.backends import get_sampler
from qannealq.errors import BackendUnavailableError
from qannealq.pipeline import quantize_model
from qannealq.solve import quantize_layer

TIMING_KEYS = {"preprocessing_ns", "sampling_ns", "postprocessing_ns"}


def _best(sampleset: dimod.SampleSet) -> float:
    return float(sampleset.record.energy.min())


def _assert_optimal(sampleset: dimod.SampleSet, bqm: dimod.BinaryQuadraticModel) -> None:
    best = optimum(bqm)
    assert _best(sampleset) == pytest.approx(best, rel=1e-9, abs=1e-9)


def test_exact_and_gurobi_agree_on_every_size():
    pytest.importorskip("gurobipy")
    exact, gurobi = get_sampler("exact"), get_sampler("gurobi")
    bqms = digits_neurons(17, 3, min_variables=17, bits=(4,)) + digits_neurons(12, 3)
    assert max(b.num_variables for b in bqms) == 17
    for bqm in bqms:
        ss_exact, ss_gurobi = exact.sample(bqm), gurobi.sample(bqm, seed=1)
        assert _best(ss_gurobi) == pytest.approx(_best(ss_exact), rel=1e-9, abs=1e-12)
        assert ss_gurobi.info["proved_optimal"]
        assert np.allclose(bqm.energies(ss_gurobi), ss_gurobi.record.energy)


def test_gurobi_proves_the_optimum_of_a_bqm_of_tiny_coefficients():
    """Gurobi's tolerances do not scale with the objective: on these BQMs scaled by 1e-6 (an int8 grid's steps
    squared are of that order) it returned energies 7-71 % of the scale above the optimum, "proved" optimal."""
    pytest.importorskip("gurobipy")
    import itertools

    gurobi = get_sampler("gurobi")
    for trial in (4, 7, 32, 38):
        rng = np.random.default_rng(trial)
        m = int(rng.integers(6, 13))
        bqm = dimod.BinaryQuadraticModel("BINARY")
        for v in range(m):
            bqm.add_linear(v, rng.normal())
        for u, v in itertools.combinations(range(m), 2):
            if rng.random() < .6:
                bqm.add_quadratic(u, v, rng.normal())
        bqm.scale(1e-6)
        bqm.offset = 2e-3
        ss = gurobi.sample(bqm, seed=1)
        best = optimum(bqm)
        assert ss.info["proved_optimal"]
        assert _best(ss) == pytest.approx(best, rel=0, abs=1e-15)
        assert ss.info["objective_bound"] == pytest.approx(best, rel=0, abs=1e-12)


def test_gurobi_warm_start_and_pool():
    pytest.importorskip("gurobipy")
    bqm = digits_neurons(10, 1)[0]
    best = dimod.ExactSolver().sample(bqm).first.sample
    ss = get_sampler("gurobi").sample(bqm, num_reads=3, initial_states=best, seed=2)
    assert 1 <= len(ss) <= 3
    _assert_optimal(ss, bqm)


def test_gurobi_refuses_more_reads_than_its_pool_holds_before_any_work():
    """``num_reads`` sets Gurobi's PoolSolutions (at most 2e9): 2**31 passed the option check and failed at the
    first neuron with an OverflowError naming no option."""
    pytest.importorskip("gurobipy")
    from qannealq.errors import InvalidArgumentError

    sampler = get_sampler("gurobi")
    with pytest.raises(InvalidArgumentError, match="num_reads=2147483648 .* at most"):
        sampler.check_options({"num_reads": 2 ** 31})
    bqm = dimod.BinaryQuadraticModel({0: 1.0, 1: -2.0}, {(0, 1): 1.5}, 0.0, "BINARY")
    with pytest.raises(InvalidArgumentError, match="num_reads"):
        sampler.sample(bqm, num_reads=2 ** 31)
    assert sampler.sample(bqm, num_reads=2_000_000_000).first.energy == -2.0


@pytest.mark.parametrize("name", ["gurobi", "layer-sa", "sa"])
def test_a_warm_start_is_read_as_dwave_samplers_reads_it(name):
    """0/1 values are bits and -1/+1 spins whatever the BQM's vartype, as dwave-samplers reads them; anything
    else is refused. Gurobi dropped a start holding a 2 (or a -1, for a BINARY BQM) silently; layer-sa refused
    spins for a BINARY BQM that sa and tabu take."""
    if name == "gurobi":
        pytest.importorskip("gurobipy")
    from qannealq.errors import InvalidArgumentError
    bqm = digits_neurons(10, 1)[0]
    labels = list(bqm.variables)
    bits = np.zeros((1, len(labels)), dtype=int)
    bits[0, ::2] = 1
    options = {"num_sweeps": 0} if name == "sa" else {"num_reads": 1} if name == "layer-sa" else {}
    results = [get_sampler(name).sample(form, initial_states=(states, labels), seed=2, **options).first
               for form in (bqm, bqm.change_vartype(dimod.SPIN, inplace=False)) for states in (bits, 2 * bits - 1)]
    assert len({r.energy for r in results[:2]}) == 1 and len({r.energy for r in results[2:]}) == 1
    if name == "sa":  # no sweeps: the start itself, the convention followed
        assert results[0].sample == dict(zip(labels, bits[0]))
        return
    bad = bits.copy()
    bad[0, 0] = 2
    with pytest.raises(InvalidArgumentError, match=r"initial_states must hold 0/1 \(binary\) or -1/\+1 \(spin\)"):
        get_sampler(name).sample(bqm, initial_states=(bad, labels), seed=2)


@pytest.mark.parametrize("name, options", [
    ("sa", {"num_reads": 20}),
    ("tabu", {"num_reads": 10, "timeout": 10}),
    ("steepest", {"num_reads": 200}),
    ("dwave-mock", {"num_reads": 1000}),
])
def test_heuristics_reach_the_optimum_up_to_12_variables(name, options):
    if name == "dwave-mock":
        pytest.importorskip("dwave.system")
    sampler = mock_qpu() if name == "dwave-mock" else get_sampler(name)
    bqms = digits_neurons(12, 4, min_variables=5)
    assert len(bqms) == 4 and max(b.num_variables for b in bqms) >= 9
    for k, bqm in enumerate(bqms):
        ss = sampler.sample(bqm, seed=k, **options)
        _assert_optimal(ss, bqm)
        assert np.allclose(bqm.energies(ss), ss.record.energy)
        assert ss.info["seed"] == k
        assert TIMING_KEYS <= set(ss.info["timing"])


def test_qaoa_samples_are_valid_with_correct_energies():
    pytest.importorskip("qiskit_optimization")
    sampler = get_sampler("qaoa", maxiter=15, shots=512)
    for bqm in digits_neurons(8, 2, min_variables=4):
        ss = sampler.sample(bqm, seed=5)
        assert set(ss.variables) == set(bqm.variables)
        assert set(np.unique(ss.record.sample)) <= {0, 1}
        assert np.allclose(bqm.energies(ss), ss.record.energy)
        assert ss.record.num_occurrences.sum() == pytest.approx(512, abs=len(ss))
        assert ss.info["optimizer_evals"] > 0 and ss.info["optimizer_time_s"] > 0
        assert ss.info["seed"] == 5 and TIMING_KEYS <= set(ss.info["timing"])


def test_qaoa_on_a_bqm_without_biases_returns_the_offset():
    """Every assignment of a BQM whose biases are all zero has the offset's energy, and QAOA's cost operator is
    the identity: qiskit refused the initial point (2 angles for a circuit with 1). A valid sample of the BQM's
    vartype comes back, every shot counted, with the info keys of a normal call."""
    pytest.importorskip("qiskit_optimization")
    sampler = get_sampler("qaoa", maxiter=5, shots=128)
    normal = sampler.sample(dimod.BinaryQuadraticModel({"a": 1.0, "b": -1.0}, {("a", "b"): 0.5}, 0.0, "BINARY"))
    for bqm in (dimod.BinaryQuadraticModel({"a": 0.0}, {}, 1.0, "BINARY"),
                dimod.BinaryQuadraticModel({0: 0.0, 1: 0.0, 2: 0.0}, {(0, 1): 0.0}, -2.0, "SPIN")):
        ss = sampler.sample(bqm, seed=3)
        assert ss.vartype is bqm.vartype and set(ss.variables) == set(bqm.variables)
        assert set(np.unique(ss.record.sample)) <= set(bqm.vartype.value)
        assert np.allclose(ss.record.energy, bqm.offset) and np.allclose(bqm.energies(ss), ss.record.energy)
        assert ss.record.num_occurrences.sum() == 128 and ss.info["qubits"] == bqm.num_variables
        assert set(ss.info) == set(normal.info) and TIMING_KEYS <= set(ss.info["timing"]) and ss.info["seed"] == 3


def test_qaoa_is_reproducible_with_a_seed():
    pytest.importorskip("qiskit_optimization")
    sampler = get_sampler("qaoa", maxiter=5, shots=128)
    bqm = digits_neurons(6, 1, min_variables=4)[0]
    a, b = sampler.sample(bqm, seed=9), sampler.sample(bqm, seed=9)
    assert np.array_equal(a.record.sample, b.record.sample)


@pytest.mark.parametrize("optimizer", ["spsa", "nelder-mead"])
def test_qaoa_is_reproducible_with_a_seed_under_every_optimizer(optimizer):
    """SPSA draws its perturbations from qiskit-optimization's global generator: it was not seeded, and two calls
    with seed 3 fitted other angles and measured other counts. The caller's global seed is left as it was."""
    pytest.importorskip("qiskit_optimization")
    from qiskit_optimization.utils import algorithm_globals

    sampler = get_sampler("qaoa", optimizer=optimizer, maxiter=2, shots=64)
    bqm = digits_neurons(6, 1, min_variables=4)[0]
    a, b = sampler.sample(bqm, seed=3), sampler.sample(bqm, seed=3)
    assert a.info["optimal_parameters"] == b.info["optimal_parameters"]
    assert np.array_equal(a.record.sample, b.record.sample)
    assert np.array_equal(a.record.num_occurrences, b.record.num_occurrences)
    assert algorithm_globals.random_seed is None


def test_qaoa_with_spsa_gives_the_serial_answer_in_threads():
    """SPSA draws from qiskit-optimization's one global generator, which each call seeded for its solve: calls in
    threads (``--executor threads:N``, a ThreadPoolExecutor) reseeded it under each other, and 4 calls with seeds
    10-13 fitted other angles than the same calls one after the other (the executor must not change a sample)."""
    pytest.importorskip("qiskit_optimization")
    from concurrent.futures import ThreadPoolExecutor

    sampler = get_sampler("qaoa", optimizer="spsa", maxiter=3, shots=64)
    bqms = digits_neurons(6, 4, min_variables=4)
    serial = [sampler.sample(bqm, seed=10 + k).info["optimal_parameters"] for k, bqm in enumerate(bqms)]
    with ThreadPoolExecutor(len(bqms)) as pool:
        threaded = list(pool.map(lambda k: sampler.sample(bqms[k], seed=10 + k).info["optimal_parameters"],
                                 range(len(bqms))))
    assert threaded == serial


def test_steepest_warm_started_at_the_optimum_stays_there():
    bqm = digits_neurons(12, 1)[0]
    best = dimod.ExactSolver().sample(bqm).first.sample
    ss = get_sampler("steepest").sample(bqm, initial_states=best, num_reads=1, seed=0)
    _assert_optimal(ss, bqm)


def test_dwave_mock_keeps_chain_breaks_and_qpu_timing():
    pytest.importorskip("dwave.system")
    sampler = mock_qpu()
    bqm = digits_neurons(17, 1, min_variables=17, bits=(4,))[0]
    ss = sampler.sample(bqm, seed=1, num_reads=10)
    assert "chain_break_fraction" in ss.record.dtype.names
    assert 0.0 <= ss.info["chain_break_fraction"] <= 1.0
    assert ss.info["max_chain_length"] >= 2 and ss.info["num_qubits"] > 17
    assert TIMING_KEYS <= set(ss.info["timing"]) and "qpu_access_time" in ss.info["timing"]
    assert np.allclose(bqm.energies(ss), ss.record.energy)
    # the clique embedding of a size is found once and reused for every neuron of that size
    first = sampler.embedding(17)
    sampler.sample(digits_neurons(17, 2, min_variables=17, bits=(4,))[1], seed=2, num_reads=2)
    assert sampler.embedding(17) is first


@pytest.mark.parametrize("name", ["tabu", "gurobi", "dwave-mock"])
def test_solve_loop_quantizes_a_whole_layer(name):
    if name == "gurobi":
        pytest.importorskip("gurobipy")
    problem = digits_layer(1)
    sampler = mock_qpu() if name == "dwave-mock" else get_sampler(name)
    kwargs = {"num_reads": 1000} if name == "dwave-mock" else {}
    exact = quantize_layer(problem, "qubo", get_sampler("exact"), "exact")
    result = quantize_layer(problem, "qubo", sampler, name, seed=3, **kwargs)
    assert result.seed == 3 and len(result.samplesets) == problem.num_neurons
    assert np.all(result.errors >= exact.errors - 1e-9)  # exact is the optimum of every neuron
    if name == "gurobi":
        assert result.error == pytest.approx(exact.error, rel=1e-9)
    elif name == "tabu":  # warm-started: never worse than its initial state
        assert np.all(result.errors <= result.warm_start_errors + 1e-9)
    assert result.error <= 1.1 * exact.error  # int1 neurons have up to 17 variables here


def test_qaoa_falls_back_to_the_statevector_sampler_without_aer(monkeypatch):
    pytest.importorskip("qiskit_optimization")
    monkeypatch.setitem(sys.modules, "qiskit_aer", None)
    bqm = digits_neurons(5, 1, min_variables=3)[0]
    ss = get_sampler("qaoa", maxiter=5, shots=128).sample(bqm, seed=1)
    assert ss.info["simulator"].endswith("StatevectorSampler")
    assert np.allclose(bqm.energies(ss), ss.record.energy)
    with pytest.raises(ImportError, match=r"pip install 'qannealq\[qiskit\]'"):
        get_sampler("qaoa", simulator="aer")


def test_qaoa_on_the_statevector_sampler_warns_once_before_a_long_call(monkeypatch, caplog):
    """``StatevectorSampler`` takes ~25 us per amplitude and evaluation (2.8 s an evaluation at 17 qubits): at the
    default ``max_qubits=20`` a call ran for about 20 minutes without a word. Above ``STATEVECTOR_QUIET`` qubits
    (lowered here to keep the test short) the sampler warns once, with the estimate; Aer and small calls do not."""
    pytest.importorskip("qiskit_optimization")
    from qannealq.backends import qiskit as qaoa_module

    monkeypatch.setattr(qaoa_module, "STATEVECTOR_QUIET", 4, raising=False)
    small = dimod.BinaryQuadraticModel({"a": 1.0, "b": -1.0, "c": 0.5}, {("a", "b"): 0.5}, 0.0, "BINARY")
    large = digits_neurons(6, 1, min_variables=5)[0]
    assert small.num_variables <= 4 < large.num_variables
    caplog.set_level("WARNING", logger=qaoa_module.__name__)
    statevector = get_sampler("qaoa", simulator="statevector", maxiter=5, shots=32)
    statevector.sample(small, seed=1)
    assert not caplog.records
    for seed in (1, 2):
        statevector.sample(large, seed=seed)
    [record] = caplog.records
    message = record.getMessage()
    assert f"a call of {large.num_variables} qubits on qiskit's StatevectorSampler (simulator='statevector')" in message
    assert "x 6 circuit evaluations" in message and "use qiskit-aer" in message and "max_qubits" in message
    caplog.clear()
    if qaoa_module._aer() is not None:
        get_sampler("qaoa", simulator="aer", maxiter=5, shots=32).sample(large, seed=1)
        assert not caplog.records
    monkeypatch.setitem(sys.modules, "qiskit_aer", None)
    get_sampler("qaoa", maxiter=5, shots=32).sample(large, seed=1)
    assert "(simulator='auto', qiskit-aer missing)" in caplog.records[0].getMessage()


def test_qaoa_refuses_simulator_aer_without_aer_when_built(monkeypatch):
    """``simulator='aer'`` without qiskit-aer was accepted by the constructor and refused only by the first
    ``sample``: after a run's training and calibration, or a comparison's reference optima. It is refused when
    the sampler is built, naming the option and the install command."""
    pytest.importorskip("qiskit_optimization")
    from qannealq.backends.qiskit import QAOASampler

    monkeypatch.setitem(sys.modules, "qiskit_aer", None)
    with pytest.raises(BackendUnavailableError, match=r"simulator='aer' needs qiskit-aer.*pip install"):
        QAOASampler(simulator="aer")
    assert QAOASampler(simulator="auto").simulator == "auto"  # falls back to the statevector sampler


def test_qaoa_records_its_circuit_depth_and_qubits():
    pytest.importorskip("qiskit_optimization")
    bqm = digits_neurons(6, count=1, min_variables=4)[0]
    one = get_sampler("qaoa", maxiter=6, reps=1).sample(bqm, seed=2)
    two = get_sampler("qaoa", maxiter=6, reps=2).sample(bqm, seed=2)
    assert one.info["qubits"] == two.info["qubits"] == bqm.num_variables
    assert 0 < one.info["circuit_depth"] < two.info["circuit_depth"]  # one more QAOA layer, a deeper circuit
    assert one.info["optimizer_evals"] <= 6 and two.info["optimizer_evals"] <= 6  # as given, not raised


def test_qaoa_refuses_fewer_cobyla_evaluations_than_its_angles_need():
    """COBYLA needs ``2 reps + 2`` evaluations to start: scipy raised ``maxiter=3`` at ``reps=2`` to 6 with a
    warning, and the run recorded 6 evaluations for 3 asked."""
    pytest.importorskip("qiskit_optimization")
    from qannealq.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match=r"maxiter=3 is below COBYLA's 6 evaluations for reps=2 .*"
                                                   r"give maxiter >= 6"):
        get_sampler("qaoa", maxiter=3, reps=2)
    sampler = get_sampler("qaoa", maxiter=6)
    with pytest.raises(InvalidArgumentError, match="maxiter=6 is below COBYLA's 8 evaluations for reps=3"):
        sampler.sample(digits_neurons(6, count=1, min_variables=4)[0], reps=3)
    assert get_sampler("qaoa", maxiter=3, reps=2, optimizer="spsa").maxiter == 3  # SPSA has no such floor


@pytest.mark.parametrize("name", ["sa", "tabu", "steepest"])
def test_initial_states_generator_none_reads_the_given_states(name):
    """``initial_states_generator='none'`` starts only from the given states, and the solve loop gives one warm row
    a neuron: ``tabu`` and ``steepest`` asked dimod for their default 10 reads, and ``qannealq run --backend steepest
    --sampler-option initial_states_generator=none`` ended after training in dimod's bare "ValueError: insufficient
    number of initial states given". Without ``num_reads`` they make one read per given state (as ``sa`` did); a
    ``num_reads`` above the states given (dimod's error in all three) is refused naming both options."""
    from qannealq.errors import InvalidArgumentError

    problem = digits_layer(2)
    options = {"timeout": 5} if name == "tabu" else {}
    result = quantize_layer(problem, "qubo", get_sampler(name), name, seed=1, initial_states_generator="none",
                            **options)
    assert all(len(ss) == 1 for ss in result.samplesets)
    if name != "sa":  # a descent from the warm start (sa's anneal starts hot and may end above it)
        assert np.all(result.errors <= result.warm_start_errors + 1e-9)
    bqm = problem.neuron_bqm(0)
    labels = list(bqm.variables)
    rows = np.array([[0] * len(labels), [1] * len(labels)], dtype=np.int8)
    ss = get_sampler(name).sample(bqm, initial_states=(rows, labels), initial_states_generator="none", seed=2,
                                  **options)
    assert ss.record.num_occurrences.sum() == 2
    with pytest.raises(InvalidArgumentError, match=r"initial_states_generator='none'.*num_reads=3.*2 initial_states"):
        get_sampler(name).sample(bqm, initial_states=(rows, labels), initial_states_generator="none", num_reads=3)
    with pytest.raises(InvalidArgumentError, match=r"initial_states_generator='none'.*no initial_states"):
        get_sampler(name).sample(bqm, initial_states_generator="none")
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))  # refused before the calibration pass, as run refuses it
    with pytest.raises(InvalidArgumentError, match=r"^quantize_model keyword initial_states_generator='none'.*no "
                       "initial_states"), mock.patch("qannealq.pipeline.collect_stats", side_effect=AssertionError):
        quantize_model(model, torch.zeros(8, 4), 2, "qubo", name, warm_start="none", initial_states_generator="none")


@pytest.mark.parametrize("name", ["sa", "tabu", "steepest"])
def test_a_warm_start_of_other_values_than_bits_or_spins_is_refused_naming_initial_states(name):
    """A row holding a 2, a 0.5, or -1 beside 0 ended in dimod's "given samples_like is of an unknown vartype",
    which names neither the argument nor what it takes (``gurobi`` named both); bits and spins still pass."""
    from qannealq.errors import InvalidArgumentError

    bqm = dimod.BinaryQuadraticModel({0: 1.0, 1: -1.0, 2: 0.5}, {(0, 1): -2.0}, 0.0, "BINARY")
    sampler = get_sampler(name)
    for row in ([0, 1, 2], [0.5, 1, 0], [-1, 0, 1]):
        with pytest.raises(InvalidArgumentError, match=r"initial_states must hold 0/1 \(binary\) or -1/\+1 \(spin\)"):
            sampler.sample(bqm, initial_states=[row], num_reads=1, seed=0)
    for row in ([0, 1, 1], [-1, 1, 1]):
        assert sampler.sample(bqm, initial_states=[row], num_reads=1, seed=0).first.energy == pytest.approx(-2.0)


def test_tabu_takes_a_tenure_above_a_neurons_size_as_its_largest():
    """A given ``tenure`` must lie in ``0..m-1`` for dwave-samplers, and the neurons of a layer differ in ``m``:
    ``--sampler-option tenure=40`` ended the run in its ``ValueError`` after training. It is capped per BQM."""
    pytest.importorskip("dwave.samplers")
    bqms = digits_neurons(6, count=2)
    sampler = get_sampler("tabu", timeout=5, num_reads=4)
    for bqm in bqms:
        _assert_optimal(sampler.sample(bqm, seed=3, tenure=40), bqm)
        _assert_optimal(sampler.sample(bqm, seed=3, tenure=bqm.num_variables - 1), bqm)
    from dwave.samplers import TabuSampler

    with pytest.raises(ValueError, match="tenure"):  # dwave-samplers' range, which the cap keeps
        TabuSampler().sample(bqms[0], seed=3, tenure=bqms[0].num_variables, timeout=5)


def test_tabu_gives_dwave_samplers_a_lower_bound_z_of_0_unless_one_is_given():
    """dwave-samplers' ``lower_bound_z`` 500000 held each search of a 17-variable neuron to ~3 restarts per 20 ms
    read, where the coefficients alone (``10000 m``, ``2500 m``) give ~40: the default here is 0 (the numbers:
    :class:`backends.classical.Tabu`); a given value still reaches dwave-samplers."""
    pytest.importorskip("dwave.samplers")
    from dwave.samplers import TabuSampler

    bqm = digits_neurons(6, count=1)[0]
    sampler = get_sampler("tabu", timeout=5, num_reads=2)
    assert "lower_bound_z=0" in repr(sampler)
    with mock.patch.object(TabuSampler, "sample", autospec=True, side_effect=TabuSampler.sample) as sample:
        _assert_optimal(sampler.sample(bqm, seed=3), bqm)
        sampler.sample(bqm, seed=3, lower_bound_z=500000)
    assert [c.kwargs["lower_bound_z"] for c in sample.call_args_list] == [0, 500000]


def test_ctrl_c_during_a_gurobi_solve_stops_the_run():
    """Gurobi catches SIGINT, ends its solve and returns: ``export`` went on to the next neuron and finished,
    the user's Ctrl-C lost. The interrupted solve now raises ``KeyboardInterrupt``, as Python would have."""
    pytest.importorskip("gurobipy")
    import os
    import signal
    import threading

    from qannealq.experiment import formulate, prepare

    bqm = formulate(prepare(dataset="digits"), 2)[0].neuron_bqm(0)  # 61 variables: not proved in seconds
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            get_sampler("gurobi").sample(bqm, time_limit=20, seed=1)
    finally:
        timer.cancel()


def test_sigterm_stops_a_gurobi_solve_at_once():
    """Python runs signal handlers between its own instructions: a SIGTERM (which Gurobi does not catch as it
    does Ctrl-C) waited for the solve's end, up to its time limit (24.7 s of a 30 s proof in ``export``).
    Gurobi's callback lets the command line's handler run, and its exception end the solve."""
    pytest.importorskip("gurobipy")
    import os
    import signal
    import threading
    import time

    import qannealq.cli
    from qannealq.experiment import formulate, prepare

    bqm = formulate(prepare(dataset="digits"), 2)[0].neuron_bqm(0)  # 61 variables: not proved in seconds
    previous = qannealq.cli._on_sigterm()
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):  # Gurobi's INTERRUPTED, as after Ctrl-C; the command says SIGTERM
            get_sampler("gurobi").sample(bqm, time_limit=20, seed=1)
    finally:
        timer.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert time.monotonic() - start < 10 and qannealq.cli._TERMINATED  # not the 20 s of the limit


def test_gurobi_mip_gap_under_a_time_limit_is_the_gap_between_its_energy_and_bound():
    """``mip_gap`` was Gurobi's own, relative to the objective without the BQM's offset: a least-squares BQM
    stopped by its time limit at energy 155.1 with a bound of -17.3 reported a gap of 0.119 where it is 1.11."""
    pytest.importorskip("gurobipy")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(80, 60))
    b = a @ rng.uniform(0, 1, 60)  # a target between the bit vectors' images: a hard closest-vector problem
    lin = (a * a).sum(axis=0) - 2 * a.T @ b  # ||A x - b||^2 over bits x: the offset ||b||^2 dominates the optimum
    gram = 2 * np.triu(a.T @ a, 1)
    bqm = dimod.BinaryQuadraticModel(lin, gram, float(b @ b), "BINARY")
    ss = get_sampler("gurobi").sample(bqm, seed=0, time_limit=0.3)
    info, energy = ss.info, float(ss.first.energy)
    assert not info["proved_optimal"] and info["objective_bound"] < energy
    assert info["mip_gap"] == pytest.approx((energy - info["objective_bound"]) / abs(energy), rel=1e-12)
