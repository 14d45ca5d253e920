"""``compare``: the documented columns, metrics recomputed independently from the stored energies, the reference
optimum and its provenance, unready backends skipped with their reason, resume without recomputation."""

from __future__ import annotations

import csv
import json
import math

import dimod
import numpy as np
import pytest

from backend_fixtures import tiny_digits
from helpers import random_layer
from qannealq._compare_instances import instances_from_experiment, instances_from_layer
from qannealq._compare_reference import ReferenceOptions, reference_optimum, settle
from qannealq._compare_report import CSV_COLUMNS
from qannealq.compare import CompareSettings, compare_backends
from qannealq.errors import InvalidArgumentError


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
    from qannealq.cli import main

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
    data = json.loads((out / "compare.json").read_text())
    assert "dwave" in data["skipped"]
    _check_metrics_independently(rows, data)


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
    assert counting.calls == 4
    for unit in first.units:
        inst = next(i for i in tiny if i.name == unit["instance"])
        best = {int(k): v for k, v in unit["best_sample"].items()}
        assert min(unit["energies"]) == pytest.approx(inst.bqm.energy(best), rel=1e-12)
        assert unit["seed"] is not None and unit["warm_start"]
    again = compare_backends(tiny, {"steepest": counting}, settings, tmp_path / "c", resume=True)
    assert counting.calls == 4
    assert [r.best_energy for r in again.rows] == [r.best_energy for r in first.rows]
    with pytest.raises(InvalidArgumentError, match="settings differ"):
        compare_backends(tiny, {"steepest": counting}, CompareSettings(reads=6, repeats=2, seed=3),
                         tmp_path / "c", resume=True)


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
    with pytest.raises(InvalidArgumentError, match="not compared"):
        compare_backends(instances_from_layer(random_layer(np.random.default_rng(0), 6, 1).problem(4), [0], {},
                                              "r"), ["sa"], CompareSettings(sampler_options={"qaoa": {"reps": 2}}))
