"""The ``layer-sa`` whole-layer solver: optimality on small neurons, quality and safety on medium ones,
determinism, memory (no per-neuron quadratic matrix), the dimod contract and the solve-loop/CLI wiring."""

from __future__ import annotations

import ast
import graphlib
import tracemalloc
import unittest
from pathlib import Path

import dimod
import dimod.testing
import numpy as np
import pytest

pytest.importorskip("numba")  # before the imports below: layer_sa loads the numba kernel

import qannealq.backends  # noqa: E402
from helpers import layer_problem as _problem, check_layer_energies as _check_energies, random_layer  # noqa: E402,F401
from qannealq import gptq_restricted, quantize_layer  # noqa: E402
from qannealq.backends import get_sampler  # noqa: E402
from qannealq.backends.layer_sa import LayerSASampler  # noqa: E402
from qannealq.errors import InvalidArgumentError  # noqa: E402
from qannealq.formulation import LayerProblem  # noqa: E402


@pytest.fixture(scope="module")
def solver() -> LayerSASampler:
    return get_sampler("layer-sa")


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_reaches_exact_optimum_on_small_neurons(solver, bits):
    layer, problem = _problem(bits, 14, 12, bits)
    sample = solver.sample_layer(problem, seed=1)
    exact = get_sampler("exact")
    optimum = np.array([exact.sample(problem.neuron_bqm(i)).first.energy for i in range(problem.num_neurons)])
    _check_energies(layer, problem, sample)
    np.testing.assert_allclose(sample.energies, optimum, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("bits", [2, 4])
def test_medium_neurons_never_worse_than_warm_start_and_beat_sa(solver, bits):
    layer, problem = _problem(10 + bits, 90, 16, bits, samples=400)
    warm = problem.encode(gptq_restricted(problem))
    sample = solver.sample_layer(problem, initial_states=warm, seed=3)
    _check_energies(layer, problem, sample)
    warm_e = problem.qubo_energies(warm)
    assert np.all(sample.energies <= warm_e + 1e-15)
    assert sample.energies.sum() < warm_e.sum()
    sa = quantize_layer(problem, "qubo", get_sampler("sa"), "sa", seed=3)
    assert sample.energies.sum() <= sa.errors.sum() * (1 + 1e-12)


def test_same_seed_same_result_other_seed_differs():
    layer, problem = _problem(7, 60, 12, 3)
    # GPTQ's start (no beam): from the beam's start, 12 neurons of 60 inputs are often optimal already
    hot = LayerSASampler(hot_acceptance=0.3, cold_acceptance=0.2, num_sweeps=4, polish_sweeps=0, warm_start_beam=0)
    a, b = (hot.sample_layer(problem, seed=5) for _ in range(2))
    np.testing.assert_array_equal(a.assignments, b.assignments)
    assert a.info["seed"] == 5
    c = hot.sample_layer(problem, seed=6)
    assert not np.array_equal(a.assignments, c.assignments)
    single = LayerSASampler(num_threads=1).sample_layer(problem, seed=5, hot_acceptance=0.3, cold_acceptance=0.2,
                                                        num_sweeps=4, polish_sweeps=0, warm_start_beam=0)
    np.testing.assert_array_equal(a.assignments, single.assignments)  # independent of the thread split
    bqm = problem.neuron_bqm(0)
    s1, s2 = (LayerSASampler().sample(bqm, num_reads=3, seed=9) for _ in range(2))
    np.testing.assert_array_equal(s1.record.sample, s2.record.sample)
    assert s1.info["seed"] == 9


def test_no_per_neuron_quadratic_matrix(solver, monkeypatch):
    """A 300-variable, 64-neuron layer: 64 dense (300, 300) matrices would take 46 MB."""
    _, problem = _problem(11, 299, 64, 4, samples=400)
    warm = problem.encode(gptq_restricted(problem))
    _ = problem.linear, problem.offsets  # formulation, not the solver
    for name in ("quadratic_matrix", "neuron_bqm"):
        monkeypatch.setattr(LayerProblem, name, lambda *a, **k: pytest.fail("per-neuron matrix built"))
    solver.sample_layer(problem, initial_states=warm, seed=0)  # compile outside the measurement
    tracemalloc.start()
    try:
        solver.sample_layer(problem, initial_states=warm, seed=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    per_neuron = 64 * 300 * 300 * 8
    assert peak < per_neuron / 4, f"peak {peak / 1e6:.1f} MB"  # ~7 MB: rows (n x reads x m) and one m x m


def test_sample_single_bqm_matches_exact():
    _, problem = _problem(4, 16, 4, 2)
    exact = get_sampler("exact")
    for i in range(problem.num_neurons):
        bqm = problem.neuron_bqm(i)
        ss = LayerSASampler().sample(bqm, num_reads=4, seed=i)
        assert len(ss) == 4
        assert ss.first.energy == pytest.approx(exact.sample(bqm).first.energy, rel=1e-9, abs=1e-12)
        assert set(ss.info["timing"]) == {"preprocessing_ns", "sampling_ns", "postprocessing_ns"}
    spin = dimod.BinaryQuadraticModel({"a": 1.0, "b": -0.5}, {("a", "b"): -2.0}, 0.3, "SPIN")
    ss = LayerSASampler().sample(spin, seed=0, initial_states=[{"a": 1, "b": -1}])
    assert ss.first.energy == pytest.approx(dimod.ExactSolver().sample(spin).first.energy)



def test_a_single_bqm_refuses_unreadable_initial_states_naming_them():
    """A 3-D ``initial_states`` (a layer's ``(n, k, m)`` given to ``sample``) or ragged rows failed in dimod with a
    bare ValueError, "expected samples_like to be <= 2 dimensions" or "setting an array element with a
    sequence...", naming neither the argument nor what it takes."""
    bqm = dimod.BinaryQuadraticModel({0: -1.0, 1: 0.5, 2: 0.25}, {(0, 1): -2.0}, 0.0, "BINARY")
    for bad in (np.zeros((1, 1, 3)), [[0, 1, 0], [0, 1]]):
        with pytest.raises(InvalidArgumentError, match=r"^initial_states must be one state or a list of states .* "
                           r"over the BQM's 3 variables, or a SampleSet; dimod could not read it: "):
            LayerSASampler().sample(bqm, seed=0, initial_states=bad)
    assert LayerSASampler().sample(bqm, seed=0, initial_states=[[1, 1, 0]]).first.energy == -2.5


@pytest.mark.filterwarnings("ignore:All bqm biases are zero")
def test_a_single_bqm_without_variables_reports_what_any_other_does():
    """An empty BQM's (or an offset's alone) ``info`` lacked ``device`` and ``time_limited``, which every other
    BQM's carries: a reader of ``info["time_limited"]`` failed with a KeyError on it."""
    sampler = LayerSASampler()
    normal = sampler.sample(dimod.BinaryQuadraticModel({0: -1.0}, {}, 0.5, "BINARY"), seed=1, num_reads=2)
    for bqm in (dimod.BinaryQuadraticModel("BINARY"), dimod.BinaryQuadraticModel({}, {}, 3.5, "SPIN")):
        ss = sampler.sample(bqm, seed=1, num_reads=2)
        assert set(ss.info) == set(normal.info)
        assert ss.info["device"] == normal.info["device"] == "cpu" and ss.info["time_limited"] is False
        assert len(ss) == 2 and np.all(ss.record.energy == bqm.offset)



def test_a_single_bqm_gets_num_reads_samples_when_no_anneal_runs():
    """Under ``time_limit=1e-4`` (no time for the anneal's set-up) or without sweeps the polished start came back
    alone: one sample where ``sample`` promises ``num_reads`` (the preset's 128 here). Each read that ran no sweep
    ends at the polished start, as dwave-samplers' reads without sweeps end at their starts."""
    _, problem = _problem(4, 40, 1, 3)
    bqm = problem.neuron_bqm(0)
    sampler = LayerSASampler()
    reads = len(sampler.sample(bqm, seed=3))
    for kwargs in ({"time_limit": 1e-9}, {"time_limit": 1e-4}, {"num_sweeps": 0}):
        for asked in (None, 5):
            ss = sampler.sample(bqm, seed=3, num_reads=asked, **kwargs)
            assert len(ss) == (asked or reads), kwargs
            assert np.allclose(ss.record.energy, bqm.energies(ss)) and len(set(ss.record.energy)) == 1
    assert sampler.sample(bqm, seed=3, time_limit=1e-9).info["time_limited"] is True


def test_solve_loop_uses_the_whole_layer_path(solver):
    layer, problem = _problem(5, 30, 8, 3)
    result = quantize_layer(problem, "qubo", solver, "layer-sa", seed=2)
    assert result.samplesets is None
    assert set(result.info["timing"]) == {"preprocessing_ns", "sampling_ns", "postprocessing_ns"}
    assert result.info["seed"] == 2
    assert np.all(result.errors <= result.warm_start_errors + 1e-15)
    np.testing.assert_allclose(result.errors, layer.direct_errors(result.values), rtol=1e-9, atol=1e-12)


def test_cli_defaults_to_layer_sa():
    from qannealq.cli import build_parser

    assert build_parser().parse_args(["run"]).backend == "layer-sa"


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="num_reads"):
        LayerSASampler(num_reads=0)
    with pytest.raises(ValueError, match="unknown layer-sa options"):
        LayerSASampler(bogus=1)
    with pytest.raises(ValueError, match="beta_range"):
        _, problem = _problem(1, 8, 2, 2)
        LayerSASampler().sample_layer(problem, beta_range=(2.0, 1.0))


def test_a_warm_start_of_the_right_shape_but_not_bits_names_the_value():
    """NaN or 0.5 in ``initial_states`` of the layer's own shape were refused with "must be a binary array of shape
    (4, 9) ... got shape (4, 9)": the message now names the first bad value. Spins, refused the same way though this
    sampler's ``sample`` and dwave-samplers take them, are read as spins."""
    _, problem = _problem(1, 8, 4, 2)
    warm = problem.encode(gptq_restricted(problem)).astype(int)
    half = warm.astype(float)
    half[1, 2] = 0.5
    with pytest.raises(ValueError, match=r"got initial_states\[1, 2\]=0.5$"):
        LayerSASampler().sample_layer(problem, initial_states=half, seed=0)
    with pytest.raises(ValueError, match=r"got initial_states\[0, 1, 0\]=nan"):
        LayerSASampler().sample_layer(problem, initial_states=np.stack([warm, np.full(warm.shape, np.nan)], 1),
                                      seed=0)
    with pytest.raises(ValueError, match=r"of shape \(4, 9\) .* got shape \(9, 4\)"):
        LayerSASampler().sample_layer(problem, initial_states=warm.T, seed=0)
    spins = LayerSASampler().sample_layer(problem, initial_states=2 * warm - 1, seed=0, effort="fast")
    bits = LayerSASampler().sample_layer(problem, initial_states=warm, seed=0, effort="fast")
    np.testing.assert_array_equal(spins.assignments, bits.assignments)
    np.testing.assert_array_equal(spins.energies, bits.energies)


def test_a_spin_start_with_a_stray_zero_names_the_zero():
    """Spins with one 0 were refused naming their first -1 ("got initial_states[0, 0]=-1"), a value the same
    message allows, not the 0 that was wrong."""
    _, problem = _problem(1, 8, 4, 2)
    spins = 2 * problem.encode(gptq_restricted(problem)).astype(int) - 1
    spins[2, 3] = 0
    with pytest.raises(ValueError, match=r"read as -1/\+1 spins; got initial_states\[2, 3\]=0$"):
        LayerSASampler().sample_layer(problem, initial_states=spins, seed=0)


@dimod.testing.load_sampler_bqm_tests(LayerSASampler())
class TestDimodContract(unittest.TestCase):
    pass


def _sibling_imports(path: Path) -> set[str]:
    """The modules of ``qannealq.backends`` that ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[:2] == ["qannealq", "backends"]:
                found |= {parts[2]} if len(parts) > 2 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("qannealq.backends.")}
    return found


def _import_graph() -> dict[str, set[str]]:
    """Import graph of ``layer_sa`` and the ``_layer_*`` modules, and of any sibling module they reach."""
    root = Path(qannealq.backends.__file__).parent
    todo = ["layer_sa", *sorted(p.stem for p in root.glob("_layer_*.py"))]
    graph: dict[str, set[str]] = {}
    while todo:
        name = todo.pop()
        if name in graph or not (root / f"{name}.py").is_file():
            continue
        graph[name] = _sibling_imports(root / f"{name}.py") - {name}
        todo.extend(graph[name])
    return graph


def test_layer_modules_import_one_way():
    """No import loop among the layer-sa modules (function-level imports count): each imports only lower ones."""
    graph = _import_graph()
    assert {"layer_sa", "_layer_single", "_layer_run", "_layer_kernel", "_layer_torch", "_layer_schedule",
            "_layer_dense"} <= set(graph)
    assert "_layer_run" in graph["_layer_single"] and "_layer_torch" in graph["_layer_run"]  # the parser sees them
    with pytest.raises(graphlib.CycleError):  # and the check catches a loop
        tuple(graphlib.TopologicalSorter({**graph, "_layer_dense": graph["_layer_dense"] | {"layer_sa"}}).static_order())
    order = tuple(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a loop
    assert order.index("_layer_dense") < order.index("_layer_schedule") < order.index("_layer_run") \
        < order.index("_layer_single") < order.index("layer_sa")


@pytest.mark.parametrize("weight_scale, input_scale", [(1e-40, 1.0), (1.0, 1e-40), (1e40, 1.0), (1.0, 1e130)])
def test_a_layer_beyond_single_precision_is_refused_not_searched_for_ever(weight_scale, input_scale):
    """The warm start's beam keeps the weights and ``H``'s inverse factor in float32: on a float64 model whose
    weights or inputs were below about 1e-38 they underflowed (or overflowed) and the beam never ended. Such a layer
    is refused, naming the layer and the float64 searches; one scaled by 2**-50 is still solved, to the same states."""
    from helpers import RandomLayer
    from qannealq.baselines import warm_start_integers

    # no bias and no dead input: GPTQ's damping counts their H_jj as 1, which does not scale with the inputs
    layer = random_layer(np.random.default_rng(3), 12, 4, samples=80, dead=0, bias=False)
    scaled = RandomLayer(layer.x * input_scale, layer.y * weight_scale * input_scale, layer.weight * weight_scale,
                         None)
    problem = scaled.problem(4)
    with pytest.raises(ValueError, match=r"largest (grid step|diagonal of H).* --backend sa"):
        warm_start_integers(problem, beam=8)
    with pytest.raises(ValueError, match=r"layer-sa handles"):
        LayerSASampler().sample_layer(problem, seed=0, effort="fast")
    usual = layer.problem(4)
    a = 2.0 ** -50  # exact in floating point: the same states bit for bit
    small = RandomLayer(layer.x * a, layer.y * a * a, layer.weight * a, None).problem(4)
    np.testing.assert_array_equal(warm_start_integers(small, beam=8), warm_start_integers(usual, beam=8))


@pytest.mark.parametrize("weight_scale, input_scale, what", [(1.1e38, 1.0, "largest weight"),
                                                              (1e20, 1e20, "root of its H diagonal"),
                                                              (1e-23, 1e-23, "root of its H diagonal")])
def test_a_layer_whose_weights_or_output_errors_leave_single_precision_is_refused(weight_scale, input_scale, what):
    """The beam also keeps the weights (up to ``2**(bits-1)`` steps) and its errors in the output's units (a step
    times ``sqrt(H_jj)``) in float32: with weights of 1.1e38 on an int4 grid (steps 8.3e37), or weights and inputs
    each in range but both scaled by 1e20 or 1e-23, they overflowed or underflowed and the beam's start was up to
    2.1x worse, silently. Such a layer is refused; one scaled by 2**60 both ways is still solved to the same states."""
    from helpers import RandomLayer
    from qannealq.baselines import warm_start_integers

    layer = random_layer(np.random.default_rng(3), 12, 4, samples=80, dead=0, bias=False)
    problem = RandomLayer(layer.x * input_scale, layer.y * weight_scale * input_scale, layer.weight * weight_scale,
                          None).problem(4)
    with pytest.raises(ValueError, match=rf"{what} .* --backend sa"):
        warm_start_integers(problem, beam=8)
    with pytest.raises(ValueError, match=r"layer-sa handles"):
        LayerSASampler().sample_layer(problem, seed=0, effort="fast")
    a = 2.0 ** 60
    large = RandomLayer(layer.x * a, layer.y * a * a, layer.weight * a, None).problem(4)
    np.testing.assert_array_equal(warm_start_integers(large, beam=8), warm_start_integers(layer.problem(4), beam=8))
