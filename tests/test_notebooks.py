"""The classroom labs in ``notebooks/`` run top to bottom, and their own assertions hold.

Each notebook has one code cell tagged ``parameters`` (papermill's convention). The default run executes
every lab with nbclient after injecting a cell of smaller settings right below that cell (as papermill
does), so that the five labs run in a minute or two on 2 shared cores. The assertions that matter (the
energy identity, the backend comparison against proven optima, the accuracy numbers) live in the notebooks
themselves: a failing one fails the test. Every solution notebook also runs in the default run (at its own
settings, about a minute in all); the ``slow`` tests execute the labs at their default settings (what a
student runs).
"""

from __future__ import annotations

import ast
import re
import resource
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LABS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((NOTEBOOKS / "solutions").glob("[0-9][0-9]_*_solutions.ipynb"))

# Smaller settings per lab (file stem), injected below its ``parameters`` cell.
SMALL: dict[str, dict[str, object]] = {
    "01_one_neuron_as_a_qubo": {"NUM_RANDOM_CHECKS": 50},
    "02_backends_side_by_side": {"LAYER": 1, "NEURONS": (0,), "NUM_READS": 50, "SWEEPS": (1, 10, 100, 1000),
                                 "SCHEDULE_READS": 200},
    "03_quantize_a_network": {"INPUT_SIZE": 4, "BITS": (8, 2, 1), "SEQUENTIAL_BITS": (2,), "MNIST": False},
    "04_qaoa_up_close": {"GRID": 24, "MAXITER": 40, "REPS": (1, 2)},
    "05_the_annealer_up_close": {"PEGASUS_SIZE": 6, "STRENGTHS": (0.05, 0.3, 1.0, 3.0), "NUM_READS": 50},
}


def parameters_cell(nb) -> int:
    """Index of the (single) code cell tagged ``parameters``."""
    tagged = [k for k, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{len(tagged)} cells tagged 'parameters' (expected exactly one)"
    return tagged[0]


def assigned_names(source: str) -> set[str]:
    return {target.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def inject(nb, overrides: dict[str, object]) -> None:
    """Insert a cell assigning ``overrides`` right after the parameters cell (papermill's convention)."""
    index = parameters_cell(nb)
    unknown = set(overrides) - assigned_names(nb.cells[index].source)
    assert not unknown, f"overrides {sorted(unknown)} are not parameters of this notebook"
    source = "# injected by tests/test_notebooks.py\n" + "\n".join(f"{k} = {v!r}" for k, v in overrides.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)


@pytest.fixture(scope="session")
def kernel(tmp_path_factory):
    """The name of a kernelspec for this very interpreter, found first (``JUPYTER_PATH``): a ``python3``
    kernelspec of another environment on the machine must not run the labs."""
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(root / "kernels" / "qannealq-tests")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(root))
        yield "qannealq-tests"


def execute(path: Path, overrides: dict[str, object], kernel: str) -> None:
    """Run ``path`` top to bottom in a fresh ``kernel`` (cwd: its folder); raise on any cell error.

    Prints the kernel's CPU time and the wall time (``pytest -s`` shows them).
    """
    nb = nbformat.read(path, as_version=4)
    inject(nb, overrides)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name=kernel, allow_errors=False,
                                     resources={"metadata": {"path": str(path.parent)}})
    with pytest.MonkeyPatch.context() as mp:  # the kernel inherits the environment: plots inline, not Agg
        mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        client.execute()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel, reaped at shutdown
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    print(f"\n{path.name}: kernel CPU {cpu:.1f} s, wall {time.perf_counter() - start:.1f} s")


def test_every_lab_has_a_solution_and_its_small_settings():
    stems = {p.stem for p in LABS}
    assert len(LABS) == 5, [p.name for p in LABS]
    assert {p.stem.removesuffix("_solutions") for p in SOLUTIONS} == stems
    assert set(SMALL) == stems


@pytest.mark.parametrize("path", LABS + SOLUTIONS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean_and_structured(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), "commit without outputs"
    assert code[0] is nb.cells[parameters_cell(nb)], "the parameters cell is the first code cell"
    assert assigned_names(code[0].source), "the parameters cell assigns the settings"
    if not path.stem.endswith("_solutions"):
        text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
        for heading in ("Learning goals", "## Exercises", "solutions/"):
            assert heading in text, f"{path.name} lacks {heading!r}"
        assert "assert " in "\n".join(cell.source for cell in code), "a lab checks the numbers it shows"


def test_readme_lists_every_lab():
    readme = (NOTEBOOKS / "README.md").read_text()
    for path in LABS:
        assert path.name in readme, f"notebooks/README.md does not list {path.name}"


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_lab_runs_with_small_settings(path, kernel):
    execute(path, SMALL[path.stem], kernel)


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_runs(path, kernel):
    """Every solution notebook executes under ``make test`` (each takes 5-30 s of CPU at its settings)."""
    execute(path, {}, kernel)


@pytest.mark.slow
@pytest.mark.parametrize("path", LABS, ids=lambda p: p.stem)
def test_notebook_runs_with_default_settings(path, kernel):
    execute(path, {}, kernel)


def run_cells(nb, kernel: str, folder: Path = NOTEBOOKS) -> None:
    """Execute ``nb`` (possibly cut short) in a fresh ``kernel``; raise on the first cell error."""
    nbclient.NotebookClient(nb, timeout=600, kernel_name=kernel, allow_errors=False,
                            resources={"metadata": {"path": str(folder)}}).execute()


def test_lab02_exercise_2_says_which_neurons_the_second_layer_has(kernel):
    """Lab 02's exercise 2 moves to the second layer, which has 10 neurons: the first layer's ``NEURONS``
    (10, 13) are not among them. With the settings the exercise gives, the lab's first cells run; with
    ``LAYER = 1`` alone the lab stops at once, naming ``NEURONS`` and the layer's neurons, not with
    "neuron index 10 is out of range" from inside the library."""
    path = NOTEBOOKS / "02_backends_side_by_side.ipynb"
    exercise = next(cell.source for cell in nbformat.read(path, as_version=4).cells
                    if cell.cell_type == "markdown" and "## Exercises" in cell.source)
    assert "`LAYER = 1` and `NEURONS = (0, 1)`" in exercise, "exercise 2 gives every setting it needs"
    for overrides, error in (({"LAYER": 1, "NEURONS": (0, 1)}, None), ({"LAYER": 1}, r"NEURONS = \(10, 13\)")):
        nb = nbformat.read(path, as_version=4)
        inject(nb, overrides)
        nb.cells = nb.cells[:next(k for k, cell in enumerate(nb.cells) if "neuron_bqm" in cell.source) + 1]
        if error is None:
            run_cells(nb, kernel)
            continue
        with pytest.raises(nbclient.exceptions.CellExecutionError) as caught:
            run_cells(nb, kernel)
        assert caught.value.ename == "InvalidArgumentError", caught.value.ename
        assert re.search(error, caught.value.evalue) and "0..9" in caught.value.evalue, caught.value.evalue
