"""List the datasets: where each was found (or how to get it), shapes and class counts; --download fetches.

Datasets are searched in the data folder (--data-dir, else $QANNEALQ_DATA, else ./datasets and
../shared/datasets) as NAME.npz, an ImageFolder tree NAME/{train,test}/<class>/* or the official raw files,
then in the cache's downloads folder. A download comes from the dataset's canonical location and every file
is checked against its pinned SHA-256.
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


def _line(name: str, args: argparse.Namespace) -> str:
    import numpy as np

    from qannealq.data import load_dataset
    from qannealq.data.datasets import cache_dir
    from qannealq.data.sources import SPECS, DatasetNotFoundError, data_env_note, find_source

    try:
        if args.no_load:
            where = "scikit-learn" if name == "digits" else find_source(SPECS[name], args.data_dir,
                                                                        cache_dir()).describe()
            return f"{name:<16} {where}"
        data = load_dataset(name, args.data_dir, download=args.download)
    except DatasetNotFoundError as exc:
        if getattr(args, "verbose", False):
            return f"{name:<16} {exc}"
        fetch = f"`qannealq datasets --download {name}` fetches it, or " if SPECS[name].resources else ""
        return (f"{name:<16} not found ({len(str(exc).splitlines()) - 2} places searched; -v lists them): "
                f"{data_env_note(args.data_dir)}{fetch}point --data-dir at a folder holding it")
    counts = np.bincount(data.y_train, minlength=data.num_classes)
    return (f"{name:<16} {data.source}\n{' ' * 17}train {data.x_train.shape}, test {data.x_test.shape}, "
            f"{data.num_classes} classes, train per class {counts.min()}..{counts.max()}")


def main(args: argparse.Namespace) -> int:
    from qannealq.checks import check_data_dir
    from qannealq.data import DATASETS
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
    for name in names:
        reporter.message(_line(name, args))
    return 0
