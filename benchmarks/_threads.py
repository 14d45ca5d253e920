"""The thread counts every benchmark pins and prints: on a shared machine they decide the timings; and the
counts of runs they take (:func:`count`)."""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager
from typing import Iterator

from threadpoolctl import threadpool_info, threadpool_limits


@contextmanager
def pinned(blas: int, torch_threads: int | None = None) -> Iterator[str]:
    """Within the block, BLAS/OpenMP run ``blas`` threads (and torch ``torch_threads``, when given).

    Yields:
        One line for the benchmark's header: each BLAS/OpenMP library and its count, torch's count, OpenBLAS's
        spin (``OPENBLAS_THREAD_TIMEOUT``, :data:`qannealq.BLAS_SPIN`), the CPUs and the 1-minute load average.
    """
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)
    with threadpool_limits(blas):
        libs = sorted({f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info()})
        line = f"BLAS {', '.join(libs) or 'none'}"
        if torch_threads is not None:
            line += f"; torch {torch.get_num_threads()}"
        spin = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "OpenBLAS's default")
        yield (f"{line}; OPENBLAS_THREAD_TIMEOUT {spin}; {os.cpu_count()} CPUs; load average "
               f"{os.getloadavg()[0]:.1f}")


def count(text: str) -> int:
    """An argparse type for a number of runs, repeats, reads or variables: an integer >= 1 (0 repeats crashed a
    benchmark on an empty ``min()`` or a missing row, or made GPTQ's time infinite)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 1")
    return value


def scale(text: str) -> float:
    """An argparse type for a scale factor (a chain strength's, a limit in GPTQ times): a finite number > 0 (0 was
    refused by the sampler only after the models were prepared)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number > 0")
    return value


def scales(text: str, example: str = "0.5,1,2", empty: bool = False) -> list[float]:
    """A comma list of :func:`scale` values (an argparse type as it stands): at least one, or none where ``empty``."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items and not empty:
        raise argparse.ArgumentTypeError(f"{text!r}: give a comma list of finite numbers > 0, e.g. {example}")
    return [scale(t) for t in items]
