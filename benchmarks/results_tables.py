"""The README's Results tables and the plots under docs/results/, from the sweep folders of each dataset.

Reads ``RESULTS/DATASET-PRESET`` (and ``RESULTS/DATASET-PRESET-low``, a second folder run at the same time on
the low bit widths, and ``RESULTS/DATASET-PRESET-act`` and ``-pivot``, sweeps of ``gptq-act`` and ``gptq-pivot``
alone, if present; a cell found in two is taken once; folders whose cells were computed with other settings are
refused) for the presets ``paper`` and ``best``, and prints, per dataset, the accuracy table (mean ± std over the
seeds, a cell of one seed without a spread, ``(n=…)`` where fewer seeds finished than the folders' ``--seeds``
or than in the rest of the table, ``—`` where none did: every method and bit width of the folders has its column
and row) and the summed layer error table (its ``(n=…)`` and ``—`` alike), in Markdown; writes
``DOCS/DATASET-PRESET.png`` (accuracy vs bits with mean ± std bands, layer error vs bits), which the tables link
to from the folder it runs in (the README's, for the default ``--docs docs/results``).

Run: ``.venv/bin/python benchmarks/results_tables.py [--results runs/results] [--docs docs/results]``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from qannealq.errors import InvalidArgumentError
from qannealq.store import ResultStore, settings_diff
from qannealq.sweep_report import CellResult, aggregate, plot_sweep

DATASETS = ("digits", "mnist", "fashion-mnist", "emnist-letters", "cifar10")
NAMES = {"rtn": "RTN", "gptq": "GPTQ", "gptq-act": "GPTQ act-order", "gptq-pivot": "GPTQ pivot-order",
         "gptq-restricted": "GPTQ-restricted", "gptq-restricted-act": "GPTQ-restricted act-order",
         "gptq-restricted-pivot": "GPTQ-restricted pivot-order"}
ORDER = {"rtn": 0, "gptq": 1, "gptq-act": 2, "gptq-pivot": 3}


def load(results: Path, dataset: str, preset: str) -> tuple[list[CellResult], dict | None]:
    """The cells of one dataset and preset (main folder, then ``-low``, then ``-act`` and ``-pivot``: sweeps of
    the act- and pivot-order GPTQ baselines, ``--methods gptq-act``, ``gptq-pivot``) and the stored settings,
    with the methods and bit widths of every folder and the most seeds of any."""
    cells, settings, seen, first = [], None, set(), None
    for suffix in ("", "-low", "-act", "-pivot"):
        root = results / f"{dataset}-{preset}{suffix}"
        if not (root / "store.json").is_file():
            continue
        stored = ResultStore.stored_settings(root, "sweep")
        if settings is None:
            settings, first = {**stored, "methods": list(stored["methods"])}, (root, stored)
        elif differences := _differences(first[1], stored):
            raise InvalidArgumentError(
                f"{root} and {first[0]} make one table, but their cells were computed with other settings "
                f"({'; '.join(differences)}): rerun {root.name} with the settings of {first[0].name}, or move it "
                f"out of {results}")
        settings["methods"] += [m for m in stored["methods"] if m not in settings["methods"]]
        settings["bits"] = sorted({*settings.get("bits", []), *stored.get("bits", [])}, reverse=True)
        settings["seeds"] = max(settings.get("seeds", 0), stored.get("seeds", 0))
        for record in ResultStore(root, "sweep", stored).records():
            cell = CellResult(**record)
            if (cell.method, cell.bits, cell.seed) not in seen:
                seen.add((cell.method, cell.bits, cell.seed))
                cells.append(cell)
    if settings is not None:  # baselines first (index-order GPTQ, then act and pivot order), the QUBO last
        settings["methods"].sort(key=lambda m: ORDER.get(m, len(ORDER) + m.startswith("qubo:")))
    return cells, settings


def _differences(first: dict, other: dict) -> list[str]:
    """The settings of two folders of one table that change their cells (a column's cells merged from both must
    be comparable): the network, the calibration set, the grid, int1 and the objective; the qubo solver's
    options where both ran one qubo backend. Not the methods, bit widths and seeds each ran, nor the wording of
    the preset or a ``--data-dir``; a field that one of them, stored by an older version, lacks is not compared."""
    def cell_settings(stored: dict, qubo: bool) -> dict:
        model = {k: v for k, v in stored.get("model", {}).items() if k != "data_dir"}
        chosen = {k: stored.get(k) for k in ("calibration", "granularity", "int1", "train_seeds")}
        chosen.update(model=model, objective=stored.get("objective", "preact"),
                      inactive_weight=stored.get("inactive_weight"))
        return {**chosen, **({k: stored.get(k) for k in ("warm_start", "sampler_options")} if qubo else {})}

    qubo = any(m.startswith("qubo:") and m in other["methods"] for m in first["methods"])
    a, b = cell_settings(first, qubo), cell_settings(other, qubo)
    shared = set(a["model"]) & set(b["model"])
    a["model"], b["model"] = ({k: v for k, v in c["model"].items() if k in shared} for c in (a, b))
    return settings_diff(a, b)


def _name(method: str) -> str:
    """A column's name, the same over both tables: ``QUBO (sa)`` for ``qubo:sa`` (two qubo backends of one preset
    are two columns), the baselines by :data:`NAMES`, any other method by its label."""
    method_name, _, backend = method.partition(":")
    return f"QUBO ({backend})" if method_name == "qubo" else NAMES.get(method, method)


def _accuracy(agg, most: int) -> str:
    """``mean ± std`` in %; one seed's value alone (one value has no spread: "± 0.00" would claim one)."""
    text = f"{100 * agg.accuracy_mean:.2f}" + (f" ± {100 * agg.accuracy_std:.2f}" if agg.n > 1 else "")
    return text + (f" (n={agg.n})" if agg.n < most else "")


def _error(agg, most: int) -> str:
    """The mean summed layer error, with ``(n=…)`` as :func:`_accuracy` has it: a mean over fewer seeds is another
    sample's, in this table as in the accuracy table (summary.md marks both)."""
    return f"{agg.error_mean:.3g}" + (f" (n={agg.n})" if agg.n < most else "")


def _link(image: Path, tables: Path) -> str:
    """``image``'s path as a Markdown link in a file of the folder ``tables`` (absolute where none is relative:
    another drive)."""
    try:
        return Path(os.path.relpath(Path(image).resolve(), Path(tables).resolve())).as_posix()
    except ValueError:
        return Path(image).resolve().as_posix()


def dataset_tables(results: Path, docs: Path, dataset: str, tables: Path = Path(".")) -> list[str]:
    """The Markdown of ``dataset``'s tables, its plots written to ``docs`` and linked from a file in the folder
    ``tables`` (a link always said docs/results/, whatever ``docs``: another --docs gave links to nothing)."""
    runs = {p: load(results, dataset, p) for p in ("paper", "best")}
    runs = {p: v for p, v in runs.items() if v[0]}
    if not runs:
        return []
    cols, table, bits, floats, info = [], {}, set(), {}, []
    for preset, (cells, settings) in runs.items():
        plot_sweep(cells, docs / f"{dataset}-{preset}.png", f"{dataset}, preset {preset}", settings["methods"])
        aggs = aggregate(cells, settings["methods"])
        most = max(settings.get("seeds", 0), *(a.n for a in aggs))  # a sweep stopped early: fewer seeds marked
        for method in [*settings["methods"], *(a.method for a in aggs)]:  # a method not reached yet: its "—"
            if (preset, method) not in cols:
                cols.append((preset, method))
        bits.update(settings.get("bits", []))
        for agg in aggs:
            table[(preset, agg.method), agg.bits] = (agg, most)
            bits.add(agg.bits)
        floats[preset] = np.mean(list({c.train_seed: c.float_accuracy for c in cells}.values()))
        seeds = sorted({c.seed for c in cells})
        grains = ", ".join(sorted({c.granularity for c in cells}))
        info.append(f"{preset}: seeds {seeds} ({len(cells)} cells), {cells[0].num_calibration} calibration "
                    f"samples, grids {grains}")
    header = ["| bits | " + " | ".join(f"{p}: {_name(m)}" for p, m in cols) + " |", "| --- |" + " --- |" * len(cols)]
    shown = {p: f"{100 * f:.2f} %" for p, f in floats.items()}  # the presets' networks may differ: each named
    heading = next(iter(shown.values())) if len(set(shown.values())) == 1 else ", ".join(
        f"{p} {text}" for p, text in shown.items())
    out = [f"#### {dataset} — float accuracy {heading}", "", "; ".join(info) + ".",
           "", *header]
    for b in sorted(bits, reverse=True):
        out.append(f"| int{b} | " + " | ".join(_accuracy(*table[c, b]) if (c, b) in table else "—" for c in cols)
                   + " |")
    out += ["", "Summed layer error (calibration data, mean over seeds):", "", *header]
    for b in sorted(bits, reverse=True):
        out.append(f"| int{b} | " + " | ".join(_error(*table[c, b]) if (c, b) in table else "—" for c in cols)
                   + " |")
    out += ["", " ".join(f"![{dataset}]({_link(docs / f'{dataset}-{p}.png', tables)})" for p in runs), ""]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("runs/results"))
    parser.add_argument("--docs", type=Path, default=Path("docs/results"))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args()
    args.docs.mkdir(parents=True, exist_ok=True)
    lines = []
    for dataset in args.datasets.split(","):
        try:
            lines += dataset_tables(args.results, args.docs, dataset)
        except InvalidArgumentError as exc:
            raise SystemExit(f"results_tables.py: error: {exc}") from None
    if not lines:  # a --results without sweep folders printed nothing and ended with status 0
        parser.error(f"--results {args.results}: no sweep folder there (DATASET-paper or DATASET-best, each with "
                     f"its store.json) for {args.datasets}; run `qannealq sweep --out {args.results}/DATASET-PRESET` "
                     "first, or give --results the folder that holds them")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
