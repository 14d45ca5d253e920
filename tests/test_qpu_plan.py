"""The QPU plan before any QPU time: anneal settings, the access-time estimate (dwave-cloud-client's model on the
solver's ``problem_timing_data``) against what the mock QPU reports for the calls actually made, ``--dry-run``
making no sampling call and writing nothing, and ``--qpu-budget`` refusing before the first call."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("dwave.system")

from backend_fixtures import digits_layer, tiny_digits  # noqa: E402
from dwave.cloud.solver import StructuredSolver  # noqa: E402
from dwave.cloud.testing.mocks import qpu_pegasus_solver_data, qpu_problem_timing_data  # noqa: E402
from dwave.system.testing import MockDWaveSampler  # noqa: E402

from qannealq.backends import get_sampler  # noqa: E402
from qannealq.backends._dwave_mock import TimedMockDWaveSampler, modelled_timing  # noqa: E402
from qannealq.backends._dwave_anneal import anneal_settings, estimate_access_us  # noqa: E402
from qannealq.backends._dwave_plan import QPUBudgetError  # noqa: E402
from qannealq.cli import main  # noqa: E402
from qannealq.errors import InvalidArgumentError  # noqa: E402
from qannealq.experiment import formulate  # noqa: E402
from qannealq.solve import quantize_layer  # noqa: E402

QPU = {"initial_state": [], "anneal_schedule": []}
TIMED = qpu_pegasus_solver_data(4, problem_timing_data=qpu_problem_timing_data("advantage"))["properties"]


def test_anneal_settings():
    reverse = anneal_settings(QPU, {}, warm=True, num_reads=7)
    assert reverse.reverse and reverse.num_reads == 7 and reverse.reinitialize_state
    assert reverse.schedule == ((0.0, 1.0), (1.0, 0.35), (9.0, 0.35), (10.0, 1.0))  # ReverseAdvanceComposite's
    kwargs = reverse.solver_kwargs({5: -1})
    assert kwargs == {"num_reads": 7, "anneal_schedule": [[0.0, 1.0], [1.0, 0.35], [9.0, 0.35], [10.0, 1.0]],
                      "initial_state": {5: -1}, "reinitialize_state": True}
    assert "s=0.35" in reverse.describe() and "pause 8 us" in reverse.describe()
    custom = anneal_settings(QPU, {"reversal_point": 0.5, "reversal_pause": 0, "reinitialize_state": False}, True, 1)
    assert custom.schedule == ((0.0, 1.0), (1.0, 0.5), (2.0, 1.0)) and not custom.reinitialize_state
    for options, warm, params, why in [({}, False, QPU, "no warm start"), ({}, True, {}, "takes no initial_state"),
                                       ({"annealing_time": 50}, True, QPU, "annealing_time"),
                                       ({"anneal": "forward"}, True, QPU, "asked")]:
        forward = anneal_settings(params, options, warm, 3)
        assert not forward.reverse and forward.schedule is None and why in forward.describe()
        assert "initial_state" not in forward.solver_kwargs({1: 1})
    assert anneal_settings(QPU, {"annealing_time": 50}, True, 3).solver_kwargs()["annealing_time"] == 50
    for options, match in [({"anneal": "sideways"}, "anneal="), ({"reversal_point": 1.0}, "reversal_point"),
                           ({"reversal_pause": -1}, "reversal_pause"), ({"num_reads": 0}, "num_reads"),
                           ({"reinitialize_state": "yes"}, "reinitialize_state"),
                           ({"anneal": "reverse", "anneal_schedule": [[0, 0.5], [5, 1]]}, "start at s=1")]:
        with pytest.raises(InvalidArgumentError, match=match):
            anneal_settings(QPU, options, True, 3)


def test_a_schedule_starting_at_s1_is_a_reverse_anneal_from_the_warm_start():
    """``--sampler-option anneal_schedule=[[0,1],...]`` (a reverse schedule, which the schedule check accepts) was
    passed as a forward anneal without an ``initial_state``: ``--dry-run`` and the run ended in dwave-cloud-client's
    ``ValueError`` traceback. Under ``auto`` it is now the reverse anneal from the warm start, with its schedule."""
    schedule = [[0, 1], [5, 0.35], [13, 0.35], [18, 1]]
    settings = anneal_settings(QPU, {"anneal_schedule": schedule}, True, 3)
    assert settings.reverse and settings.schedule == ((0.0, 1.0), (5.0, 0.35), (13.0, 0.35), (18.0, 1.0))
    kwargs = settings.solver_kwargs({0: 1})
    assert kwargs["initial_state"] == {0: 1} and kwargs["anneal_schedule"] == [list(map(float, p)) for p in schedule]
    assert estimate_access_us(TIMED, 100, kwargs) > 0  # raised ValueError: initial_state not provided
    forward = anneal_settings(QPU, {"anneal_schedule": [[0, 0], [20, 1]]}, True, 3)
    assert not forward.reverse and "anneal_schedule given" in forward.describe()
    with pytest.raises(InvalidArgumentError, match="starts at s=1.*no(ne| warm start)|warm start.*none"):
        anneal_settings(QPU, {"anneal_schedule": schedule}, False, 3)
    with pytest.raises(InvalidArgumentError, match="anneal='forward' was asked"):
        anneal_settings(QPU, {"anneal_schedule": schedule, "anneal": "forward"}, True, 3)

def test_the_estimate_is_dwave_cloud_clients_on_the_solvers_timing_data():
    timing = qpu_problem_timing_data("advantage")
    solver = StructuredSolver(client=None, data=qpu_pegasus_solver_data(4, problem_timing_data=timing))
    for kwargs in [{"num_reads": 100}, {"num_reads": 10, "annealing_time": 50.0},
                   anneal_settings(QPU, {}, True, 25).solver_kwargs({0: 1})]:
        ours = estimate_access_us(solver.properties, 300, kwargs)
        theirs = solver.estimate_qpu_access_time(300, num_reads=kwargs["num_reads"],
                                                 annealing_time=kwargs.get("annealing_time"),
                                                 anneal_schedule=kwargs.get("anneal_schedule"),
                                                 initial_state=kwargs.get("initial_state"),
                                                 reinitialize_state=kwargs.get("reinitialize_state", False))
        assert ours == pytest.approx(theirs, rel=1e-12)
    assert estimate_access_us({"problem_timing_data": None}, 300, {"num_reads": 1}) is None
    # the mock's per-read anneal and delay are dwave-system's MockDWaveSampler demonstration figures
    plain = MockDWaveSampler(topology_type="pegasus", topology_shape=[2]).sample_ising({}, {}).info["timing"]
    ours = modelled_timing(TimedMockDWaveSampler(topology_type="pegasus", topology_shape=[2]).properties, 10,
                           {"num_reads": 1})
    for key in ("qpu_anneal_time_per_sample", "qpu_delay_time_per_sample"):
        assert ours[key] == plain[key]
    assert ours["qpu_access_time"] == pytest.approx(ours["qpu_programming_time"] + ours["qpu_sampling_time"])


@pytest.mark.parametrize("warm_start", ["gptq-restricted", None])
def test_the_plan_predicts_the_calls_and_the_qpu_time_the_mock_reports(warm_start):
    problem = digits_layer(4)
    sampler = get_sampler("dwave-mock", topology_shape=[6], num_reads=15)
    plan = sampler.plan([problem], warm_start=warm_start is not None).layers[0]
    result = quantize_layer(problem, "qubo", sampler, "dwave-mock", seed=1, warm_start=warm_start)
    qpu = result.info["qpu"]
    assert qpu["calls"] == len(plan.calls) == 2 and qpu["anneal"] == plan.settings.anneal
    assert qpu["anneal"] == ("reverse" if warm_start else "forward")
    assert qpu["call_qubits"] == [c.qubits for c in plan.calls]
    for estimate, reported in zip([c.estimate_us for c in plan.calls], qpu["call_qpu_access_time_us"]):
        assert estimate == pytest.approx(reported, rel=1e-9) and 10_000 < reported < 100_000
    assert plan.estimate_us == pytest.approx(result.info["timing"]["qpu_access_time"], rel=1e-9)
    one = sampler.plan([problem], warm_start=True, parallel=False).layers[0]
    assert len(one.calls) == problem.num_neurons and one.per_call == 1
    assert one.estimate_us > 7 * plan.estimate_us  # the programming time is paid per call


def test_the_budget_check_and_layers_that_do_not_fit():
    problems = formulate(tiny_digits(), 4)
    plan = get_sampler("dwave-mock", topology_shape=[3], num_reads=10).plan(problems, warm_start=True)
    assert plan.num_calls >= 2 and plan.estimate_us > 0 and not any(p.problem for p in plan.layers)
    with pytest.raises(QPUBudgetError, match=r"--qpu-budget=0.001 s: the plan needs an estimated 0\.\d+ s"):
        plan.check_budget(0.001)
    plan.check_budget(10.0)
    small = get_sampler("dwave-mock", topology_shape=[2], num_reads=10)  # its largest clique has 10 variables
    unfit = small.plan(problems, warm_start=True)
    assert [len(p.decomposed) for p in unfit.layers] == [16, 10] and unfit.num_calls == 0
    assert "10 neuron(s) above the largest clique (or the capacity given): decomposed at run time" in unfit.table()
    with pytest.raises(QPUBudgetError, match="decomposed at run time"):
        unfit.check_budget(10.0)
    free = problems[1].free.copy()
    free[2:] = False  # two neurons of 11 variables: decomposed into sub-problems of at most 10, on the QPU
    two = replace(problems[1], free=free)
    result = quantize_layer(two, "qubo", small, "dwave-mock", seed=0)
    qpu = result.info["qpu"]
    assert qpu["calls"] == 0 and qpu["decomposed_neurons"] == [0, 1] and qpu["decomposed_calls"] >= 2
    assert qpu["neuron_call"][:2] == [-1, -1] and qpu["neuron_qpu_access_time_us"][0] > 0
    assert result.info["timing"]["qpu_access_time"] == pytest.approx(qpu["decomposed_qpu_access_time_us"])
    assert np.all(result.errors <= result.warm_start_errors + 1e-12)


def test_plan_of_neurons_sampled_one_by_one_as_compare_does():
    problem = digits_layer(2)
    sampler = get_sampler("dwave-mock", topology_shape=[6], num_reads=10)
    bqms = [problem.neuron_bqm(i) for i in range(4)]
    plan = sampler.plan_bqms(bqms, repeats=3, num_reads=10)
    assert plan.num_calls == 12 and all(len(c.neurons) == 1 for layer in plan.layers for c in layer.calls)
    reported = [sampler.sample(bqm, seed=0, num_reads=10).info["timing"]["qpu_access_time"] for bqm in bqms]
    estimates = {c.neurons[0]: c.estimate_us for c in plan.layers[0].calls}
    assert [estimates[i] for i in range(4)] == pytest.approx(reported, rel=1e-9)


def _no_sampling(monkeypatch) -> None:
    def refuse(self, *args, **kwargs):
        raise AssertionError("the QPU was sampled")

    monkeypatch.setattr(TimedMockDWaveSampler, "sample", refuse)


RUN = ["run", "--dataset", "digits", "--input-size", "4", "--bits", "4,2", "--methods", "rtn,qubo", "--backend",
       "dwave-mock", "--sampler-option", "num_reads=20"]


def test_dry_run_prints_the_plan_and_samples_nothing(tmp_path, capsys, monkeypatch):
    _no_sampling(monkeypatch)
    out = tmp_path / "run"
    assert main([*RUN, "--dry-run", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "QPU plan: backend 'dwave-mock' on MockDWaveSampler (pegasus [16])" in printed
    rows = [line for line in printed.splitlines() if re.match(r"\s+[42] [02] ", line)]
    assert len(rows) == 4 and all("reverse, 20 reads" in row for row in rows)  # 2 layers x 2 bit widths
    calls = int(re.search(r"total: (\d+) QPU calls, estimated QPU access time 0\.\d+ s", printed).group(1))
    assert 4 <= calls < 52  # at least one call per layer and bit width, far fewer than neurons
    assert "reverse anneal from the warm start" in printed and "20 reads" in printed
    assert not out.exists() and "a dry run: no results written" in printed and "results ->" not in printed


def test_the_plan_of_granularity_best_holds_both_grids_each_named(tmp_path, capsys, monkeypatch):
    """``--granularity best`` solves both grids: the plan counts both, and its rows say which."""
    _no_sampling(monkeypatch)
    assert main([*RUN, "--granularity", "best", "--dry-run", "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    rows = [line.split()[:3] for line in printed.splitlines() if re.match(r"\s+[42] [02] ", line)]
    assert sorted(rows) == sorted([b, layer, grid] for b in "42" for layer in "02" for grid in ("tensor", "channel"))


def test_budget_refused_before_the_first_call(tmp_path, capsys, monkeypatch):
    _no_sampling(monkeypatch)
    out = tmp_path / "run"
    assert main([*RUN, "--qpu-budget", "0.01", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--qpu-budget=0.01 s: the plan needs an estimated" in err and "nothing was sent to the QPU" in err
    assert not (out / "results.json").exists()


def test_budget_needs_a_qpu_backend_and_is_checked_before_training(tmp_path, capsys, monkeypatch):
    import qannealq.experiment

    monkeypatch.setattr(qannealq.experiment, "train_mlp", lambda *a, **k: pytest.fail("trained"))
    argv = ["run", "--methods", "qubo", "--backend", "sa", "--out", str(tmp_path / "x")]
    assert main([*argv, "--qpu-budget", "5"]) == 2
    assert "spends no QPU time" in capsys.readouterr().err
    assert main([*argv, "--qpu-budget", "-1"]) == 2
    assert "--qpu-budget=-1.0 must be a positive number" in capsys.readouterr().err


def test_a_full_mock_run_within_its_budget_records_calls_and_qpu_time(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*RUN, "--bits", "4", "--qpu-budget", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "--qpu-budget 1 s: the plan fits" in printed
    assert "int4 0: 1 QPU call(s) for 16 neurons (16 per call), QPU access" in printed
    rows = json.loads((out / "results.json").read_text())["results"]
    layers = [row for row in rows if row["method"] == "qubo"][0]["layers"]
    for layer in layers:
        qpu = layer["qpu"]
        assert qpu["calls"] == 1 and qpu["anneal"] == "reverse" and qpu["num_reads"] == 20
        assert qpu["qpu_access_time_us"] == pytest.approx(qpu["estimated_qpu_access_time_us"])
        assert sum(s for s in qpu["neuron_qpu_share_us"] if s) == pytest.approx(qpu["qpu_access_time_us"])
        assert len(qpu["neuron_chain_break_fraction"]) == layer["neurons"]
    _resumed_plans_what_is_left(out, capsys)


def _resumed_plans_what_is_left(out, capsys) -> None:
    """A resume's plan had counted the finished rows too: its budget bounded a QPU time it would not spend."""
    assert main(["run", "--resume", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "--resume: the qubo row(s) of int4 are finished: not planned" in printed
    assert "every qubo row is finished: nothing will be sent to the QPU" in printed and "QPU plan" not in printed
    (out / "units" / "bits=4_method=qubo.json").unlink()
    assert main(["run", "--resume", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "finished: not planned" not in printed and "total: 2 QPU calls" in printed


def test_compare_dry_run_and_budget(tmp_path, capsys, monkeypatch):
    _no_sampling(monkeypatch)
    argv = ["compare", "--dataset", "digits", "--input-size", "4", "--layer", "0", "--neurons", "0:4", "--bits",
            "2", "--backends", "sa,dwave-mock", "--reads", "10", "--repeats", "2", "--out", str(tmp_path / "cmp")]
    assert main([*argv, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "QPU plan: backend 'dwave-mock'" in printed and "neurons #2" in printed
    assert "a dry run: no results written" in printed and "results ->" not in printed
    assert re.search(r"total: 8 QPU calls, estimated QPU access time 0\.\d+ s", printed)  # 4 neurons x 2 repeats
    assert main([*argv, "--qpu-budget", "0.01"]) == 2
    assert "nothing was sent to the QPU" in capsys.readouterr().err
    only_sa = [("sa" if arg == "sa,dwave-mock" else arg) for arg in argv[:-2]]
    assert main([*only_sa, "--out", str(tmp_path / "x"), "--qpu-budget", "1"]) == 2
    assert "none of --backends spends QPU time" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--dry-run"], ["--qpu-budget", "5"]])
def test_compare_plan_of_a_qpu_backend_without_a_token_says_what_it_lacks(flags, tmp_path, capsys, no_dwave_token):
    """``compare --backends dwave --dry-run`` without a token was told that none of --backends spends QPU time."""
    argv = ["compare", "--input-size", "4", "--neurons", "0:2", "--backends", "sa,dwave", *flags,
            "--out", str(tmp_path / "cmp")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{flags[0]}{'=5' if len(flags) > 1 else ''}: backend 'dwave' spends QPU time but is not ready to plan " \
           "it (no credentials: no D-Wave API token found" in err
    assert "none of --backends" not in err and not (tmp_path / "cmp").exists()




@pytest.mark.parametrize("capacity", [["--capacity", "dwave-mock=10"], ["--sampler-option", "dwave-mock:capacity=10"]])
def test_compare_plans_the_neurons_above_its_capacity_as_decomposed(capacity, tmp_path, capsys, monkeypatch):
    """A compared QPU backend decomposes the neurons above ``--capacity`` (or its ``capacity`` sampler option) into
    many sub-problem calls; its plan counted one call per neuron and repeat: on these 2 neurons of 16-17 variables
    x 2 repeats, 4 calls and 0.064 s planned where the comparison made 18 calls and 0.29 s, and ``--qpu-budget 0.1``
    let it go ahead."""
    _no_sampling(monkeypatch)
    argv = ["compare", "--dataset", "digits", "--input-size", "4", "--neurons", "0:2", "--bits", "4", "--backends",
            "dwave-mock", "--reads", "5", "--repeats", "2", "--proof-time", "0", *capacity,
            "--out", str(tmp_path / "cmp")]
    assert main([*argv, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("+ 2 neuron(s) above the largest clique (or the capacity given): decomposed") == 2
    assert "total: 0 QPU calls" in printed
    assert main([*argv, "--qpu-budget", "0.1"]) == 2
    assert "4 neuron(s) have more variables than the largest clique (or the capacity given)" in capsys.readouterr().err
    assert main([*argv[:-6], "--capacity", "dwave-mock=17", "--out", str(tmp_path / "fits"), "--dry-run"]) == 0
    assert "total: 4 QPU calls" in capsys.readouterr().out  # both fit: one call each

def test_compare_builds_a_qpu_backend_once_for_its_ranges_plan_and_calls(tmp_path, capsys, monkeypatch):
    """A live QPU's client, its solver's graph and its embeddings were fetched three times: for the range
    check, for the plan under ``--qpu-budget`` and for the calls. One solver now serves all three, and is closed
    at the end."""
    from qannealq.backends.dwave import MockQPUSampler

    built, closed = [], []
    make, close = MockQPUSampler._make_child, MockQPUSampler.close
    monkeypatch.setattr(MockQPUSampler, "_make_child", lambda self: built.append(self) or make(self))
    monkeypatch.setattr(MockQPUSampler, "close", lambda self: closed.append(self._child) or close(self))
    argv = ["compare", "--dataset", "digits", "--input-size", "4", "--layer", "0", "--neurons", "0:2", "--bits",
            "2", "--backends", "sa,dwave-mock", "--reads", "5", "--repeats", "1", "--qpu-budget", "10",
            "--out", str(tmp_path / "cmp")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "--qpu-budget 10 s: the plan fits" in printed and "dwave-mock" in printed
    assert len(built) == 1  # one solver: the range check, the plan and both neurons' calls
    assert any(child is not None for child in closed)  # the solver it built was closed
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())["rows"]
    assert {r["backend"] for r in rows} == {"sa", "dwave-mock"}


def test_options_outside_the_solvers_ranges_are_refused_before_any_call(monkeypatch):
    """The QPU states ``num_reads_range``, ``annealing_time_range``... as properties; the mock took
    ``num_reads=100000`` (minutes of its annealer), and a QPU refuses such a problem only once it is submitted."""
    _no_sampling(monkeypatch)
    qpu = get_sampler("dwave-mock")
    bqm = digits_layer(2).neuron_bqm(0)
    with pytest.raises(InvalidArgumentError, match=re.escape("num_reads=20000 is outside the solver's num_reads_range "
                                                             "[1, 10000] (backend 'dwave-mock'): give a value in it")):
        qpu.sample(bqm, num_reads=20000)
    with pytest.raises(InvalidArgumentError, match=re.escape("annealing_time=5000 is outside the solver's "
                                                             "annealing_time_range [0.5, 2000]")):
        qpu.plan([digits_layer(2)], annealing_time=5000)
    with pytest.raises(InvalidArgumentError, match="readout_thermalization=20000 is outside"):
        qpu.sample_layer(digits_layer(2), readout_thermalization=20000)
    qpu.check_ranges(num_reads=10000, annealing_time=0.5)  # the bounds themselves are in range


def test_annealing_time_and_anneal_schedule_together_are_refused_before_any_call(monkeypatch):
    """The solver takes one or the other: both passed every check, then the layer path failed in dwave-cloud-client's
    timing estimate with a bare ``ValueError`` (a traceback from ``run``, after training) and the one-neuron path
    (``compare``'s) at its first QPU call."""
    _no_sampling(monkeypatch)
    qpu = get_sampler("dwave-mock", topology_shape=[6], num_reads=5)
    both = {"annealing_time": 5, "anneal_schedule": [[0, 0], [5, 1]]}
    message = re.escape("annealing_time=5 and anneal_schedule=[[0, 0], [5, 1]] were both given (backend "
                        "'dwave-mock'): the solver takes only one")
    for ask in (lambda: qpu.check_ranges(**both), lambda: qpu.plan([digits_layer(2)], **both),
                lambda: qpu.sample_layer(digits_layer(2), seed=0, **both),
                lambda: qpu.sample(digits_layer(2).neuron_bqm(0), **both)):
        with pytest.raises(InvalidArgumentError, match=message):
            ask()


@pytest.mark.parametrize("options", [{"annealing_time": 1000}, {"annealing_time": 999},
                                     {"readout_thermalization": 980}, {"programming_thermalization": 10000},
                                     {"anneal_schedule": [[0, 0], [1000, 1]]}, {"anneal_schedule": [[0, 0], [998, 1]]}])
def test_a_call_longer_than_the_solvers_run_duration_is_refused_before_any_call(options):
    """Each option in its range, the call not: ``(annealing_time + readout_thermalization) x num_reads +
    programming_thermalization`` must be within ``problem_run_duration_range`` (D-Wave's formula), which the QPU
    checks only once the problem is submitted. The refusal agrees with dwave-cloud-client's ``max_num_reads``."""
    from types import SimpleNamespace

    from dwave.cloud.solver import StructuredSolver

    qpu = get_sampler("dwave-mock")
    properties = qpu.child.properties
    params = {k: v for k, v in options.items() if k != "anneal_schedule"}
    if "anneal_schedule" in options:
        params["annealing_time"] = options["anneal_schedule"][-1][0]
    most = StructuredSolver.max_num_reads(SimpleNamespace(properties=properties, software=False), **params)
    if most >= 10000:
        qpu.check_ranges(num_reads=10000, **options)
    else:
        with pytest.raises(InvalidArgumentError, match=rf"num_reads=10000 x .* us is over the solver's "
                                                        rf"problem_run_duration_range maximum of 1e\+07 us "
                                                        rf"\(backend 'dwave-mock'\): use at most {most} reads"):
            qpu.check_ranges(num_reads=10000, **options)
        qpu.check_ranges(num_reads=most, **options)


SCHEDULES = [[[0, 0], [20, 1]], [[0, 1], [1, 0.35], [9, 0.35], [10, 1]], [[0, 0], [0.5, 1]], [[0, 0], [0.4, 1]],
             [[0, 0], [2000, 1]], [[0, 0], [2000.5, 1]], [[0, 0], [10, 0.5]], [[0, 0.5], [10, 1]], [[0, 1], [10, 1]],
             [[0, 0], [5, 0.6], [6, 0.4], [10, 1]], [[0, 1], [5, 0.2], [6, 0.4], [10, 1]], [[0, 0], [5, 0], [10, 1]],
             [[5, 0], [3, 1]], [[0, 0], [0, 1]], [[0, 0]], [[0, 0], *[[t, 0.5] for t in range(1, 11)], [12, 1]],
             [[0, 0], *[[t, 0.5] for t in range(1, 12)], [13, 1]]]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=range(len(SCHEDULES)))
def test_anneal_schedules_are_refused_where_dwave_systems_validator_refuses_them(schedule):
    """The QPU refuses a bad ``anneal_schedule`` only once a problem is submitted (after training), and the mock
    took any: the backend now applies dwave-system's rules (``DWaveSampler.validate_anneal_schedule``) with
    the solver's properties before any call, and refuses exactly the schedules that validator refuses."""
    from types import SimpleNamespace

    from dwave.system import DWaveSampler

    qpu = get_sampler("dwave-mock")
    properties = qpu.child.properties
    reference = SimpleNamespace(parameters={"anneal_schedule": []}, properties=properties)
    try:
        DWaveSampler.validate_anneal_schedule(reference, schedule)
        valid = True
    except ValueError:
        valid = False
    if valid:
        qpu.check_ranges(anneal_schedule=schedule)
    else:
        with pytest.raises(InvalidArgumentError, match=r"anneal_schedule=.* \(backend 'dwave-mock'\): .*; e\.g\. "):
            qpu.check_ranges(anneal_schedule=schedule)
    assert properties["max_anneal_schedule_points"] == 12 and list(properties["annealing_time_range"]) == [0.5, 2000]


@pytest.mark.parametrize("argv, message", [
    (["--sampler-option", "num_reads=100000"], "num_reads=100000 is outside the solver's num_reads_range"),
    (["--sampler-option", "annealing_time=5000", "--dry-run"], "annealing_time=5000 is outside the solver's"),
    (["--sampler-option", "num_reads=10000", "--sampler-option", "annealing_time=1500"],
     "= 1.5001e+07 us is over the solver's problem_run_duration_range maximum of 1e+07 us (backend 'dwave-mock')"),
    (["--sampler-option", "chain_strength=-1"], "--sampler-option chain_strength=-1 must be a number > 0 (backend "
                                                "'dwave-mock')"),
    (["--sampler-option", "anneal_schedule=[[0,0],[3000,1]]"], "it lasts 3000 us, beyond the solver's longest anneal"),
    (["--sampler-option", "anneal_schedule=[[0,0],[0.1,1]]", "--dry-run"], "a segment's slope 10 per us is steeper"),
    (["--sampler-option", "annealing_time=5", "--sampler-option", "anneal_schedule=[[0,0],[5,1]]"],
     "annealing_time=5 and anneal_schedule=[[0, 0], [5, 1]] were both given (backend 'dwave-mock')"),
])
def test_run_refuses_qpu_options_out_of_range_before_training(argv, message, tmp_path, capsys, monkeypatch):
    import qannealq.experiment

    monkeypatch.setattr(qannealq.experiment, "train_mlp", lambda *a, **k: pytest.fail("trained"))
    out = tmp_path / "x"
    assert main(["run", "--methods", "qubo", "--backend", "dwave-mock", *argv, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_compare_refuses_reads_beyond_the_solvers_range_before_loading(tmp_path, capsys, monkeypatch):
    import qannealq.experiment

    monkeypatch.setattr(qannealq.experiment, "train_mlp", lambda *a, **k: pytest.fail("trained"))
    assert main(["compare", "--backends", "sa,dwave-mock", "--reads", "20000", "--out", str(tmp_path / "c")]) == 2
    assert "num_reads=20000 is outside the solver's num_reads_range [1, 10000] (backend 'dwave-mock')" in \
        capsys.readouterr().err


def test_a_chain_strength_is_a_positive_number_or_a_callable():
    with pytest.raises(InvalidArgumentError, match=re.escape("chain_strength=0 must be a number > 0")):
        get_sampler("dwave-mock", chain_strength=0)
    qpu = get_sampler("dwave-mock", chain_strength=lambda bqm, embedding: 2.0)
    with pytest.raises(InvalidArgumentError, match=re.escape("chain_strength='strong' must be a number > 0")):
        qpu.sample(digits_layer(2).neuron_bqm(0), chain_strength="strong")
    assert get_sampler("dwave-mock", chain_strength=1.5).chain_strength == 1.5


def test_a_solver_out_of_reach_leaves_its_ranges_to_the_first_call(monkeypatch, caplog):
    """The range check before training must not turn a passing network failure into a failed run: the solve
    connects again under ``--retries``."""
    import logging

    from qannealq.backends.dwave import MockQPUSampler

    def unreachable(self):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(MockQPUSampler, "_make_child", unreachable)
    with caplog.at_level(logging.INFO):
        get_sampler("dwave-mock").check_ranges(num_reads=100000)
    assert "the solver's ranges are checked at the first call (ConnectionError)" in caplog.text


def test_a_resumed_comparison_plans_the_calls_left(tmp_path, capsys):
    """A resume's plan had counted every call again, those stored included."""
    out = tmp_path / "cmp"
    argv = ["compare", "--dataset", "digits", "--input-size", "4", "--neurons", "0:2", "--bits", "2", "--backends",
            "dwave-mock", "--reads", "5", "--repeats", "1", "--out", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["compare", "--resume", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "--resume: dwave-mock's calls on 2 of 2 neuron(s) are finished: not planned" in printed
    assert "QPU plan" not in printed
    next((out / "units").glob("backend=dwave-mock_instance=*n1_repeat=0.json")).unlink()
    assert main(["compare", "--resume", str(out), "--qpu-budget", "5", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "calls on 1 of 2 neuron(s) are finished" in printed and "total: 1 QPU calls" in printed


def test_sweep_plans_its_qpu_cells_left_and_keeps_to_a_budget(tmp_path, capsys, monkeypatch):
    """``sweep`` had neither ``--dry-run`` nor ``--qpu-budget``: a sweep of seeds x bit widths on a QPU spent
    whatever it took. Its plan holds every cell left of each QPU backend, each seed's layers named."""
    import qannealq.experiment

    out = tmp_path / "sweep"
    argv = ["sweep", "--input-size", "4", "--bits", "4,2", "--methods", "rtn,qubo:dwave-mock,qubo:layer-sa",
            "--seeds", "2", "--sampler-option", "dwave-mock:num_reads=20"]
    with monkeypatch.context() as patched:
        _no_sampling(patched)
        assert main([*argv, "--dry-run", "--out", str(out)]) == 0
        printed = capsys.readouterr().out
        rows = [line.split()[:3] for line in printed.splitlines() if re.match(r"\s+[42] [02] s", line)]
        assert sorted(rows) == sorted([b, layer, f"s{seed}"] for b in "42" for layer in "02" for seed in (0, 1))
        assert "QPU plan: backend 'dwave-mock'" in printed and "layer-sa" not in printed and not out.exists()
        assert main([*argv, "--qpu-budget", "0.01", "--out", str(out)]) == 2
        assert "nothing was sent to the QPU" in capsys.readouterr().err and not out.exists()
        trained = []
        patched.setattr(qannealq.experiment, "train_mlp", lambda *a, **k: trained.append(1))
        assert main(["sweep", "--input-size", "4", "--methods", "rtn,qubo", "--seeds", "1", "--dry-run", "--out",
                     str(out)]) == 2
        assert "no qubo backend of --methods rtn,qubo spends QPU time" in capsys.readouterr().err and not trained
        assert main(["sweep", "--input-size", "4", "--methods", "qubo:dwave-mock", "--sampler-option",
                     "num_reads=100000", "--out", str(out)]) == 2  # failed after training and calibration
        assert "outside the solver's num_reads_range" in capsys.readouterr().err and not trained
        assert not out.exists()
    small = ["sweep", "--input-size", "4", "--bits", "4", "--methods", "qubo:dwave-mock", "--seeds", "2",
             "--sampler-option", "num_reads=5"]
    assert main([*small, "--out", str(out)]) == 0
    capsys.readouterr()
    next((out / "units").glob("*seed=1*.json")).unlink()
    assert main(["sweep", "--resume", str(out), "--dry-run", "--qpu-budget", "5"]) == 0
    printed = capsys.readouterr().out
    assert " s1 " in printed and " s0 " not in printed and "total: 2 QPU calls" in printed


def test_one_bqms_sample_refuses_a_reverse_schedule_before_any_call():
    """An ``anneal_schedule`` starting at s=1 asks for a reverse anneal from a state, which one BQM's ``sample``
    does not take (``initial_state`` is dropped as unknown): it passed every check and failed in dwave-cloud-client
    with a bare ValueError. It is refused before any call; a forward schedule still runs."""
    import dimod
    from qannealq.backends import get_sampler

    rng = np.random.default_rng(0)
    bqm = dimod.BinaryQuadraticModel({i: rng.normal() for i in range(6)},
                                     {(i, j): rng.normal() for i in range(6) for j in range(i + 1, 6)}, 0.0, "BINARY")
    sampler = get_sampler("dwave-mock")
    calls = []
    real = sampler.child.sample
    sampler.child.sample = lambda *a, **k: calls.append(1) or real(*a, **k)
    with pytest.raises(InvalidArgumentError, match=r"anneal_schedule=.* starts at s=1, a reverse anneal"):
        sampler.sample(bqm, num_reads=5, seed=0, anneal_schedule=[[0, 1], [5, 0.5], [10, 1]])
    assert not calls
    assert len(sampler.sample(bqm, num_reads=5, seed=0, anneal_schedule=[[0, 0], [10, 1]]).record) > 0
