"""benchmarks/qpu_quality.py, chain_strength.py and qpu_plan.py (the mock-QPU figures of docs/backends.md):
options that cannot give a figure are refused, naming the option, before any model is trained."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("dwave.system")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import chain_strength  # noqa: E402  (imported, not skipped: a broken import fails here)
import qpu_plan  # noqa: E402
import qpu_quality  # noqa: E402


def _refused(monkeypatch, capsys, script, *args: str) -> str:
    monkeypatch.setattr(sys, "argv", [f"{script.__name__}.py", *args])
    with pytest.raises(SystemExit) as exc:
        script.main()
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("script", [qpu_quality, chain_strength])
@pytest.mark.parametrize("option", ["--seeds", "--reads"])
def test_no_seeds_or_reads_is_refused(monkeypatch, capsys, script, option):
    """``--seeds 0`` averaged nothing and crashed on a ratio (ZeroDivisionError) after preparing both models."""
    err = _refused(monkeypatch, capsys, script, option, "0")
    assert option in err and ">= 1" in err


@pytest.mark.parametrize("size", ["0", "500"])
def test_a_sub_problem_that_fits_no_clique_is_refused(monkeypatch, capsys, size):
    """``--sub-size 0`` crashed (OverflowError) in the MNIST sweep, and sub-problems above the largest clique
    (180 on P16; 500: parts of 300) were planned as no call: ZeroDivisionError on the time ratio, after planning
    every model."""
    err = _refused(monkeypatch, capsys, qpu_plan, "--sub-size", size)
    assert "--sub-size" in err and ("180" in err if size == "500" else ">= 1" in err)


@pytest.mark.parametrize("script", [qpu_quality, chain_strength, qpu_plan])
def test_no_threads_is_refused(monkeypatch, capsys, script):
    """``--threads 0`` pinned nothing (threadpoolctl's limit 0 leaves every pool as it is): the run went on with
    OpenBLAS's own count, 2 here, while the command line asked for a pinned run."""
    assert "--threads" in _refused(monkeypatch, capsys, script, "--threads", "0")


@pytest.mark.parametrize("script, option, value", [(chain_strength, "--scales", "0"), (chain_strength, "--scales", "1,-2"),
                                                   (chain_strength, "--scales", ","),
                                                   (qpu_quality, "--chain-strength-scale", "0"),
                                                   (qpu_quality, "--chain-strength-scale", "inf")])
def test_a_chain_strength_scale_it_cannot_use_is_refused(monkeypatch, capsys, script, option, value):
    """A scale of 0 was refused by the sampler (an InvalidArgumentError traceback) after both models were
    prepared."""
    err = _refused(monkeypatch, capsys, script, option, value)
    assert option in err and "> 0" in err


def test_chain_strength_names_the_chains_it_measures():
    """Its docstring gives the clique chains' lengths on P16: it said 5-6 qubits for the 8x8 model's 61
    variables, where the embeddings have chains of 6 and 7 (as docs/backends.md's table says)."""
    import re

    from qannealq.backends import get_sampler

    cliques = get_sampler("dwave-mock").cliques
    said = re.findall(r"up to (\d+) variables: (?:cliques of \d+, )?chains of (\d)-(\d) qubits",
                      " ".join(chain_strength.__doc__.split()))
    assert [int(n) for n, _, _ in said] == [17, 61]
    for size, low, high in said:
        embeddings = cliques.best(int(size))
        lengths = {len(chain) for embedding in embeddings.embeddings for chain in embedding[:int(size)]}
        assert (min(lengths), max(lengths)) == (int(low), int(high)), size
