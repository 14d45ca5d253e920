"""List the datasets: where each was found (or how to get it), shapes and class counts; --download fetches.

Datasets are searched in the data folder (--data-dir, else $QANNEALQ_DATA, else ./datasets and
../shared/datasets) as NAME.npz, an ImageFolder tree NAME/{train,test}/<class>/* or the official raw files,
then in the cache's downloads folder. A download comes from the dataset's canonical location and every file
is checked against its pinned SHA-256. A dataset named on the command line and found nowhere makes the
command exit 2 (after the listing), so that a script can check its data; so does any dataset whose files are
refused (listed with the reason, the others still listed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qannealq.cli._console import ConsoleReporter

HELP = "list the datasets (where found, shapes, class counts); --download NAME fetches one"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="datasets to show (default: all)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="folder with the datasets (default: $QANNEALQ_DATA, else ./datasets and "
                        "../shared/datasets)")
    parser.add_argument("--download", action="store_true",
                        help="fetch the named datasets that are found nowhere (SHA-256 checked)")
    parser.add_argument("--no-load", action="store_true",
                        help="only say where each is, without loading it (not with --download)")


def _line(name: str, args: argparse.Namespace) -> tuple[str, str]:
    """The listing's line of dataset ``name``, and whether it was ``found``, ``missing`` or ``refused`` (its files
    fail their ``SHA256SUMS`` or cannot be read: the listing went no further than the first such dataset, hiding
    the others)."""
    import numpy as np

    from qannealq.data import load_dataset
    from qannealq.data.datasets import cache_dir
    from qannealq.data.download import ChecksumError
    from qannealq.data.sources import SPECS, DatasetNotFoundError, data_env_note, find_source
    from qannealq.errors import InvalidArgumentError

    try:
        if args.no_load:
            where = "scikit-learn" if name == "digits" else find_source(SPECS[name], args.data_dir,
                                                                        cache_dir()).describe()
            return f"{name:<16} {where}", "found"
        data = load_dataset(name, args.data_dir, download=args.download)
    except DatasetNotFoundError as exc:
        if getattr(args, "verbose", False):
            return f"{name:<16} {exc}", "missing"
        fetch = f"`qannealq datasets --download {name}` fetches it, or " if SPECS[name].resources else ""
        return (f"{name:<16} not found ({len(str(exc).splitlines()) - 2} places searched; -v lists them): "
                f"{data_env_note(args.data_dir)}{fetch}point --data-dir at a folder holding it"), "missing"
    except (ChecksumError, InvalidArgumentError) as exc:
        return f"{name:<16} refused: {exc}", "refused"
    counts = np.bincount(data.y_train, minlength=data.num_classes)
    return (f"{name:<16} {data.source}\n{' ' * 17}train {data.x_train.shape}, test {data.x_test.shape}, "
            f"{data.num_classes} classes, train per class {counts.min()}..{counts.max()}"), "found"


def main(args: argparse.Namespace) -> int:
    from qannealq.checks import check_data_dir
    from qannealq.data import DATASETS, DatasetNotFoundError
    from qannealq.errors import InvalidArgumentError

    if args.data_dir is not None:
        check_data_dir(args.data_dir)
    names = args.names or list(DATASETS)
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        raise InvalidArgumentError(f"datasets {', '.join(unknown)} unknown: choose from {', '.join(DATASETS)}")
    if args.download and args.no_load:  # it fetched nothing, and said to run `--download NAME` to fetch it
        raise InvalidArgumentError("--download fetches the named datasets found nowhere and --no-load only says where "
                                   "each is, without fetching or loading it: give one of them")
    if args.download and not args.names:
        raise InvalidArgumentError("--download needs the names of the datasets to fetch, e.g. "
                                   "`qannealq datasets --download mnist`")
    reporter = ConsoleReporter()
    missing, refused = [], []
    for name in names:
        line, state = _line(name, args)
        reporter.message(line)
        if state == "missing":
            missing.append(name)
        elif state == "refused":
            refused.append(name)
    if refused:
        raise InvalidArgumentError(f"{', '.join(refused)} refused: the listing above says why and what to do")
    if missing and args.names:  # a script or CI step checking its data reads the exit code (it was 0)
        raise DatasetNotFoundError(_how_to_get(missing, args.data_dir))
    return 0


def _how_to_get(missing: list[str], data_dir: Path | None) -> str:
    from qannealq.data.sources import SPECS, data_env_note

    them = "it" if len(missing) == 1 else "them"
    fetchable = [name for name in missing if SPECS[name].resources]
    fetch = f"`qannealq datasets --download {' '.join(fetchable)}` fetches {them}, or " if fetchable else ""
    return (f"{', '.join(missing)} not found: {data_env_note(data_dir)}{fetch}point --data-dir at a folder "
            f"holding {them}")
