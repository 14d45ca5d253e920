"""A light start: ``import qannealq`` loads none of torch, numpy, dimod, scipy or numba (each public name is
imported on first use), so that ``qannealq --help`` and argument errors answer at once."""

from __future__ import annotations

import os
import subprocess
import sys

HEAVY = ("torch", "numpy", "dimod", "scipy", "numba")


def _python(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args, "-c", code], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_importing_qannealq_loads_no_heavy_module_and_public_names_still_resolve():
    probe = ("import sys, qannealq; print(sorted(m for m in {heavy} if m in sys.modules)); "
             "print(sorted(set(qannealq.__all__) - set(dir(qannealq)))); "
             "from qannealq import quantize_model, QannealqError; "
             "print(quantize_model.__module__, qannealq.make_grid.__module__, qannealq.solve.__name__, "
             "issubclass(qannealq.InvalidArgumentError, QannealqError))").format(heavy=HEAVY)
    out = _python(probe)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["[]", "[]", "qannealq.pipeline qannealq.grid qannealq.solve True"]
