"""The README's Python examples run as printed: a user who pastes one gets what the README says.

The "Python API" example used names it never defined (``inputs``, ``targets``, ``weight``, ``bias``) and solved a
65-variable neuron with ``exact`` (24 at most); the ``layer-sa`` example used ``problem`` and ``target``, the
export example ``model``, ``calibration_inputs`` and ``x_test``. They are now whole, and each runs here on the
embedded digits data (the session's own model cache).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block(heading: str) -> str:
    """The first fenced ``python`` block after ``heading`` (a line of the README)."""
    text = README.read_text()
    start = text.index(f"\n{heading}\n")
    block = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert block is not None, f"no python block after {heading!r}"
    return block.group(1)


@pytest.mark.parametrize("heading", ["## Python API", "### Effort, time limit and the time–quality frontier",
                                     "## Export the quantized model: save, load, integer inference, ONNX"])
def test_the_readme_python_example_runs(heading, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = python_block(heading)
    scope: dict = {}
    exec(compile(code, f"README.md ({heading})", "exec"), scope)  # noqa: S102 - the README's own example
    if heading == "## Python API":
        assert scope["result"].layers[0].errors.shape == (32,)  # digits' first layer: 32 neurons
        assert scope["bqm"].num_variables <= 65
    elif heading.startswith("###"):
        reached = scope["time_to_target"](scope["result"].info["trace"], scope["target"])
        assert reached is not None and 0 <= reached <= 30
    else:
        m, x_test = scope["m"], scope["x_test"]
        assert (m.integer_predict(x_test) == m.predict(x_test)).all()
        assert (tmp_path / "digits-int4.npz").exists() and (tmp_path / "digits-int4.onnx").exists()


def test_the_set_up_says_what_make_demo_installs_and_how_to_add_the_extras():
    """``make demo`` installs qannealq alone (``pip install -e .``), while the set-up said it "installs everything":
    the README's next commands, ``--backend qaoa`` and ``--backend dwave-mock`` on digits 4x4 and ``to_onnx``, then
    stopped with "package missing". The set-up says what ``make demo`` leaves out and gives the one command that
    adds every extra to the checkout's environment, with the pins of ``constraints.txt``."""
    tomllib = pytest.importorskip("tomllib")
    root = README.parent
    demo = re.search(r"^\$\(VENV\)/\.installed:.*\n\t(.*)$", (root / "Makefile").read_text(), re.M)
    assert demo is not None, "the Makefile's rule installing for make demo"
    text = README.read_text()
    setup = text[text.index("\n## Set-up"):text.index("\n## Quickstart")]
    if demo.group(1).rstrip().endswith("-e ."):  # the core alone
        assert "installs everything" not in setup
        command = re.search(r"\.venv/bin/python -m pip install -c constraints\.txt -e '\.\[([a-z,]+)\]'", setup)
        assert command is not None, "the set-up gives no command adding the extras"
        extras = set(command.group(1).split(","))
        declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        assert extras <= set(declared) and {"all", "onnx"} <= extras
