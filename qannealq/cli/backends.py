"""List every backend: whether it is ready (or what to install or configure), its capacity and family."""

from __future__ import annotations

import argparse

HELP = "list the backends and whether they are ready"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def main(args: argparse.Namespace) -> int:
    from qannealq.backends import ALIASES, available_backends

    rows = available_backends()
    width = max(len(r.name) for r in rows) + 2
    cap = max(len("capacity"), *(len(r.capacity) for r in rows)) + 2
    print(f"{'backend':<{width}}{'status':<17}{'capacity':<{cap}}summary")
    for r in rows:
        print(f"{r.name:<{width}}{r.status:<17}{r.capacity:<{cap}}{r.summary}")
        if r.hint:
            print(f"{'':<{width}}  -> {r.hint}")
    print("aliases: " + ", ".join(f"{a} = {t}" for a, t in sorted(ALIASES.items())))
    return 0
