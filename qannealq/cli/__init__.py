"""The ``qannealq`` command: one module per subcommand in this package.

The command line only parses: each subcommand module builds a frozen config (:mod:`qannealq.config`), calls
the library with a console reporter, and returns an exit code. A :class:`QannealqError` becomes exit 2 with
its message; Ctrl-C exit 130, SIGTERM (which stops a command as Ctrl-C does) exit 143. A subcommand module
``qannealq/cli/NAME.py`` provides ``HELP``, ``add_arguments(parser)`` and ``main(args) -> int``; it is listed
once in :data:`COMMANDS`.

Parsing needs only these modules and what argparse shows (:mod:`qannealq._defaults`,
:data:`qannealq.data.sources.DATASETS`): a subcommand imports the library (torch, numpy, numba's kernels: seconds)
in its ``main``, inside the handling of Ctrl-C, so that ``--help`` and an argument error answer at once and Ctrl-C
at any moment gives the one line and exit 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import select
import signal
import sys
import threading
from typing import Sequence

from qannealq.errors import QannealqError

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = ("run", "sweep", "compare", "export", "datasets", "backends")
"""Subcommands, in the order ``qannealq --help`` lists them; each is the module ``qannealq.cli.<name>``."""


DESCRIPTION = ("Quantize a trained dense PyTorch network after training: each layer's rounding of every weight and "
               "bias, written as QUBOs whose energy is the layer's reconstruction error, solved by simulated "
               "annealing, a D-Wave QPU, QAOA, exact and classical solvers or qannealq's own layer-sa; and compare "
               "those backends on the same neuron QUBOs.")
"""What ``qannealq --help`` says the command is for (the module docstring is the developers')."""


def _module(name: str):
    return importlib.import_module(f"qannealq.cli.{name}")


def build_parser(explicit_only: bool = False) -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs); ``explicit_only``: no defaults, so the parsed options
    are only those given on the command line."""
    from qannealq import __version__

    parser = argparse.ArgumentParser(prog="qannealq", description=DESCRIPTION,
                                     epilog="`qannealq COMMAND --help` describes each command's options.")
    parser.add_argument("--version", action="version", version=f"qannealq {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = _module(name)
        command = sub.add_parser(name, help=module.HELP, description=module.__doc__)
        module.add_arguments(command)
        command.add_argument("-v", "--verbose", action="store_true", help="log progress details")
        if explicit_only:
            for action in command._actions:
                action.default = argparse.SUPPRESS
    return parser


def _explicit(argv: Sequence[str] | None) -> frozenset[str]:
    """The option names (``dest``) given on the command line, not filled in from a default."""
    return frozenset(vars(build_parser(explicit_only=True).parse_args(argv))) - {"command"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    previous = _on_sigterm()
    _TERMINATED.clear()
    opened = _opened()
    opened.clear()
    command = None
    try:
        args = build_parser().parse_args(argv)
        args.explicit = _explicit(argv)
        command = args.command
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        return _module(command).main(args)
    except QannealqError as exc:
        print(f"qannealq: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _interrupted(command)
    except ImportError as exc:
        if not isinstance(exc.__cause__, KeyboardInterrupt):
            raise
        return _interrupted(command)  # a compiled module's import (scipy's) stopped by Ctrl-C raises this one
    except BrokenPipeError:
        if not _stdout_closed():
            raise  # another pipe (a worker's, a subprocess's): not the reader of our output
        return 128 + signal.SIGPIPE  # as a command killed by SIGPIPE: `qannealq datasets | head -1`
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupted(command: str | None) -> int:
    """Say that the command was interrupted (and where its results are); its exit code."""
    how = "terminated (SIGTERM)" if _TERMINATED else "interrupted"  # or a solver's own interrupt after ours
    print(f"qannealq: {how}" + ("" if command is None else f"; {_kept(command)}"), file=sys.stderr)
    return 128 + signal.SIGTERM if _TERMINATED else 130


def _stdout_closed() -> bool:
    """Whether the reader of standard output went away (a pipe into ``head``: its write end polls as an error);
    if so, standard output is pointed at ``os.devnull``, so that Python's own flush at exit prints no second
    ``BrokenPipeError``. False where that cannot be told (no ``poll``: Windows)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    if not hasattr(select, "poll"):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    if not any(events & select.POLLERR for _, events in poller.poll(0)):
        return False
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)
    return True


def _opened() -> list:
    """The results stores opened in this process (:data:`qannealq.store.OPENED`), or an empty list where no
    command has loaded :mod:`qannealq.store` yet (it loads numpy and dimod: not before the arguments are parsed)."""
    store = sys.modules.get("qannealq.store")
    return [] if store is None else store.OPENED


def _kept(command: str) -> str:
    """Where an interrupted command's finished results are: the results store it opened, or none yet where a
    command that stores them stopped before its store existed (training, calibrating)."""
    opened = _opened()
    if opened:
        return f"results finished so far are in {opened[-1]}: continue with --resume {opened[-1]}"
    if command in STORING:
        return "stopped before any result was stored: run the command again (a network's training goes on " \
            "where it stopped)"
    return "results finished so far are in the results folder"


#: The commands whose results go to a results store (:class:`qannealq.store.ResultStore`), with ``--resume``.
STORING = ("run", "sweep", "compare")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's or ``kill``'s stop), raised where Ctrl-C would be, so that a command stops the
    same way: the unit being written is not left half written, and QPU clients, Gurobi and Dask are closed."""


_TERMINATED: list[int] = []  # the SIGTERMs received (a solver may stop on the handler's exception and raise its own)


def _terminate(signum, frame) -> None:
    _TERMINATED.append(signum)
    raise Terminated


def _on_sigterm():
    """SIGTERM raises :class:`Terminated` during a command (the previous handler, or None where it cannot be
    set: not the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _terminate)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
