"""``compare``: the documented columns, metrics recomputed independently from the stored energies, the reference
optimum and its provenance, unready backends skipped with their reason, resume without recomputation (also after
a real SIGKILL, with the stored options alone), and secret sampler options never stored nor shown."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import re
import subprocess
import sys
import time
import types

import dimod
import numpy as np
import pytest

from backend_fixtures import tiny_digits
from helpers import LazyCloud, Wrapper, random_layer
from qannealq._compare_command import CompareJob, Selection
from qannealq._compare_pace import duration, time_left
from qannealq._compare_instances import instances_from_experiment, instances_from_layer
from qannealq._compare_reference import ReferenceOptions, reference_optimum, settle
from qannealq._compare_report import CSV_COLUMNS, format_summary
from qannealq.cli import main
from qannealq.compare import CompareSettings, check_backend_options, compare_backends
from qannealq.config import ModelConfig
from qannealq.errors import InvalidArgumentError
from qannealq.report import LogReporter
from qannealq.store import ResultStore


@pytest.fixture(scope="module")
def tiny():
    """Two 4x4-digits neurons at int3 (16-17 variables)."""
    return instances_from_experiment(tiny_digits(), 0, 3, "0:2")


class Counting(dimod.Sampler):
    """dwave-samplers' steepest descent that counts its calls."""

    def __init__(self) -> None:
        from qannealq.backends import get_sampler

        self.inner = get_sampler("steepest")
        self.calls = 0

    @property
    def parameters(self) -> dict:
        return self.inner.parameters

    @property
    def properties(self) -> dict:
        return self.inner.properties

    def sample(self, bqm, **kwargs):
        self.calls += 1
        return self.inner.sample(bqm, **kwargs)


def test_compare_writes_the_documented_columns_and_skips_an_unready_backend(tiny, tmp_path, capsys,
                                                                             no_dwave_token):
    out = tmp_path / "cmp"
    code = main(["compare", "--input-size", "4", "--bits", "3", "--neurons", "0:2", "--backends",
                 "sa,exact,layer-sa,dwave", "--reads", "8", "--repeats", "2", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "skipped dwave: no credentials" in printed and "residual gap" in printed and "TTS99" in printed
    with open(out / "compare.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 3 * 2 * 2 and {r["backend"] for r in rows} == {"sa", "exact", "layer-sa"}
    for name in ("gap_vs_tts.png", "success_probability.png", "energy_distribution.png"):
        assert (out / name).stat().st_size > 1000
    assert not (out / "scaling.png").exists()  # one layer: no sizes to scale over
    data = json.loads((out / "compare.json").read_text())
    assert "dwave" in data["skipped"]
    _check_metrics_independently(rows, data)


def test_a_comparison_whose_every_backend_is_skipped_is_refused_before_any_training(tiny, tmp_path, capsys,
                                                                                    no_dwave_token, monkeypatch):
    """``--backends dwave`` without a token computed every reference optimum (10 s a 8x8-digits neuron), then
    compared nothing and exited 0 with an empty table."""
    pytest.importorskip("dwave.system")
    import qannealq.experiment

    monkeypatch.setattr(qannealq.experiment, "prepare", lambda *a, **k: pytest.fail("the model was loaded"))
    out = tmp_path / "cmp"
    assert main(["compare", "--neurons", "0:2", "--backends", "dwave", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--backends=dwave: no backend to compare is ready (dwave: no credentials" in err
    assert "DWAVE_API_TOKEN" in err and "Traceback" not in err
    assert not out.exists()
    with pytest.raises(InvalidArgumentError, match="no backend to compare is ready"):
        compare_backends(tiny, ["dwave"], CompareSettings(reads=2, repeats=1))


def _check_metrics_independently(rows: list[dict], data: dict) -> None:
    """p and TTS99 recomputed from the stored energies and timings with the textbook formula."""
    refs = {name: ref["energy"] for name, ref in data["references"].items()}
    assert {ref["provenance"] for ref in data["references"].values()} == {"proven"}  # <= 24 variables: exact
    units = {(u["backend"], u["instance"], u["repeat"]): u for u in data["units"]}
    for row in rows:
        unit = units[(row["backend"], row["instance"], int(row["repeat"]))]
        energies = np.array(unit["energies"])
        assert len(energies) == int(row["reads"]) == (1 if row["backend"] == "exact" else 8)
        ref = refs[row["instance"]]
        p = np.mean(energies <= ref + 1e-9 * abs(ref))
        assert float(row["success_probability"]) == pytest.approx(p)
        t_read = unit["wall_s"] / len(energies)
        expected = math.inf if p == 0 else (t_read if p >= 0.99 else t_read * math.log(0.01) / math.log(1 - p))
        assert float(row["tts99_wall_seconds"]) == pytest.approx(expected, rel=1e-9)
        assert float(row["residual_gap"]) == pytest.approx((energies.min() - ref) / ref, abs=1e-12)
        assert float(row["best_energy"]) == pytest.approx(energies.min(), rel=1e-12)
    exact = [r for r in rows if r["backend"] == "exact"]
    assert all(float(r["success_probability"]) == 1.0 and float(r["residual_gap"]) == 0.0 for r in exact)


def test_reads_energies_are_recomputed_on_the_bqm_and_resume_recomputes_nothing(tiny, tmp_path):
    counting = Counting()
    settings = CompareSettings(reads=5, repeats=2, seed=3)
    first = compare_backends(tiny, {"steepest": counting}, settings, tmp_path / "c")
    assert counting.calls == 4 + 1  # and one untimed warm-up call
    for unit in first.units:
        inst = next(i for i in tiny if i.name == unit["instance"])
        best = {int(k): v for k, v in unit["best_sample"].items()}
        assert min(unit["energies"]) == pytest.approx(inst.bqm.energy(best), rel=1e-12)
        assert unit["seed"] is not None and unit["warm_start"]
    again = compare_backends(tiny, {"steepest": counting}, settings, tmp_path / "c", resume=True)
    assert counting.calls == 4 + 1  # nothing to run: no warm-up either
    assert [r.best_energy for r in again.rows] == [r.best_energy for r in first.rows]
    with pytest.raises(InvalidArgumentError, match="settings differ"):
        compare_backends(tiny, {"steepest": counting}, CompareSettings(reads=6, repeats=2, seed=3),
                         tmp_path / "c", resume=True)
    store = tmp_path / "c" / "store.json"  # a store from before every read started warm: not mixed in
    old = json.loads(store.read_text())
    assert old["settings"].pop("warm_start_reads") == "every"
    store.write_text(json.dumps(old))
    with pytest.raises(InvalidArgumentError, match="warm_start_reads: '<absent>' -> 'every'"):
        compare_backends(tiny, {"steepest": counting}, settings, tmp_path / "c", resume=True)


def test_a_resume_on_other_qubos_of_the_same_names_is_refused(tiny, tmp_path):
    """An ``--instances`` folder exported again from another model keeps its neurons' names: the resume mixed the
    stored calls and references with calls on the new QUBOs (``exact`` 4 % above its own stored reference, p 0).
    Each reference now stores its neuron's digest (its BQM and warm start), and a resume on others is refused."""
    settings = CompareSettings(reads=2, repeats=1)
    compare_backends(tiny, ["exact"], settings, tmp_path / "c")
    compare_backends(tiny, ["exact"], settings, tmp_path / "c", resume=True)  # the same neurons: resumed
    other = tiny[1].bqm.copy()
    other.add_linear(next(iter(other.variables)), 0.125)
    changed = [tiny[0], dataclasses.replace(tiny[1], bqm=other)]
    with pytest.raises(InvalidArgumentError, match=f"1 neuron QUBO.* differ .*{tiny[1].name}"):
        compare_backends(changed, ["exact"], settings, tmp_path / "c", resume=True)
    warm = {**tiny[0].warm_start, next(iter(tiny[0].warm_start)): 1 - next(iter(tiny[0].warm_start.values()))}
    with pytest.raises(InvalidArgumentError, match=f"differ .*{tiny[0].name}"):
        compare_backends([dataclasses.replace(tiny[0], warm_start=warm), tiny[1]], ["exact"], settings,
                         tmp_path / "c", resume=True)


class SlowFirst(Counting):
    """A backend whose first call in the process pays a one-off cost (numba loading its kernels, an SDK's set-up)."""

    def sample(self, bqm, **kwargs):
        if self.calls == 0:
            time.sleep(0.5)
        return super().sample(bqm, **kwargs)


def test_each_backend_gets_an_untimed_warm_up_call_except_paid_ones(tiny):
    """The first call's one-off cost is not in any timed unit: one untimed call on the smallest instance first,
    with a seed no timed unit has, and the timed units as without it; a backend whose calls cost (``dwave``,
    ``dwave-hybrid``) makes none, so there the first unit carries it."""
    settings = CompareSettings(reads=3, repeats=2, seed=1)
    slow, plain = SlowFirst(), Counting()
    result = compare_backends(tiny, {"steepest": slow}, settings)
    assert slow.calls == 2 * 2 + 1
    assert all(unit["wall_s"] < 0.5 for unit in result.units)
    reference = compare_backends(tiny, {"steepest": plain}, settings)
    assert [u["energies"] for u in result.units] == [u["energies"] for u in reference.units]
    assert [u["seed"] for u in result.units] == [u["seed"] for u in reference.units]
    paid = SlowFirst()
    charged = compare_backends(tiny, {"dwave": paid}, settings)
    assert paid.calls == 2 * 2 and max(unit["wall_s"] for unit in charged.units) >= 0.5


class _Hybrid:
    """Stands in for dwave-system's LeapHybridSampler: exact answers with a Leap hybrid solver's timing (a 3 s run,
    40 ms of it on a QPU, in microseconds)."""

    properties = {"maximum_number_of_variables": 50}
    parameters = {"time_limit": [], "label": []}

    def __init__(self, **config):
        pass

    def close(self):
        pass

    def sample(self, bqm, **kwargs):
        ss = dimod.ExactSolver().sample(bqm).truncate(1)
        ss.info.update(run_time=3_000_000, charge_time=3_000_000, qpu_access_time=40_000)
        return ss


def test_a_hybrid_solvers_solver_time_is_its_run_time_not_its_qpu_part(tiny, fake_dwave_token, monkeypatch):
    """``dwave-hybrid`` reports its own ``run_time`` and the QPU's part of it as ``qpu_access_time``: the solver
    time and TTS99 were that part (0.04 s of a 3 s run, 75 times too fast against the other backends)."""
    from qannealq.backends import get_sampler

    monkeypatch.setattr("dwave.system.LeapHybridSampler", _Hybrid)
    result = compare_backends(tiny[:1], {"dwave-hybrid": get_sampler("dwave-hybrid", time_limit=5)},
                              CompareSettings(reads=1, repeats=1))
    row = result.rows[0]
    assert row.success_probability == 1.0
    assert row.solver_seconds == pytest.approx(3.0) == row.tts99_solver_seconds
    assert row.qpu_access_seconds == pytest.approx(0.04)


def test_a_decomposed_backend_warms_up_on_one_sub_problem(tiny):
    """The warm-up call solved a whole decomposed neuron (200 s of gurobi's on an MNIST neuron of 599 variables)
    to load what one call of the size the decomposition sends loads."""
    messages = []

    class Reporter(LogReporter):
        def message(self, text):
            messages.append(text)

    result = compare_backends(tiny, ["exact"], CompareSettings(reads=1, repeats=1, capacity={"exact": 8}),
                              reporter=Reporter())
    assert all(unit["decomposed"] for unit in result.units)
    smallest = min(tiny, key=lambda i: i.num_variables).name
    assert any(m.startswith(f"exact: one untimed warm-up call on the 8 most coupled variables of {smallest} (its "
                            "sub-problems' size)") for m in messages), messages


def test_the_warm_up_part_is_the_most_coupled_variables(tiny):
    """A decomposed backend's warm-up solved a neuron's first variables (MNIST: the image's top rows, faint
    pixels): ``gurobi`` took 0.01 s on them, where the decomposition's sub-problems of strongly coupled variables
    took its 10 s each, so the time said for a study was a thousand times too short."""
    from qannealq._compare_pace import part

    instance = max(tiny, key=lambda i: i.num_variables)
    sub = part(instance, 6)
    strength = {v: sum(abs(b) for (a, c), b in instance.bqm.quadratic.items() if v in (a, c))
                for v in instance.bqm.variables}
    assert set(sub.bqm.variables) == set(sorted(strength, key=lambda v: -strength[v])[:6])
    assert set(sub.bqm.variables) != set(list(instance.bqm.variables)[:6])  # not the first ones
    assert all(sub.bqm.get_linear(v) == instance.bqm.get_linear(v) for v in sub.bqm.variables)
    assert all(sub.bqm.get_quadratic(a, b) == instance.bqm.get_quadratic(a, b) for a, b in sub.bqm.quadratic)
    assert sub.warm_start == {v: instance.warm_start[v] for v in sub.bqm.variables} and sub.reference is None


def test_a_comparison_that_fails_lets_go_of_its_folder(tiny, tmp_path):
    """A traceback that is kept (a notebook keeps the last one) holds the failed call's frames, and with them
    its results store: the folder's lock stayed held until the kernel ended."""
    import subprocess
    import sys

    class Failing(Counting):
        def sample(self, bqm, **kwargs):
            if self.calls >= 2:
                raise RuntimeError("backend gone")
            return super().sample(bqm, **kwargs)

    with pytest.raises(RuntimeError, match="backend gone") as failed:
        compare_backends(tiny, {"steepest": Failing()}, CompareSettings(reads=1, repeats=2), out=tmp_path / "c")
    assert failed.traceback  # kept, as a notebook keeps it
    probe = subprocess.run([sys.executable, "-c", "import sys; from qannealq.store import FolderLock; "
                            "FolderLock.acquire(sys.argv[1]); print('held')", str(tmp_path / "c")],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "held", probe.stderr[-500:]


class DWaveSampler(Counting):
    """Named as dwave-system's QPU sampler."""


class Wrapping(dimod.ComposedSampler, Counting):
    """A composite around a child (``child``), as dwave-system's ``EmbeddingComposite`` is."""

    def __init__(self, child) -> None:
        Counting.__init__(self)
        self._children = [child]

    @property
    def children(self) -> list:
        return self._children


def test_a_paid_sampler_is_known_by_its_word_its_class_or_its_child():
    """No warm-up call for a sampler that says ``paid_calls`` (our ``dwave`` and ``dwave-hybrid`` classes),
    one of dwave-system's QPU or Leap classes under any registered name, or a composite around one; the mock
    QPU and a plain sampler get one."""
    from qannealq.backends.dwave import MockQPUSampler, QPUSampler
    from qannealq.backends._dwave_cloud import HybridSampler
    from qannealq.compare import paid

    assert QPUSampler.paid_calls and HybridSampler.paid_calls and not MockQPUSampler.paid_calls
    assert paid("my-qpu", DWaveSampler()) and paid("x", Wrapping(Wrapping(DWaveSampler())))
    own = Counting()
    own.paid_calls = True
    assert paid("x", own) and paid("x", Wrapping(own)) and paid("dwave", Counting())
    assert not paid("sa", Counting()) and not paid("x", Wrapping(Counting()))
    assert not paid("dwave-mock", MockQPUSampler())


def test_reference_is_proven_by_exact_and_gurobi_agrees(tiny):
    pytest.importorskip("gurobipy")
    from qannealq.backends import get_sampler

    for inst in tiny:
        ref = reference_optimum(inst)
        assert ref.provenance == "proven" and ref.method == "exact"
        with get_sampler("gurobi") as gurobi:
            ss = gurobi.sample(inst.bqm, seed=0)
        assert ss.info["proved_optimal"]
        assert ss.first.energy == pytest.approx(ref.energy, rel=1e-9)
        assert inst.bqm.energy(ref.sample) == pytest.approx(ref.energy, rel=1e-12)


def test_reference_is_best_known_where_nothing_proves_it():
    problem = random_layer(np.random.default_rng(7), 59, 1, samples=300, dead=0).problem(4)
    inst = instances_from_layer(problem, [0], {"dataset": "random"}, "random")[0]
    assert inst.num_variables > 24
    ref = reference_optimum(inst, ReferenceOptions(proof_seconds=0.2, long_reads=8, long_sweeps=200))
    assert ref.provenance == "best-known"
    assert ref.energy <= inst.baselines["gptq-restricted"] * (1 + 1e-12)
    assert inst.bqm.energy(ref.sample) == pytest.approx(ref.energy, rel=1e-12)
    lower = settle(ref, {"sa": ref.energy * 0.99, "tabu": ref.energy})
    assert lower.provenance == "best-known" and lower.method == "backend sa" and lower.energy == ref.energy * 0.99
    assert settle(ref, {"tabu": ref.energy * 1.5}) is ref


def test_bad_settings_are_refused():
    with pytest.raises(InvalidArgumentError, match="--reads"):
        CompareSettings(reads=0)
    with pytest.raises(InvalidArgumentError, match="--eps"):
        CompareSettings(eps=-1.0)
    for key in ("eps", "loose_eps"):  # accepted, and every read of every backend was a success (p 1)
        with pytest.raises(InvalidArgumentError, match=f"--{key.replace('_', '-')}=inf must be a finite number"):
            CompareSettings(**{key: math.inf})
    with pytest.raises(InvalidArgumentError, match="not compared"):
        compare_backends(instances_from_layer(random_layer(np.random.default_rng(0), 6, 1).problem(4), [0], {},
                                              "r"), ["sa"], CompareSettings(sampler_options={"qaoa": {"reps": 2}}))
    with pytest.raises(InvalidArgumentError, match="--solver-seed=-1 must be an integer in 0..2"):
        CompareSettings(seed=-1)  # numpy's SeedSequence traceback, after training, before
    with pytest.raises(InvalidArgumentError, match=r"--capacity names backends \['exact'\] that are not compared "
                                                   r"\(sa\)"):  # dropped without a word before
        compare_backends(instances_from_layer(random_layer(np.random.default_rng(0), 6, 1).problem(4), [0], {},
                                              "r"), ["sa"], CompareSettings(capacity={"exact": 4}))


def test_neurons_of_several_layers_get_a_scaling_plot(tmp_path):
    """Annealer studies plot time-to-solution against the problem's size: with neurons of two or more layers (the
    benchmark library's 17, 60 and 600 variables), ``scaling.png`` draws each backend's median gap and TTS99 per
    group of neurons against the group's size."""
    from qannealq._compare_plots import plot_all
    from qannealq._compare_report import size_group

    assert size_group("mnist-L0-int2-n12") == "mnist-L0" and size_group("odd") == "odd"
    layer = random_layer(np.random.default_rng(3), 5, 2)
    small = instances_from_layer(layer.problem(2), [0, 1], {}, "small-L0-int2")
    wide = instances_from_layer(random_layer(np.random.default_rng(4), 9, 2).problem(2), [0, 1], {}, "wide-L0-int2")
    result = compare_backends(small + wide, ["sa", "exact"], CompareSettings(reads=4, repeats=1))
    assert {size_group(n.instance) for n in result.neurons} == {"small-L0", "wide-L0"}
    summary = {(b.backend, b.group): b.neurons for b in result.backends}  # a row per backend and layer
    assert summary == {(b, g): 2 for b in ("sa", "exact") for g in ("small-L0", "wide-L0")}
    assert "group" in format_summary(result).splitlines()[0]
    paths = plot_all(result, tmp_path)
    assert tmp_path / "scaling.png" in paths and (tmp_path / "scaling.png").stat().st_size > 1000
    alone = compare_backends(small, ["sa"], CompareSettings(reads=4, repeats=1))
    assert [b.group for b in alone.backends] == [""] and "group" not in format_summary(alone).splitlines()[0]
    assert [p.name for p in plot_all(alone, tmp_path / "alone")] == ["gap_vs_tts.png", "success_probability.png",
                                                                    "energy_distribution.png"]


def test_a_capacity_above_the_backends_own_limit_is_refused_before_any_call(tiny):
    """``--capacity exact=30`` (or ``exact:capacity=30``) made sub-problems exact refuses: the comparison failed at
    exact's first decomposed call, after the training, the references and the backends before it, naming no
    option. Now refused as the samplers are built (before any training from the command line); at the limit and
    for a backend that states none, a capacity is taken."""
    for settings, flag in ((CompareSettings(capacity={"exact": 30}), "--capacity exact=30"),
                           (CompareSettings(sampler_options={"exact": {"capacity": 25}}),
                            "--sampler-option exact:capacity=25")):
        with pytest.raises(InvalidArgumentError, match=f"{flag} is above the 24 variables .* give at most 24"):
            compare_backends(tiny, ["exact"], settings)
    check_backend_options(["exact", "sa"], CompareSettings(reads=1, repeats=1, capacity={"exact": 24, "sa": 500}))


def test_the_loose_target_is_at_least_as_loose_as_the_first(tmp_path, capsys):
    """``--loose-eps`` below ``--eps`` was accepted, and with ``--eps 0.05`` alone the "loose" target (0.01) was the
    stricter one: ``p (loose)`` read below ``p``. Left out, it is now 0.01 or ``--eps`` where that is larger; given
    below ``--eps`` it is refused naming both."""
    assert CompareSettings().loose_eps == 0.01 and CompareSettings(eps=1e-3, loose_eps=0.2).loose_eps == 0.2
    assert CompareSettings(eps=0.05).loose_eps == 0.05
    with pytest.raises(InvalidArgumentError, match=r"--loose-eps=0.01 is below --eps=0.05"):
        CompareSettings(eps=0.05, loose_eps=0.01)
    argv = ["compare", "--input-size", "4", "--bits", "3", "--neurons", "0", "--backends", "exact", "--repeats",
            "1", "--eps", "0.05"]
    assert main([*argv, "--loose-eps", "0.01", "--out", str(tmp_path / "refused")]) == 2
    assert "--loose-eps=0.01 is below --eps=0.05" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "c")]) == 0
    assert ResultStore.stored_settings(tmp_path / "c", "compare")["loose_eps"] == 0.05
    assert "success: a read with E <= E_ref + 0.05 |E_ref| (p), and + 0.05 |E_ref| (p (loose))" in \
        capsys.readouterr().out  # the summary says which targets its p columns count
    assert main(["compare", "--resume", str(tmp_path / "c"), "--eps", "0.05"]) == 0  # the stored value resumes


def test_a_call_is_marked_warm_started_only_where_the_start_is_used(tiny):
    """A capacity-limited backend comes wrapped in the decomposition, which lists ``initial_states``: a BQM that
    fits passed straight through to a child that drops them (``exact``; the QPU's forward anneal), and the call
    was still recorded as warm-started."""
    plain = compare_backends(tiny, ["exact", "steepest"], CompareSettings(reads=2, repeats=1))
    assert {(r.backend, r.warm_start) for r in plain.rows} == {("exact", False), ("steepest", True)}
    split = compare_backends(tiny, ["exact"], CompareSettings(reads=2, repeats=1, capacity={"exact": 8}))
    assert {(r.backend, r.warm_start, r.decomposed) for r in split.rows} == {("exact", True, True)}


class Recording(Counting):
    """Steepest descent that keeps each call's ``initial_states`` and ``num_reads``."""

    def __init__(self) -> None:
        super().__init__()
        self.given = []

    def sample(self, bqm, **kwargs):
        self.given.append((kwargs.get("initial_states"), kwargs.get("num_reads")))
        return super().sample(bqm, **kwargs)


def test_every_read_starts_from_the_warm_start_so_p_does_not_depend_on_reads(tiny):
    """One warm row was given: sa, tabu and steepest (dwave-samplers) started the other num_reads - 1 reads at
    random, while layer-sa starts all from the warm start, so p and TTS99 fell with --reads (steepest on 4x4
    digits: p 0.25 at 4 reads, 0.05 at 20)."""
    p = {}
    for reads in (4, 20):
        spy = Recording()
        result = compare_backends(tiny, {"steepest": spy}, CompareSettings(reads=reads, repeats=1))
        for (states, num_reads), instance in zip(spy.given[1:], tiny):  # after the warm-up call
            rows, labels = states
            assert num_reads == reads and rows.shape == (reads, instance.num_variables)
            assert (rows == [[instance.warm_start[v] for v in labels]]).all()
        for unit in result.units:  # a deterministic descent from one start: every read the same
            assert len(set(unit["energies"])) == 1 and unit["reads"] == reads
        p[reads] = [n.success_probability for n in result.neurons]
    assert p[4] == p[20] and set(p[4]) <= {0.0, 1.0}

def test_one_backend_name_alone_is_that_backend(tiny):
    """``compare_backends(instances, "steepest")`` compared backends "s", "t", "e"... (refused as unknown)."""
    result = compare_backends(tiny, "steepest", CompareSettings(reads=2, repeats=1))
    assert {row.backend for row in result.rows} == {"steepest"}


def test_an_alias_is_its_backend_for_duplicates_options_capacities_and_seeds(tiny):
    """``compare_backends(instances, ["sa", "neal"])`` ran sa twice, as two columns (``--backends sa,neal`` was
    refused); ``neal`` drew other call seeds than ``sa`` (other energies for one solver and --solver-seed), and
    ``--sampler-option sa:...`` or ``--capacity sa=N`` with ``--backends neal`` were refused as naming a backend
    that is not compared."""
    settings = CompareSettings(reads=2, repeats=1, warm_start=False, sampler_options={"*": {"num_sweeps": 2}})
    energies = {name: [u["energies"] for u in compare_backends(tiny, [name], settings).units]
                for name in ("sa", "neal")}
    assert energies["sa"] == energies["neal"]
    with pytest.raises(InvalidArgumentError, match="samplers=sa,neal names sa more than once"):
        compare_backends(tiny, ["sa", "neal"], settings)
    given = CompareSettings(sampler_options={"sa": {"num_sweeps": 3}}, capacity={"neal": 8})
    assert given.options_for("neal") == {"num_sweeps": 3} and given.capacity_for("sa") == 8
    check_backend_options(["neal"], given)
    with pytest.raises(InvalidArgumentError, match="--capacity=sa,neal names sa more than once"):
        CompareSettings(capacity={"sa": 8, "neal": 9})


def test_an_option_without_a_backend_goes_to_every_backend_that_takes_it(tiny, tmp_path, capsys):
    """``--sampler-option num_sweeps=1`` was refused (``compare`` took BACKEND:KEY=VALUE alone): it now reaches
    every compared backend that takes the key, a backend's own value wins, and a key none takes is refused."""
    from qannealq.backends import get_sampler

    seen: list[dict] = []

    class Recording(Counting):
        def sample(self, bqm, **kwargs):
            seen.append(kwargs)
            return super().sample(bqm, **kwargs)

    settings = CompareSettings(reads=2, repeats=1, sampler_options={"*": {"num_sweeps": 1, "timeout": 5},
                                                                    "tabu": {"timeout": 7}})
    assert settings.options_for("sa", get_sampler("sa")) == {"num_sweeps": 1}
    assert settings.options_for("tabu", get_sampler("tabu")) == {"timeout": 7}
    assert settings.options_for("exact", get_sampler("exact")) == {}
    result = compare_backends(tiny, {"sa": None, "steepest": Recording(), "tabu": None}, settings)
    assert len(seen) >= 2 and all(set(kw) <= {"initial_states", "seed", "num_reads"} for kw in seen)
    gaps = {b: max(r.residual_gap for r in result.rows if r.backend == b) for b in ("sa", "tabu")}
    assert gaps["sa"] > 0 == gaps["tabu"]  # one sweep of sa from its hot end cannot keep the warm start
    with pytest.raises(InvalidArgumentError, match=r"--sampler-option num_sweepz: none of the compared backends "
                                                   r"\(sa, exact\) takes this option"):
        compare_backends(tiny, ["sa", "exact"], CompareSettings(sampler_options={"*": {"num_sweepz": 1}}))
    argv = ["compare", "--input-size", "4", "--bits", "3", "--neurons", "0:2", "--backends", "sa,exact", "--reads",
            "2", "--repeats", "1", "--sampler-option", "num_sweeps=1", "--out", str(tmp_path / "c")]
    assert main(argv) == 0
    stored = ResultStore.stored_settings(tmp_path / "c", "compare")
    assert stored["sampler_options"] == {"*": {"num_sweeps": "1"}}  # values as their repr (redact)
    capsys.readouterr()
    assert main(["compare", "--resume", str(tmp_path / "c")]) == 0
    assert "resuming" in capsys.readouterr().out


def test_layer_is_a_position_and_a_module_name_given_as_one_says_which_position():
    """``--layer 2`` on a Sequential whose Linear modules are '0' and '2' read "out of range: the model has Linear
    layers 0..1 (0, 2)", which did not say that a number is a position and module '2' is position 1."""
    from qannealq._compare_instances import layer_index

    assert [layer_index(["0", "2"], x) for x in (0, "1", 1, -1, "-2")] == [0, 1, 1, 1, 0]
    assert layer_index(["fc1", "fc2"], "fc2") == 1
    with pytest.raises(InvalidArgumentError, match=r"--layer='2' is out of range: a number is a position among the "
                                                   r"model's Linear layers, 0..1 \(or -1..-2 from the end; modules "
                                                   r"'0', '2' in forward order\); module '2' is position 1: give "
                                                   r"--layer 1$"):
        layer_index(["0", "2"], "2")
    with pytest.raises(InvalidArgumentError, match=r"--layer=-3 is out of range: .*, 0..1 \(or -1..-2 from the end; "
                                                   r"modules 'fc1', 'fc2' in forward order\)$"):
        layer_index(["fc1", "fc2"], -3)
    with pytest.raises(InvalidArgumentError, match=r"--layer='fc3' is not a Linear layer of the model: give a "
                                                   r"position 0..1 or one of \['fc1', 'fc2'\]"):
        layer_index(["fc1", "fc2"], "fc3")


def test_the_progress_says_each_slow_backends_time_left_from_its_own_calls(tiny, monkeypatch):
    """The bar's own rate mixed backends whose calls differ a thousandfold (``exact``'s 1 s calls, then
    ``gurobi`` decomposed at 200 s a call read "02:06 left" for more than an hour)."""
    import contextlib

    import qannealq.compare

    statuses, now, real = [], [0.0], qannealq.compare.run_unit

    def three_seconds(*args, **kwargs):  # each call takes 3 s on the clock the loop reads
        record = real(*args, **kwargs)
        now[0] += 3.0
        return record

    class Bar:
        def update(self, k):
            pass

        def status(self, text):
            statuses.append(text)

    class Reporter:
        def message(self, text):
            pass

        @contextlib.contextmanager
        def progress(self, total, desc, unit):
            yield Bar()

    monkeypatch.setattr(qannealq.compare.time, "perf_counter", lambda: now[0])
    monkeypatch.setattr(qannealq.compare, "run_unit", three_seconds)
    compare_backends(tiny, ["steepest"], CompareSettings(reads=1, repeats=2), reporter=Reporter())
    calls = [t for t in statuses if "warm-up" not in t]
    assert len(calls) == 4 and "left" not in calls[0] and "about" not in calls[0]
    assert [t.split("(", 1)[1] for t in calls[1:]] == ["3 s a call; this backend about 9 s more)",
                                                       "3 s a call; this backend about 6 s more)",
                                                       "3 s a call; this backend about 3 s more)"]
    assert duration(7199) == "120 min" and duration(7200) == "2.0 h"
    assert time_left([0.2, 0.4], 5) == ""  # fast calls: the bar's own rate suffices


def test_a_long_study_is_said_after_the_warm_ups_before_any_timed_call(tiny, monkeypatch):
    """``compare --dataset mnist`` with its default backends ran for hours, with nothing said before the slow
    backend's first call (``gurobi`` decomposed, 100-200 s a call, after every faster backend's calls). Every
    backend now warms up before the first timed call, and one whose calls may pass ``LONG_STUDY`` says how long
    from its warm-up: a whole call's time, or a decomposed call's sub-problems from its patience to
    ``--max-calls``."""
    import qannealq._compare_pace as pace
    import qannealq.compare

    now, events = [0.0], []
    real = qannealq.compare.run_unit

    def three_seconds(*args, **kwargs):  # every call (the warm-ups' too) takes 3 s on the fake clock
        events.append("call")
        record = real(*args, **kwargs)
        now[0] += 3.0
        return record

    class Reporter:
        def message(self, text):
            events.append(text)

        @contextlib.contextmanager
        def progress(self, total, desc, unit):
            yield types.SimpleNamespace(update=lambda k: None, status=lambda text: None)

    monkeypatch.setattr(qannealq.compare.time, "perf_counter", lambda: now[0])
    monkeypatch.setattr(qannealq.compare, "run_unit", three_seconds)
    settings = CompareSettings(reads=1, repeats=2, capacity={"exact": 8}, max_calls=10)
    compare_backends(tiny, ["steepest", "exact"], settings, reporter=Reporter())
    assert not [e for e in events if "may take" in e]  # 12 s, and at most 2 min: under LONG_STUDY's 10 min
    monkeypatch.setattr(pace, "LONG_STUDY", 10.0)
    events.clear()
    compare_backends(tiny, ["steepest", "exact"], settings, reporter=Reporter())
    said = [e for e in events if e != "call"]
    assert said[1] == ("steepest: its 4 call(s) may take 12 s (3.0 s a call on the smallest neuron); fewer --neurons "
                       "or --repeats or --backends without steepest shorten the study")
    patience = [math.ceil(2 * instance.num_variables / 8) for instance in tiny]  # rounds without a gain
    assert said[3] == (f"exact: its 4 call(s) may take {3 * 2 * sum(patience)} s to 2 min (one sub-problem of 8 "
                       f"variables took 3.0 s, and each call solves {min(patience)} (patience) to 10 (--max-calls) "
                       "of them); fewer --neurons or --repeats, a lower --max-calls, or --backends without exact "
                       "shorten the study")
    assert events.index(said[3]) < events.index("call", events.index(said[3]))  # both said before a timed call
    assert events[:events.index(said[3]) + 1].count("call") == 2  # the two warm-ups alone


CHEAP = ["compare", "--input-size", "4", "--bits", "3", "--neurons", "0:2", "--backends", "exact,steepest,sa",
         "--reads", "4", "--repeats", "2", "--sampler-option", "sa:num_sweeps=50", "--solver-seed", "5"]
KILL_AFTER = 7  # units: the 2 references, exact's 4 calls, then the first steepest call
_KILLED = f"""
import os, signal, sys
from qannealq.cli import main
from qannealq.store import ResultStore
put, done = ResultStore.put, []
def put_then_crash(self, key, record):
    put(self, key, record)
    done.append(key)
    if len(done) == {KILL_AFTER}:
        os.kill(os.getpid(), signal.SIGKILL)  # a crash right after this unit is stored: no handler runs
ResultStore.put = put_then_crash
sys.exit(main(sys.argv[1:]))
"""


def _units(out) -> dict:
    """compare.json's calls without their times, by (backend, instance, repeat), and the references."""
    data = json.loads((out / "compare.json").read_text())
    timed = {"wall_s", "solver_s", "qpu_access_s", "timing"}
    units = {(u["backend"], u["instance"], u["repeat"]): {k: v for k, v in u.items() if k not in timed}
             for u in data["units"]}
    return {"units": units, "references": {k: {**v, "seconds": None} for k, v in data["references"].items()}}


def test_killed_compare_resumed_alone_equals_an_uninterrupted_one(tiny, tmp_path, capsys):
    killed, whole = tmp_path / "killed", tmp_path / "whole"  # ``tiny`` has cached the model the subprocess loads
    proc = subprocess.run([sys.executable, "-c", _KILLED, *CHEAP, "--out", str(killed)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    finished = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in (killed / "units").glob("*.json")}
    assert len(finished) == KILL_AFTER and not (killed / "compare.json").exists()

    assert main(["compare", "--resume", str(killed)]) == 0  # the stored options: none repeated
    assert f"{KILL_AFTER} finished unit(s) kept, not recomputed" in capsys.readouterr().out
    after = {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in (killed / "units").glob("*.json")}
    assert all(after[name] == stamp for name, stamp in finished.items()) and len(after) == 2 + 3 * 2 * 2

    assert main([*CHEAP, "--out", str(whole)]) == 0
    assert _units(killed) == _units(whole) and len(_units(whole)["units"]) == 12
    assert main([*CHEAP, "--resume", str(whole)]) == 0  # every option repeated, as before bare resumes


def test_compare_resume_refuses_other_options_and_folders_that_are_not_comparisons(tiny, tmp_path, capsys):
    out = tmp_path / "c"
    compare_backends(tiny, ["steepest"], CompareSettings(reads=2, repeats=1), out,
                     source=Selection(ModelConfig(dataset="digits", input_size=4), 0, 3, "0:2").describe())
    capsys.readouterr()
    assert main(["compare", "--resume", str(out), "--reads", "5", "--repeats", "1", "--neurons", "0:3",
                 "--backends", "steepest,exact"]) == 2
    err = capsys.readouterr().err
    assert f"--resume {out}: the settings differ from the stored run's (" in err
    assert "reads: 2 -> 5" in err and "source.neurons: '0:2' -> '0:3'" in err and "backends: ['steepest'] -> " in err
    assert "repeats" not in err  # the repeated equal option is no difference

    ResultStore.open(tmp_path / "run", "run", {})
    assert main(["compare", "--resume", str(tmp_path / "run")]) == 2
    assert "holds a 'run' run, not a 'compare' run; give a folder that `qannealq compare` wrote" in capsys.readouterr().err
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "store.json").write_text(json.dumps({"format": 1, "command": "compare"}))
    assert main(["compare", "--resume", str(tmp_path / "bare")]) == 2
    assert "store.json lacks the comparison's settings (source, instances, backends, reads" in capsys.readouterr().err
    assert main(["compare", "--resume", str(tmp_path / "none")]) == 2
    assert "no store.json" in capsys.readouterr().err


class TokenCounting(Counting):
    """:class:`Counting` that also takes a secret ``token`` (and drops it)."""

    @property
    def parameters(self) -> dict:
        return {**self.inner.parameters, "token": []}

    def sample(self, bqm, token=None, **kwargs):
        return super().sample(bqm, **kwargs)


def test_compare_resume_asks_for_a_secret_again_and_never_stores_or_shows_it(tiny, tmp_path, capsys):
    secret, out = "not-a-real-token-456", tmp_path / "c"
    source = Selection(ModelConfig(dataset="digits", input_size=4), 0, 3, "0:2")
    settings = CompareSettings(reads=2, repeats=1, sampler_options={"steepest": {"token": secret, "num_reads": 3}})
    sampler = TokenCounting()
    first = compare_backends(tiny, {"steepest": sampler}, settings, out, source=source.describe())
    capsys.readouterr()
    assert main(["compare", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert "secret sampler option 'token'" in err and "(--sampler-option steepest:token=...)" in err
    assert main(["compare", "--resume", str(out), "--sampler-option", f"steepest:token={secret}", "--reads", "9"]) == 2
    err = capsys.readouterr().err
    assert "reads: 2 -> 9" in err and "token" not in err and secret not in err

    stored = ResultStore.stored_settings(out, "compare")
    with pytest.raises(InvalidArgumentError, match="secret sampler option 'token'") as caught:
        CompareJob.from_stored(stored, out)
    assert secret not in str(caught.value)
    job = CompareJob.from_stored(stored, out, settings={"sampler_options": {"steepest": {"token": secret}}})
    assert job.settings == settings and job.selection == source and job.backends == ("steepest",) and job.resume
    again = compare_backends(tiny, {"steepest": sampler}, job.settings, out, resume=True,
                             source=job.selection.describe())
    assert sampler.calls == 2 + 1 and [r.best_energy for r in again.rows] == [r.best_energy for r in first.rows]
    assert not any(secret.encode() in p.read_bytes() for p in out.rglob("*") if p.is_file())


def test_a_qpu_backends_embeddings_are_found_before_its_timed_calls(tiny, tmp_path, monkeypatch):
    """``dwave-mock``'s first call at each neuron size loaded and checked its cached clique embeddings of that
    size (0.17 s against 0.01-0.02 s for its other calls), inside that neuron's timed call. They are now found
    before the timed calls, for every size a call solves whole."""
    import qannealq.compare
    from qannealq.backends import get_sampler
    from qannealq.backends._dwave_cliques import CliqueCache

    monkeypatch.setenv("QANNEALQ_CACHE", str(tmp_path / "cache"))
    sizes = {instance.bqm.num_variables for instance in tiny}
    assert len(sizes) == 2
    timed, got = [False], []
    real_get, real_run = CliqueCache.get, qannealq.compare.run_unit

    def get(self, size, count):
        got.append((size, timed[0]))
        return real_get(self, size, count)

    def run_unit(sampler, name, instance, repeat, settings):
        timed[0] = repeat < settings.repeats  # the warm-up's repeat index lies past the timed ones
        try:
            return real_run(sampler, name, instance, repeat, settings)
        finally:
            timed[0] = False

    monkeypatch.setattr(CliqueCache, "get", get)
    monkeypatch.setattr(qannealq.compare, "run_unit", run_unit)
    compare_backends(tiny, {"dwave-mock": get_sampler("dwave-mock")}, CompareSettings(reads=5, repeats=1))
    assert {size for size, _ in got} == sizes and not any(during for _, during in got)


def test_names_that_differ_only_where_a_store_key_does_not_are_refused():
    """Instance ``n-0`` took the reference optimum computed for ``n 0`` (1.94 for its own 13.46, with no results
    folder), and backends ``my sa`` and ``my-sa`` shared their units, so a resume gave ``my-sa``'s calls twice."""
    a, b = instances_from_layer(random_layer(np.random.default_rng(0), 6, 2).problem(2), [0, 1], {}, "r")
    a, b = dataclasses.replace(a, name="n 0"), dataclasses.replace(b, name="n-0")
    with pytest.raises(InvalidArgumentError, match="instances: 'n 0' and 'n-0' differ only"):
        compare_backends([a, b], ["exact"], CompareSettings(repeats=1))
    from qannealq.backends import get_sampler
    with pytest.raises(InvalidArgumentError, match="samplers: 'my sa' and 'my-sa' differ only"):
        compare_backends([a], {"my sa": get_sampler("exact"), "my-sa": get_sampler("exact")},
                         CompareSettings(repeats=1))


def test_a_shared_option_no_compared_backend_takes_is_refused_listing_their_keys(tiny):
    """The refusal sent the user to ``qannealq backends`` for each backend's keys, which that command does not list
    (its columns: status, capacity, summary): ``compare --backends sa --sampler-option num_sweepz=3`` left the right
    spelling to be found in the source. It now lists the keys each compared backend takes, as ``run``'s does."""
    settings = CompareSettings(sampler_options={"*": {"num_sweepz": 1}})
    with pytest.raises(InvalidArgumentError) as refused:
        compare_backends(tiny, ["sa", "steepest"], settings)
    message = str(refused.value)
    assert "qannealq backends" not in message
    assert re.search(r"sa: [a-z_, ]*\bnum_sweeps\b", message)
    assert re.search(r"steepest: [a-z_, ]*\bnum_reads\b", message)


def test_exact_makes_one_read_whatever_num_reads_the_other_backends_get(tiny):
    """``--sampler-option num_reads=5`` reached ``exact``, which returned its 5 lowest states as 5 reads: p 0.2 and a
    TTS99 4x its call on neurons it had solved. A shared one now passes it by; its own is refused before any call."""
    settings = CompareSettings(reads=3, repeats=1, sampler_options={"*": {"num_reads": 5}})
    result = compare_backends(tiny[:1], ["exact", "steepest"], settings)
    exact = next(r for r in result.rows if r.backend == "exact")
    assert exact.reads == 1 and exact.success_probability == 1.0
    assert exact.tts99_solver_seconds == exact.solver_seconds
    assert next(r for r in result.rows if r.backend == "steepest").reads == 5
    with pytest.raises(InvalidArgumentError, match="--sampler-option exact:num_reads: 'exact' makes one read per call"):
        compare_backends(tiny[:1], ["exact"], CompareSettings(sampler_options={"exact": {"num_reads": 3}}))
    with pytest.raises(InvalidArgumentError, match="--sampler-option num_reads: none of the compared backends"):
        compare_backends(tiny[:1], ["exact"], CompareSettings(sampler_options={"*": {"num_reads": 3}}))


def test_exact_under_another_name_makes_one_read_too(tiny):
    """``{"exact-30": ExactSampler(30)}`` (a name of the caller's) got ``num_reads=--reads`` by its name: its 10
    lowest states came back as 10 reads, p 0.1 and a TTS99 5x its call on neurons it had solved."""
    from qannealq.backends import get_sampler

    result = compare_backends(tiny[:1], {"exact-30": get_sampler("exact", max_variables=30)},
                              CompareSettings(reads=10, repeats=1))
    (row,) = result.rows
    assert row.reads == 1 and row.success_probability == 1.0 and row.residual_gap == 0.0
    assert row.tts99_solver_seconds == row.solver_seconds


def test_qaoas_one_call_floor_holds_under_another_name(tiny):
    """The one-call floor of ``qaoa``'s TTS99 went by the name compared: QAOA compared as ``qaoa-2`` had a TTS99 of
    2.6 ms from its 0.45 s call. It now goes by the sampler's own name too (a stored unit says which)."""
    from qannealq.backends import get_sampler

    class Shots(dimod.Sampler):
        """Stands for QAOA (its ``name``): 64 shots of the optimum from one call."""

        name, parameters, properties = "qaoa", {}, {}

        def sample(self, bqm, **kwargs):
            best = get_sampler("exact").sample(bqm).record.sample
            ss = dimod.SampleSet.from_samples_bqm((np.repeat(best, 64, axis=0), list(bqm.variables)), bqm)
            ss.info["timing"] = {"sampling_ns": 64_000_000}
            return ss

    result = compare_backends(tiny[:1], {"qaoa-2": Shots()}, CompareSettings(repeats=1))
    (row,), (neuron,) = result.rows, result.neurons
    assert row.reads == 64 and row.success_probability == 1.0
    assert row.tts99_solver_seconds == neuron.tts99_solver_seconds == pytest.approx(0.064)  # one call, not one shot
    assert result.units[0]["one_call_floor"]


def test_qubits_and_gurobis_time_limit_go_by_the_sampler_under_another_name(tiny):
    """The ``qubits`` column and ``gurobi``'s default ``time_limit`` went by the name compared: QAOA compared as
    ``qaoa-12`` had no qubits, and Gurobi as ``gurobi-fast`` got no time limit (a search for a proof, hours on
    60-variable neurons). Both now go by the sampler's own name too."""
    from qannealq.backends import get_sampler

    class Stand(dimod.Sampler):
        """Stands for backend ``name``: the optimum, recording each call's ``time_limit``."""

        parameters, properties = {"time_limit": []}, {}

        def __init__(self, name):
            self.name, self.limits = name, []

        def sample(self, bqm, time_limit=None):
            self.limits.append(time_limit)
            return get_sampler("exact").sample(bqm).truncate(1)

    for name in ("qaoa", "qaoa-12"):
        result = compare_backends(tiny[:1], {name: Stand("qaoa")}, CompareSettings(repeats=1))
        assert result.rows[0].qubits == tiny[0].num_variables
    for name in ("gurobi", "gurobi-fast"):
        gurobi = Stand("gurobi")
        compare_backends(tiny[:1], {name: gurobi}, CompareSettings(repeats=1))
        assert gurobi.limits == [10.0, 10.0]  # the warm-up call and the timed one
    other = Stand("mine")
    result = compare_backends(tiny[:1], {"mine": other}, CompareSettings(repeats=1))
    assert other.limits == [None, None] and result.rows[0].qubits is None


def test_reading_a_samplers_name_does_not_build_a_cloud_backends_client(tiny):
    """Whether a compared sampler is ``exact`` or ``qaoa`` under another name is read from the samplers it wraps, but
    not past one of the registry's own backends: ``dwave-hybrid``'s ``child`` is its cloud client, built on first
    reading, and the check alone reached for the network (a ``RequestTimeout`` offline, before any call)."""
    from qannealq.compare import _deterministic, _one_call

    for sampler in (LazyCloud(), Wrapper(LazyCloud())):
        assert not _deterministic("hybrid-run", sampler) and not _one_call("hybrid-run", sampler)
    exact = type("Exact", (dimod.Sampler,), {"name": "exact", "parameters": {}, "properties": {}, "sample": None})
    assert _deterministic("mine", Wrapper(Wrapper(exact())))  # a caller's wrappers are still walked
