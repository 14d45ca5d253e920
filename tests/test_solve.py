from __future__ import annotations

import itertools

import dimod
import numpy as np
import pytest
import torch

from helpers import random_layer
import qannealq
from qannealq import InvalidArgumentError, ProblemTooLargeError, gptq_restricted, quantize_layer
from qannealq.backends import get_sampler
from qannealq.contract import LayerComposite, layer_solver


def _brute_force(layer, problem, i):
    """Minimum of neuron i's error over all 2^m assignments, straight from the data."""
    idx = problem.variables(i)
    best = np.inf
    for bits in itertools.product((0, 1), repeat=idx.size):
        v = np.zeros(problem.num_coordinates, dtype=np.int64)
        v[idx] = bits
        ints = problem.base[i] + v
        best = min(best, layer.direct_error(i, problem.grid.dequantize(ints, problem.steps[i])))
    return best


@pytest.fixture(scope="module")
def small_layer():
    rng = np.random.default_rng(42)
    layer = random_layer(rng, 12, 4, samples=200)
    problem = layer.problem(3)
    assert 0 < problem.free.sum(axis=1).max() <= 16
    return layer, problem


def test_exact_and_sa_reach_the_brute_force_minimum(small_layer):
    layer, problem = small_layer
    minima = np.array([_brute_force(layer, problem, i) for i in range(problem.num_neurons)])
    exact = quantize_layer(problem, "qubo", get_sampler("exact"), "exact")
    np.testing.assert_allclose(exact.errors, minima, rtol=1e-9)
    sa = quantize_layer(problem, "qubo", get_sampler("sa"), "sa", seed=3, num_reads=20)
    np.testing.assert_allclose(sa.errors, minima, rtol=1e-9)
    for i in range(problem.num_neurons):
        assert exact.samplesets[i].first.energy == pytest.approx(minima[i], rel=1e-9)


def test_exact_refuses_large_problems():
    rng = np.random.default_rng(0)
    problem = random_layer(rng, 40, 1).problem(8)
    with pytest.raises(ProblemTooLargeError, match=r"at most 24 variables.*has \d+"):
        quantize_layer(problem, "qubo", get_sampler("exact"), "exact")


class _RecordingSampler(dimod.Sampler):
    """Returns three samples whose lowest-energy one is NOT the first record; records its kwargs."""

    parameters = {"seed": [], "initial_states": []}
    properties: dict = {}

    def __init__(self):
        self.calls = []

    def sample(self, bqm, **kwargs):
        self.calls.append(kwargs)
        n = bqm.num_variables
        rng = np.random.default_rng(kwargs["seed"])
        samples = rng.integers(0, 2, size=(3, n))
        ss = dimod.SampleSet.from_samples_bqm((samples, list(bqm.variables)), bqm)
        order = np.argsort(-ss.record.energy)  # highest energy first
        return dimod.SampleSet(ss.record[order], ss.variables, {}, ss.vartype)


def test_lowest_energy_sample_used_and_warm_start_and_seed_passed(small_layer):
    _, problem = small_layer
    sampler = _RecordingSampler()
    result = quantize_layer(problem, "qubo", sampler, "recording", seed=11)
    warm = problem.encode(gptq_restricted(problem, order="pivot"))  # the default start, gptq-restricted-pivot
    assert result.seed == 11
    for i, (kwargs, ss) in enumerate(zip(sampler.calls, result.samplesets)):
        assert ss.record.energy[0] > ss.record.energy.min()
        # its lowest read, or the warm start it was handed where that is lower
        assert result.errors[i] == pytest.approx(min(ss.record.energy.min(), result.warm_start_errors[i]), rel=1e-9)
        states, labels = kwargs["initial_states"]
        assert labels == problem.variables(i).tolist()
        np.testing.assert_array_equal(states[0], warm[i, labels])
    assert len({c["seed"] for c in sampler.calls}) == problem.num_neurons  # a derived seed per neuron
    again = quantize_layer(problem, "qubo", _RecordingSampler(), "recording", seed=11)
    np.testing.assert_array_equal(again.integers, result.integers)


def test_without_a_warm_start_the_lowest_read_is_used(small_layer):
    _, problem = small_layer
    result = quantize_layer(problem, "qubo", _RecordingSampler(), "recording", seed=11, warm_start=None)
    for i, ss in enumerate(result.samplesets):
        assert result.errors[i] == pytest.approx(ss.record.energy.min(), rel=1e-9)
    assert "warm_start_kept" not in result.info


class _Flipping(dimod.Sampler):
    """One read: the complement of its initial state (random where none is given): never better than a good start."""

    parameters = {"seed": [], "initial_states": []}
    properties: dict = {}

    def sample(self, bqm, seed=None, initial_states=None):
        labels = list(bqm.variables)
        if initial_states is None:
            state = np.random.default_rng(seed).integers(0, 2, len(labels))
        else:
            states, given = initial_states
            state = 1 - np.asarray(states[0])[[given.index(v) for v in labels]]
        return dimod.SampleSet.from_samples_bqm((state[None, :], labels), bqm)


class _FlippingNoStart(_Flipping):
    parameters = {"seed": []}


class _Batches:
    """A checkpoint in memory (the NeuronCheckpoint protocol): batches of 2 neurons."""

    batch_size = 2

    def __init__(self):
        self.rows = {}

    def load(self, problem, start, stop, seed):
        return self.rows.get((start, stop, seed))

    def save(self, problem, start, rows, seed):
        self.rows[(start, start + len(rows), seed)] = np.array(rows)


def test_a_per_neuron_sampler_handed_the_warm_start_never_ends_above_it(small_layer):
    _, problem = small_layer
    raw = quantize_layer(problem, "qubo", _Flipping(), "flip", seed=5, warm_start=None)
    warm = problem.encode(gptq_restricted(problem, order="pivot"))
    flipped = problem.qubo_energies(np.where(problem.free, 1 - warm, 0))
    above = flipped > problem.qubo_energies(warm)
    assert above.sum() >= 2  # the test means something: some neurons' reads end above their start
    checkpoint = _Batches()
    result = quantize_layer(problem, "qubo", _Flipping(), "flip", seed=5, checkpoint=checkpoint)
    np.testing.assert_allclose(result.errors, np.minimum(flipped, result.warm_start_errors), rtol=1e-9)
    assert np.all(result.errors <= result.warm_start_errors * (1 + 1e-12))
    assert result.info["warm_start_kept"] == above.sum()
    # the batches hold the sampler's own rows: a resume keeps the same starts and says so
    resumed = quantize_layer(problem, "qubo", _Flipping(), "flip", seed=5, checkpoint=checkpoint)
    np.testing.assert_array_equal(resumed.integers, result.integers)
    assert resumed.info["warm_start_kept"] == above.sum()
    # a sampler that takes no initial state was not started from the warm start: its reads are its own
    other = quantize_layer(problem, "qubo", _FlippingNoStart(), "flip", seed=5)
    assert "warm_start_kept" not in other.info
    np.testing.assert_allclose(other.errors, raw.errors, rtol=1e-12)
    assert np.any(other.errors > other.warm_start_errors)


def test_a_neuron_the_decomposition_passes_to_a_child_taking_no_start_keeps_its_own_read(small_layer):
    """``qannealq run`` puts a backend with a capacity (qaoa, exact, dwave-hybrid) in the decomposition, which takes
    initial states but passes a neuron within its capacity straight to its child: a child that takes none (qaoa)
    was never started from the warm start, yet its reads were replaced by it and counted as warm_start_kept."""
    from qannealq.backends.decompose import decomposed

    _, problem = small_layer
    sizes = problem.free.sum(axis=1)
    raw = quantize_layer(problem, "qubo", _FlippingNoStart(), "flip", seed=5, warm_start=None)
    whole = quantize_layer(problem, "qubo", decomposed(_FlippingNoStart(), capacity=int(sizes.max())), "flip", seed=5)
    assert "warm_start_kept" not in whole.info
    np.testing.assert_allclose(whole.errors, raw.errors, rtol=1e-12)
    assert np.any(whole.errors > whole.warm_start_errors)  # the test means something: reads above the start
    # a neuron above the capacity is decomposed from its warm start: never above it; the others stay raw
    capacity = int(sizes.min())
    mixed = quantize_layer(problem, "qubo", decomposed(_FlippingNoStart(), capacity=capacity), "flip", seed=5)
    fits = sizes <= capacity
    assert 0 < fits.sum() < fits.size
    np.testing.assert_allclose(mixed.errors[fits], raw.errors[fits], rtol=1e-12)
    assert np.all(mixed.errors[~fits] <= mixed.warm_start_errors[~fits] * (1 + 1e-12))
    assert mixed.info["warm_start_kept"] == 0


def test_warm_start_errors_recorded(small_layer):
    _, problem = small_layer
    result = quantize_layer(problem, "qubo", get_sampler("exact"), "exact")
    assert result.warm_start_errors is not None
    assert np.all(result.errors <= result.warm_start_errors + 1e-12)


def test_bad_method_and_missing_sampler(small_layer):
    _, problem = small_layer
    with pytest.raises(InvalidArgumentError, match="method"):
        quantize_layer(problem, "annealing")
    with pytest.raises(InvalidArgumentError, match="sampler"):
        quantize_layer(problem, "qubo")
    with pytest.raises(InvalidArgumentError, match="warm_start"):
        quantize_layer(problem, "qubo", get_sampler("exact"), warm_start="best")
    with pytest.raises(InvalidArgumentError, match="seed"):
        quantize_layer(problem, "qubo", get_sampler("exact"), seed=-3)


def test_quantize_layer_takes_the_warm_starts_the_command_line_takes(small_layer):
    """``quantize_layer(..., warm_start="none")`` was refused ("must be one of (..., None)") where ``--warm-start
    none`` and ``quantize_model(warm_start="none")`` were accepted: one rule (:func:`parse_warm_start`) for all."""
    from qannealq.solve import parse_warm_start

    _, problem = small_layer
    cold = quantize_layer(problem, "qubo", get_sampler("exact"), "exact", warm_start=None)
    for value in ("none", "None", ""):
        result = quantize_layer(problem, "qubo", get_sampler("exact"), "exact", warm_start=value)
        assert result.warm_start_errors is None
        np.testing.assert_array_equal(result.integers, cold.integers)
    with pytest.raises(InvalidArgumentError, match=r"^warm_start='best' must be one of rtn, .* or none$"):
        quantize_layer(problem, "qubo", get_sampler("exact"), warm_start="best")
    with pytest.raises(InvalidArgumentError, match=r"^--warm-start='best' must be one of rtn, .* or none$"):
        parse_warm_start("best")


def test_a_backend_of_ours_refuses_an_unknown_or_reserved_keyword_before_any_work(small_layer, monkeypatch):
    """``quantize_layer(..., time_limt=30)`` was warned about and dropped (dimod's rule), and the layer ran with no
    limit; ``initial_states=`` and ``late=`` went through. A backend of ours lists every option it takes, so
    both Python entry points now refuse such keys as the commands do, naming the valid ones; a sampler of the
    user's keeps dimod's rule (a warning). ``quantize_model`` with a sampler object of ours did the same."""
    import qannealq.solve
    from qannealq import quantize_model

    _, problem = small_layer
    monkeypatch.setattr(qannealq.solve, "warm_up", lambda *a, **k: pytest.fail("warmed up"))  # refused before it
    for sampler, backend in ((get_sampler("layer-sa"), "layer-sa"), (get_sampler("sa"), "")):
        with pytest.raises(InvalidArgumentError, match=r"quantize_layer keyword time_limt: backend '(layer-sa|sa)' "
                                                       r"does not take this option; valid keys: "):
            quantize_layer(problem, "qubo", sampler, backend, time_limt=30)
    with pytest.raises(InvalidArgumentError, match="quantize_layer keyword initial_states: the warm start gives"):
        quantize_layer(problem, "qubo", get_sampler("exact"), initial_states=np.zeros((1, 3)))
    with pytest.raises(InvalidArgumentError, match="quantize_layer keyword late: the solve loop sets it"):
        quantize_layer(problem, "qubo", get_sampler("layer-sa"), late=True)
    with pytest.raises(InvalidArgumentError, match="quantize_layer keyword num_reads=0 must be an integer >= 1"):
        quantize_layer(problem, "qubo", get_sampler("sa"), num_reads=0)
    monkeypatch.undo()
    with pytest.warns(dimod.exceptions.SamplerUnknownArgWarning, match="bogus"):  # the user's own sampler
        result = quantize_layer(problem, "qubo", dimod.RandomSampler(), num_reads=2, bogus=1, seed=0)
    assert result.errors.shape == (problem.num_neurons,)
    model = torch.nn.Sequential(torch.nn.Linear(6, 3))
    # named 'SimulatedAnnealing' here and in its result, while its solve's errors said 'sa': one name now
    with pytest.raises(InvalidArgumentError, match="quantize_model keyword num_sweep: backend 'sa'"):
        quantize_model(model, torch.randn(64, 6), 2, "qubo", get_sampler("sa"), num_sweep=10)
    result = quantize_model(model, torch.randn(64, 6), 2, "qubo", get_sampler("sa"), num_reads=1, num_sweeps=10)
    assert result.backend == "sa" and {layer.backend for layer in result.layers} == {"sa"}


def test_a_sampler_of_the_users_that_returns_no_sample_is_named_with_the_neuron_and_layer(small_layer):
    """dimod's ``NullSampler`` (a stand-in users write tests with) returns an empty SampleSet: the message said
    "neuron 0 of layer", the layer's name unquoted, and then "the sampler", naming no backend."""
    from qannealq.errors import BackendError

    _, problem = small_layer
    with pytest.raises(BackendError, match=f"backend 'NullSampler' returned no sample for neuron 0 of layer "
                                           f"{problem.name!r}: a sampler must return at least one sample"):
        quantize_layer(problem, "qubo", dimod.NullSampler(), warm_start=None)
    result = quantize_layer(problem, "qubo", dimod.IdentitySampler(), warm_start="rtn")  # the start returned
    assert np.allclose(result.errors, quantize_layer(problem, "rtn").errors)


def test_neuron_without_variables_keeps_its_fixed_row():
    rng = np.random.default_rng(0)
    layer = random_layer(rng, 4, 2, dead=4)  # every input dead: only the bias may be a variable
    problem = layer.problem(2)
    result = quantize_layer(problem, "qubo", get_sampler("exact"), "exact")
    np.testing.assert_allclose(result.errors, [_brute_force(layer, problem, i) for i in range(2)], rtol=1e-9)


class _CountingSampler(dimod.Sampler):
    """Exact sampler that returns unresolved SampleSets and logs submissions and resolutions in order."""

    parameters = {"seed": []}
    properties = {}

    def __init__(self):
        self.log = []
        self.threads = set()

    def sample(self, bqm, seed=None):
        import threading

        label = len([e for e in self.log if e[0] == "submit"])
        self.log.append(("submit", label))
        self.threads.add(threading.get_ident())

        def resolve(_future):
            self.log.append(("resolve", label))
            return dimod.ExactSolver().sample(bqm)

        return dimod.SampleSet.from_future(None, resolve)


def test_every_neuron_is_submitted_before_any_is_resolved(small_layer):
    _, problem = small_layer
    sampler = _CountingSampler()
    result = quantize_layer(problem, "qubo", sampler, warm_start=None, seed=3)
    kinds = [kind for kind, _ in sampler.log]
    n = problem.num_neurons
    assert kinds == ["submit"] * n + ["resolve"] * n
    exact = quantize_layer(problem, "qubo", get_sampler("exact"), warm_start=None)
    np.testing.assert_allclose(result.errors, exact.errors, rtol=1e-12)


def test_executor_maps_the_neuron_solves_with_the_same_result(small_layer):
    from concurrent.futures import ThreadPoolExecutor

    _, problem = small_layer
    plain = quantize_layer(problem, "qubo", get_sampler("sa"), seed=11, num_reads=5)
    sampler = _CountingSampler()
    with ThreadPoolExecutor(2) as pool:
        mapped = quantize_layer(problem, "qubo", get_sampler("sa"), seed=11, executor=pool, num_reads=5)
        threaded = quantize_layer(problem, "qubo", sampler, warm_start=None, executor=pool)
    np.testing.assert_array_equal(mapped.integers, plain.integers)  # same per-neuron seeds, same answers
    assert [ss.info["seed"] for ss in mapped.samplesets] == [ss.info["seed"] for ss in plain.samplesets]
    assert len(sampler.log) == 2 * problem.num_neurons
    assert sampler.threads and threading_main() not in sampler.threads  # the pool ran them
    exact = quantize_layer(problem, "qubo", get_sampler("exact"), warm_start=None)
    np.testing.assert_allclose(threaded.errors, exact.errors, rtol=1e-12)


def threading_main():
    import threading

    return threading.main_thread().ident


class _Wrapper(LayerComposite):
    """A composite of ours that counts calls and otherwise passes through."""

    calls = 0

    def sample_layer(self, problem, initial_states=None, seed=None, **kwargs):
        type(self).calls += 1
        return super().sample_layer(problem, initial_states=initial_states, seed=seed, **kwargs)


def test_a_composite_around_a_whole_layer_sampler_keeps_the_whole_layer_path(small_layer, no_warm_up):
    _, problem = small_layer
    inner = get_sampler("layer-sa")
    wrapped = _Wrapper(inner)
    assert wrapped.properties["whole_layer"] is True and layer_solver(wrapped) is wrapped
    direct = quantize_layer(problem, "qubo", inner, seed=5)
    via = quantize_layer(problem, "qubo", wrapped, seed=5)
    assert _Wrapper.calls == 1 and via.samplesets is None  # solved as one layer, not neuron by neuron
    np.testing.assert_array_equal(via.integers, direct.integers)
    assert via.info["seed"] == 5 and "timing" in via.info
    per_neuron = _Wrapper(get_sampler("exact"))
    assert per_neuron.properties["whole_layer"] is False and layer_solver(per_neuron) is None
    assert quantize_layer(problem, "qubo", per_neuron, warm_start=None).samplesets is not None


def test_quantize_model_granularity_best_is_the_better_grid_with_both_errors_recorded():
    import torch

    from qannealq import quantize_model

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    data = torch.randn(128, 12)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data), batch_size=32)
    each = {g: quantize_model(model, data, 2, "gptq", granularity=g) for g in ("tensor", "channel")}
    best = quantize_model(model, loader, 2, "gptq", granularity="best")  # a loader, read once for both grids
    kept = min(each, key=lambda g: each[g].layer_error)
    assert best.granularity == kept and best.layer_error == each[kept].layer_error
    assert best.settings["grid_errors"] == {g: r.layer_error for g, r in each.items()}
    for a, b in zip(best.model.parameters(), each[kept].model.parameters()):
        assert torch.equal(a, b)

    class Mine:  # a checkpoint of the user's own: nothing to keep the two grids' batches apart
        def load(self, *args):
            return None

        def save(self, *args):
            pass

    with pytest.raises(InvalidArgumentError, match="granularity='best' solves both grids, and checkpoint has no "
                                                   "unit to keep their batches apart"):
        quantize_model(model, data, 2, "qubo", granularity="best", checkpoint=Mine())


def test_quantize_model_takes_none_as_the_command_line_spells_it():
    """``warm_start="none"`` (as ``--warm-start none``) was refused as unknown; it is None."""
    import torch

    from qannealq import quantize_model

    model = torch.nn.Sequential(torch.nn.Linear(6, 3))
    data = torch.randn(32, 6)
    spelled = quantize_model(model, data, 2, sampler="sa", warm_start="none", seed=1, num_reads=2)
    plain = quantize_model(model, data, 2, sampler="sa", warm_start=None, seed=1, num_reads=2)
    assert spelled.settings["warm_start"] is None and spelled.layer_error == plain.layer_error


def test_a_whole_layer_solves_memory_error_says_what_lightens_that_solve(small_layer, no_warm_up, monkeypatch):
    """layer-sa's MemoryError named the layer but told the user to use fewer executor workers (processes:N), which
    map no whole-layer solve, and named none of its own options that hold its memory (threads, reads, beam)."""
    from qannealq.errors import SolveMemoryError

    _, problem = small_layer

    def out_of_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 3.20 GiB for an array with shape (1024, 420000)")

    sampler = get_sampler("layer-sa")
    monkeypatch.setattr(type(sampler), "_sample_layer", out_of_memory)
    with pytest.raises(SolveMemoryError, match=r"^layer 'layer', all 4 neurons \(whole-layer solve\): out of memory "
                                               r"in the solve \(MemoryError: Unable to allocate 3.20 GiB") as caught:
        quantize_layer(problem, "qubo", sampler, "layer-sa", seed=0, warm_start=None)
    words = str(caught.value)
    assert "--resume" in words and "processes:N" not in words and "executor" not in words
    for option in ("num_threads=N", "num_reads=N", "warm_start_beam=N", "effort=fast"):
        assert option in words


@pytest.mark.parametrize("backend, method, warm_start, where, words", [
    ("layer-sa", "qubo", "gptq", r"warm start gptq \(beam of \d+\)", "warm_start_beam=N"),
    ("sa", "qubo", "gptq", r"warm start gptq", "--warm-start rtn"),
    (None, "gptq", None, r"method gptq", "more memory"),
])
def test_a_memory_error_of_a_warm_start_or_baseline_names_the_layer_and_what_to_do(small_layer, no_warm_up,
                                                                                     monkeypatch, backend, method,
                                                                                     warm_start, where, words):
    """The warm start's beam (layer-sa's, in its threads) or GPTQ's factorization out of memory ended in a bare
    MemoryError traceback (from qannealq/_gptq_beam.py's search, naming neither the layer nor what to do): only the
    sampler's call was named. Both are now a SolveMemoryError."""
    from qannealq import _gptq_beam, baselines
    from qannealq.errors import SolveMemoryError

    _, problem = small_layer

    def out_of_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 3.20 GiB for an array with shape (8, 420000, 128)")

    if backend == "layer-sa":
        monkeypatch.setattr(_gptq_beam, "_spread_paths", out_of_memory)  # in a beam's thread
    else:
        monkeypatch.setattr(baselines, "_inverse_cholesky", out_of_memory)
        monkeypatch.setattr(baselines, "_pivot_cholesky", out_of_memory)
    sampler = get_sampler(backend, warm_start_beam=16) if backend == "layer-sa" else backend and get_sampler(backend)
    with pytest.raises(SolveMemoryError, match=rf"^layer 'layer', {where}: out of memory in the solve \(MemoryError: "
                                               r"Unable to allocate 3.20 GiB.*--resume") as caught:
        quantize_layer(problem, method, sampler, backend or "", seed=0, warm_start=warm_start)
    assert words in str(caught.value) and isinstance(caught.value, MemoryError)


def test_float_stats_of_another_model_or_of_no_kind_are_refused_naming_float_stats():
    """Statistics of another MLP of the same shapes were used silently (a layer error of 230 where the model's
    own give 0.41), and ``float_stats=3`` ended in a bare TypeError."""
    from qannealq.experiment import calibrate, prepare

    exp, other = prepare(dataset="digits", input_size=4, seed=0), prepare(dataset="digits", input_size=4, seed=1)
    own, foreign = calibrate(exp), calibrate(other)
    kept = qannealq.quantize_model(exp.model, exp.calibration, 4, "rtn", float_stats=own)
    fresh = qannealq.quantize_model(exp.model, exp.calibration, 4, "rtn")
    assert kept.layer_error == pytest.approx(fresh.layer_error, rel=1e-9)
    for calibration in ("float", "sequential"):  # sequential's first layer takes them too
        with pytest.raises(InvalidArgumentError, match=r"float_stats\['0'\] are not this model's layer '0'"):
            qannealq.quantize_model(exp.model, exp.calibration, 4, "rtn", float_stats=foreign,
                                    calibration=calibration)
    with pytest.raises(InvalidArgumentError, match="float_stats must map layer names.*got int"):
        qannealq.quantize_model(exp.model, exp.calibration, 4, "rtn", float_stats=3)
