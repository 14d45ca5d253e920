"""A light start: ``import qannealq`` loads none of torch, numpy, dimod, scipy or numba (each public name is
imported on first use), so that ``qannealq --help`` and argument errors answer at once."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


#: ``python -m qannealq ARGS`` in a process that reports which heavy modules it loaded; where ``QANNEALQ_TEST_SIGINT``
#: names a module, the process sends itself SIGINT when that module's import begins (as Ctrl-C would, at a
#: moment chosen without a race).
COMMAND = """
import importlib.abc, os, runpy, signal, sys

signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell's background job may inherit SIGINT ignored


class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == os.environ.get("QANNEALQ_TEST_SIGINT"):
            os.environ.pop("QANNEALQ_TEST_SIGINT")
            os.kill(os.getpid(), signal.SIGINT)
        return None


sys.meta_path.insert(0, Interrupt())
sys.argv = ["qannealq", *sys.argv[1:]]
try:
    runpy.run_module("qannealq", run_name="__main__", alter_sys=True)
finally:
    print("loaded:", *sorted(m for m in {heavy} if m in sys.modules))
""".format(heavy=HEAVY)


def _command(*args: str, interrupt: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "QANNEALQ_TEST_SIGINT": interrupt or ""}
    return subprocess.run([sys.executable, "-c", COMMAND, *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_help_and_an_argument_error_load_no_heavy_module():
    """Parsing needs argparse's choices and defaults alone (:mod:`qannealq._defaults`, the dataset names)."""
    shown = _command("--help")
    assert shown.returncode == 0 and "usage: qannealq" in shown.stdout
    assert shown.stdout.splitlines()[-1] == "loaded:"
    for args in (["run", "--help"], ["compare", "--sampler-option", "num_reads=3", "--bits", "x"],
                 ["sweep", "--dataset", "nope"]):
        out = _command(*args)
        assert out.returncode == (0 if "--help" in args else 2), out.stderr
        assert out.stdout.splitlines()[-1] == "loaded:", args


@pytest.mark.parametrize("args, heavy, kept", [
    (("run", "--input-size", "4"), "torch", "; stopped before any result was stored: run the command again"),
    (("backends",), "dimod", "; results finished so far are in the results folder"),
])
def test_ctrl_c_during_the_commands_heavy_imports_gives_one_line_and_exit_130(args, heavy, kept):
    """SIGINT while a command imports the library (torch, dimod: seconds) stops it as during its work: one line on
    stderr and exit 130; that import ran inside the handling of Ctrl-C, not before it (a traceback)."""
    out = _command(*args, interrupt=heavy)
    assert out.returncode == 130, out.stderr
    assert len(out.stderr.splitlines()) == 1 and out.stderr.startswith("qannealq: interrupted" + kept), out.stderr


@pytest.mark.skipif(not hasattr(__import__("select"), "poll"), reason="the closed reader is told by poll()")
def test_output_into_a_reader_that_went_away_ends_quietly():
    """``qannealq datasets | head -1``: the reader closed the pipe, and the command ended in a ``BrokenPipeError``
    traceback (exit 1). It now stops as a command killed by SIGPIPE would (141), with nothing on stderr; a
    ``BrokenPipeError`` of another pipe is not taken for it (the command's own error)."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes its first line
    try:
        done = subprocess.run([sys.executable, "-m", "qannealq", "datasets"], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=300)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")
    other = ("import sys; from qannealq import cli; from qannealq.cli import datasets\n"
             "def fail(args): raise BrokenPipeError(32, 'a worker pipe')\n"
             "datasets.main = fail\n"
             "sys.exit(cli.main(['datasets']))")
    out = _python(other)
    assert out.returncode == 1 and "BrokenPipeError: [Errno 32] a worker pipe" in out.stderr
