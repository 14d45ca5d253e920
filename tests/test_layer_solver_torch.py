"""``layer-sa``'s torch path (``device="torch-cpu"`` here; CUDA where present): optimality on small neurons,
safety on medium ones, exact energies, determinism, fixed coordinates, and the choice of device."""

from __future__ import annotations

import time
import unittest

import dimod
import dimod.testing
import numpy as np
import pytest
import torch

pytest.importorskip("numba")  # before the imports below: layer_sa loads the numba kernel

from qannealq import gptq_restricted  # noqa: E402
from qannealq.backends import get_sampler  # noqa: E402
from qannealq.backends._layer_dense import DenseQubos  # noqa: E402
from qannealq.backends._layer_schedule import Clock  # noqa: E402
from qannealq.backends.layer_sa import LayerSASampler, _Run, make_run, resolve_device  # noqa: E402
from qannealq.errors import BackendUnavailableError, InvalidArgumentError  # noqa: E402
from qannealq.formulation import LayerProblem  # noqa: E402
from helpers import check_layer_energies as _check_energies, layer_problem as _problem  # noqa: E402
from helpers import smooth_layer  # noqa: E402

FAST = {"num_reads": 6, "num_sweeps": 12}  # medium problems: the default effort is slow in torch on a CPU


def _optimum(problem) -> np.ndarray:
    exact = get_sampler("exact")
    return np.array([exact.sample(problem.neuron_bqm(i)).first.energy for i in range(problem.num_neurons)])


@pytest.mark.parametrize("bits", [2, 4])
def test_reaches_exact_optimum_on_small_neurons(bits):
    layer, problem = _problem(bits, 14, 12, bits)
    sample = LayerSASampler(device="torch-cpu").sample_layer(problem, seed=1)
    assert sample.info["device"] == "torch-cpu"
    _check_energies(layer, problem, sample)
    np.testing.assert_allclose(sample.energies, _optimum(problem), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("bits", [2, 4])
def test_medium_neurons_never_worse_than_warm_start(bits):
    layer, problem = _problem(10 + bits, 90, 10, bits, samples=400)
    warm = problem.encode(gptq_restricted(problem))
    sample = LayerSASampler(device="torch-cpu", **FAST).sample_layer(problem, initial_states=warm, seed=3)
    _check_energies(layer, problem, sample)
    warm_e = problem.qubo_energies(warm)
    assert np.all(sample.energies <= warm_e + 1e-15)
    assert sample.energies.sum() < warm_e.sum()
    numba = LayerSASampler(device="cpu", **FAST).sample_layer(problem, initial_states=warm, seed=3)
    # same quality, other random numbers: over six seeds at this effort both average within 1% of each other,
    # one seed's total spreads by ~±4%
    assert sample.energies.sum() <= numba.energies.sum() * 1.08


def test_same_seed_same_result_other_seed_differs():
    _, problem = _problem(7, 60, 12, 3)
    hot = LayerSASampler(device="torch-cpu", hot_acceptance=0.3, cold_acceptance=0.2, num_reads=4,
                         num_sweeps=4, polish_sweeps=0, warm_start_beam=0)  # GPTQ's start, as in the numba test
    a, b = (hot.sample_layer(problem, seed=5) for _ in range(2))
    np.testing.assert_array_equal(a.assignments, b.assignments)
    assert a.info["seed"] == 5 and a.info["device"] == "torch-cpu"
    c = hot.sample_layer(problem, seed=6)
    assert not np.array_equal(a.assignments, c.assignments)


def test_fixed_coordinates_never_flipped_in_any_row():
    """Every anneal row (not only the best kept), from starts with ones on fixed coordinates."""
    _, problem = _problem(8, 40, 6, 2)
    assert np.any(~problem.free)
    run, device = make_run(DenseQubos.from_problem(problem), {**LayerSASampler().defaults, "device": "torch-cpu",
                                                               "num_reads": 4, "num_sweeps": 6,
                                                               "hot_acceptance": 0.3})
    polished = run.polish(np.ones(problem.free.shape, np.uint8))
    assert device == "torch-cpu" and np.all(polished.v[~problem.free] == 0)
    annealed = run.anneal(polished, seed=0)
    rows, owner = annealed.v, annealed.owner
    assert np.all(rows[~problem.free[owner]] == 0)
    assert np.any(rows[problem.free[owner]] == 1)
    np.testing.assert_allclose(annealed.energy, DenseQubos.from_problem(problem).energies(rows, owner), rtol=1e-12)


def test_one_shared_matrix_on_the_device(monkeypatch):
    """No per-neuron quadratic matrix is built; the run holds one (m, m) tensor, rows hold (n, reads, m)."""
    _, problem = _problem(11, 99, 16, 4)
    for name in ("quadratic_matrix", "neuron_bqm"):
        monkeypatch.setattr(LayerProblem, name, lambda *a, **k: pytest.fail("per-neuron matrix built"))
    run, _ = make_run(DenseQubos.from_problem(problem), {**LayerSASampler().defaults, "device": "torch-cpu"})
    m = problem.num_coordinates
    square = [k for k, t in vars(run).items() if isinstance(t, torch.Tensor) and t.numel() >= m * m]
    assert square == ["mat"]
    assert LayerSASampler(device="torch-cpu", **FAST).sample_layer(problem, seed=0).info["device"] == "torch-cpu"


def test_single_bqm_matches_exact():
    _, problem = _problem(4, 16, 3, 2)
    exact = get_sampler("exact")
    for i in range(problem.num_neurons):
        bqm = problem.neuron_bqm(i)
        ss = LayerSASampler(device="torch-cpu").sample(bqm, num_reads=16, num_sweeps=64, seed=i)
        assert len(ss) == 16 and ss.info["device"] == "torch-cpu"
        assert ss.first.energy == pytest.approx(exact.sample(bqm).first.energy, rel=1e-9, abs=1e-12)


def test_device_choice(monkeypatch):
    _, problem = _problem(1, 8, 2, 2)
    with pytest.raises(InvalidArgumentError, match="device"):
        LayerSASampler(device="gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    dense = DenseQubos.from_problem(problem)
    run, device = make_run(dense, {**LayerSASampler().defaults})
    assert device == "cpu" and isinstance(run, _Run)  # auto without CUDA: the numba kernel
    assert LayerSASampler().sample_layer(problem, seed=0).info["device"] == "cpu"
    for name in ("cuda", "cuda:0"):
        with pytest.raises(BackendUnavailableError, match="device"):
            LayerSASampler(device=name).sample_layer(problem, seed=0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cpu") == "cpu"


def test_the_default_device_is_the_numba_kernel_where_a_gpu_is_present(monkeypatch):
    """On an H200 the torch path ran MNIST's first layer 66x slower than numba at the default effort: a GPU
    does not move the default onto it; ``device="auto"`` (or ``"cuda"``) still asks for it."""
    _, problem = _problem(1, 8, 2, 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert LayerSASampler().defaults["device"] == "cpu"
    run, device = make_run(DenseQubos.from_problem(problem), {**LayerSASampler().defaults})
    assert device == "cpu" and isinstance(run, _Run)
    assert LayerSASampler().sample_layer(problem, seed=0).info["device"] == "cpu"
    asked = []

    def stand_in(self, dense, params, device, clock=None):  # records the device asked for; cannot solve
        asked.append(device)
        raise RuntimeError("stand-in")

    monkeypatch.setattr("qannealq.backends._layer_torch.TorchRun.__init__", stand_in)
    with pytest.raises(RuntimeError, match="stand-in"):
        LayerSASampler(device="auto").sample_layer(problem, seed=0)
    assert asked == ["cuda"]


def test_time_limit_and_trace_on_the_torch_path():
    """A thorough run far longer than the limit stops after the sweep that passes it, states valid."""
    layer, problem = _problem(9, 60, 6, 3)
    warm = problem.encode(gptq_restricted(problem))
    solver = LayerSASampler(device="torch-cpu", effort="thorough")
    solver.sample_layer(problem, initial_states=warm, seed=0, num_reads=1, num_sweeps=1)  # warm-up, not timed
    t0 = time.perf_counter()
    sample = solver.sample_layer(problem, initial_states=warm, seed=0, time_limit=0.5)
    assert time.perf_counter() - t0 < 0.5 + 3.0  # unlimited: minutes; margin for a shared 2-core machine
    assert sample.info["time_limited"] is True
    _check_energies(layer, problem, sample)
    assert np.all(sample.energies <= problem.qubo_energies(warm) + 1e-15)
    energy = np.array(sample.info["trace"]["energy"])
    assert energy.size >= 3 and np.all(np.diff(energy) <= 1e-12 * abs(energy[0]))


def test_a_limited_torch_anneal_takes_its_schedule_in_strides_to_end_cold_then_polishes(monkeypatch):
    """Under a limit far shorter than its schedule the torch anneal stopped at the sweep that passed it, near the
    hot end and unpolished (100000 sweeps under 1 s: 15 sweeps from beta 2.73 to 2.73 of a schedule ending at 97;
    10.04 against the polished start's 10.28, numba 7.35 from 9.83). As the numba anneal, it now strides the
    schedule to reach its cold end within the limit, then polishes (8.86 there)."""
    from qannealq.backends._layer_torch import TorchRun

    layer, problem = _problem(6, 40, 6, 3)
    warm = problem.encode(gptq_restricted(problem))
    schedules, swept, polished = [], [], []
    anneal_rows, sweep, polish = TorchRun._anneal_rows, TorchRun._sweep, TorchRun._polish
    monkeypatch.setattr(TorchRun, "_anneal_rows", lambda self, v, beta, *a: schedules.append(beta.clone())
                        or anneal_rows(self, v, beta, *a))
    monkeypatch.setattr(TorchRun, "_sweep", lambda self, v, g, beta, gen: swept.append(beta.clone())
                        or sweep(self, v, g, beta, gen))
    monkeypatch.setattr(TorchRun, "_polish", lambda self, v, g, bounded=True: polished.append(bounded)
                        or polish(self, v, g, bounded))
    solver = LayerSASampler(device="torch-cpu", num_reads=4, num_sweeps=100_000, hot_acceptance=0.3)
    sample = solver.sample_layer(problem, initial_states=warm, seed=1, time_limit=1.0)
    assert sample.info["time_limited"] is True
    _check_energies(layer, problem, sample)
    assert np.all(sample.energies <= problem.qubo_energies(warm) + 1e-15)
    assert len(schedules) == 1 and schedules[0].shape[2] == 100_000
    assert 2 <= len(swept) < 100_000
    torch.testing.assert_close(swept[0], schedules[0][:, :, 0])
    torch.testing.assert_close(swept[-1], schedules[0][:, :, -1])  # the cold end
    assert polished[-1] is True  # the anneal's own polish (bounded by the limit) ran after the sweeps


def test_the_polish_of_the_start_runs_past_a_spent_limit_as_the_numba_one_does():
    """The start's polish is not bounded by the limit on either path (a limited run ends at least where ``fast``
    does): the torch one stopped at the spent clock, and the first neuron here kept its all-zero start's energy
    of 9.89 under ``time_limit=1e-9`` (3.31 without a limit)."""
    _, problem = _problem(4, 16, 3, 2)
    for i in range(problem.num_neurons):
        bqm = problem.neuron_bqm(i)
        labels = list(bqm.variables)
        start = (np.zeros((1, len(labels)), np.int8), labels)
        solver = LayerSASampler(device="torch-cpu", num_sweeps=0)
        free = solver.sample(bqm, initial_states=start, seed=0)
        spent = solver.sample(bqm, initial_states=start, seed=0, time_limit=1e-9)
        assert spent.first.energy == free.first.energy < bqm.energy(dict(zip(labels, start[0][0])))
    dense = DenseQubos.from_problem(problem)
    starts = np.zeros(dense.free.shape, np.uint8)
    for device in ("cpu", "torch-cpu"):
        clock = Clock(1e-9, start=time.perf_counter() - 1.0)
        run, _ = make_run(dense, {**LayerSASampler().defaults, "device": device}, clock)
        with run:
            polished = run.polish(starts).energy
        assert np.all(polished < dense.energies(starts)), device


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_exact_and_is_deterministic():
    layer, problem = _problem(3, 14, 12, 3)
    solver = LayerSASampler(device="cuda")
    a, b = (solver.sample_layer(problem, seed=2) for _ in range(2))
    assert a.info["device"] == "cuda"
    _check_energies(layer, problem, a)
    np.testing.assert_array_equal(a.assignments, b.assignments)
    np.testing.assert_allclose(a.energies, _optimum(problem), rtol=1e-9, atol=1e-12)


@dimod.testing.load_sampler_bqm_tests(LayerSASampler(device="torch-cpu", num_reads=4, num_sweeps=16))
class TestDimodContractTorch(unittest.TestCase):
    pass


def test_torch_runs_chain_moves_on_wide_layers():
    """As in the numba kernel: chains on wide layers (the chain sweep count), pair flips with ``chain=0``; both
    never worse than the warm start, energies exact."""
    layer, problem = _problem(41, 300, 2, 2)
    warm_e = problem.qubo_energies(problem.encode(gptq_restricted(problem)))
    # the sweeps of a wide layer (a two-neuron layer would get the layer floor's 256, slow on torch-cpu)
    chains = LayerSASampler(device="torch-cpu", num_sweeps=16).sample_layer(problem, seed=0)
    pairs = LayerSASampler(device="torch-cpu", chain=0, num_sweeps=14).sample_layer(problem, seed=0)
    assert chains.info["chain"] == 4 and chains.info["reads_sweeps"] == (1, 16)
    assert pairs.info["chain"] == 0 and pairs.info["reads_sweeps"] == (1, 14)
    for sample in (chains, pairs):
        _check_energies(layer, problem, sample)
        assert np.all(sample.energies <= warm_e + 1e-15) and sample.energies.sum() < warm_e.sum()


@pytest.mark.parametrize("chain", [4, 6])
def test_torch_chain_moves_reach_the_exact_optimum_on_small_neurons(chain):
    layer, problem = _problem(21, 16, 6, 3)
    sample = LayerSASampler(device="torch-cpu", chain=chain).sample_layer(problem, seed=4)
    assert sample.info["chain"] == chain
    _check_energies(layer, problem, sample)
    np.testing.assert_allclose(sample.energies, _optimum(problem), rtol=1e-9, atol=1e-12)


def test_torch_chain_descent_escapes_pair_flip_minima():
    """Greedy chain sweeps in torch lower states that no single or pair flip improves (inputs correlated as
    pixels are), with the field kept exact."""
    _, problem = smooth_layer(33, 300, 6, 3)
    dense = DenseQubos.from_problem(problem)
    run, _ = make_run(dense, {**LayerSASampler().defaults, "chain": 4, "device": "torch-cpu"})
    pairs_min = run.polish(problem.encode(gptq_restricted(problem)))
    v = torch.as_tensor(pairs_min.v, dtype=torch.float64, device=run.device)[:, None, :]  # CUDA too
    g = run._field(v)
    change = run._chain_polish(v, g)[:, 0].cpu().numpy()
    states = v[:, 0].to(torch.uint8).cpu().numpy()
    torch.testing.assert_close(g, run._field(v), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pairs_min.energy + change, dense.energies(states), rtol=1e-9, atol=1e-12)
    assert np.all(change <= 0) and change.sum() < -1e-3 * pairs_min.energy.sum()


def test_num_threads_sets_the_torch_threads_of_a_cpu_run(monkeypatch):
    """``num_threads`` was ignored on ``torch-cpu``: the run took all of torch's threads whatever it said (2 here
    with ``num_threads=1``; on a busy 2-core machine ``_move_costs`` of digits' first layer then took 41 ms a call
    against 1 ms on one thread, and a 0.3 s limit ended at 0.95-1.7 s). Within the run torch now has
    ``num_threads`` threads (capped at the cores), restored after; without it, torch's own."""
    from qannealq.backends._layer_torch import TorchRun

    _, problem = _problem(2, 12, 3, 2)
    seen, polish = [], TorchRun._polish
    monkeypatch.setattr(TorchRun, "_polish", lambda self, *a, **k: seen.append(torch.get_num_threads())
                        or polish(self, *a, **k))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        one = LayerSASampler(device="torch-cpu", num_reads=2, num_sweeps=4).sample_layer(problem, seed=0,
                                                                                        num_threads=1)
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
        seen.clear()
        again = LayerSASampler(device="torch-cpu", num_reads=2, num_sweeps=4).sample_layer(problem, seed=0)
        assert seen and set(seen) == {2} and torch.get_num_threads() == 2
        np.testing.assert_array_equal(one.assignments, again.assignments)
    finally:
        torch.set_num_threads(before)


def test_late_on_a_wide_layer_descends_by_chains_on_the_torch_path_too():
    """``late`` (and a tight start) on a layer of a population is the polish and a greedy descent by chains; the
    torch run had no descent and stopped at the polish (this layer: 1.2973e-4 against numba's 1.2457e-4, 4.1 %
    higher, ``info["descended"]`` False). It now descends as the numba run does (1.2460e-4)."""
    from qannealq.backends._layer_schedule import POPULATION_INPUTS

    layer, problem = smooth_layer(23, POPULATION_INPUTS, 2, 3)
    warm = problem.encode(gptq_restricted(problem))
    opts = {"warm_start_beam": 0, "num_threads": 1}
    polish = LayerSASampler(device="torch-cpu", num_sweeps=0, **opts).sample_layer(problem, warm, seed=0)
    late = LayerSASampler(device="torch-cpu", late=True, **opts).sample_layer(problem, warm, seed=0)
    numba = LayerSASampler(late=True, **opts).sample_layer(problem, warm, seed=0)
    assert numba.info["descended"] and late.info["descended"] and not polish.info["descended"]
    _check_energies(layer, problem, late)
    assert np.all(late.energies <= polish.energies) and late.energies.sum() < polish.energies.sum() * (1 - 1e-2)
    assert late.energies.sum() <= numba.energies.sum() * 1.02
