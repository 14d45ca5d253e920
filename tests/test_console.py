"""The command line's reporter (``qannealq.cli._console``)."""

from __future__ import annotations

import logging
import re

from qannealq.cli._console import ConsoleReporter


def test_a_log_line_under_a_progress_bar_starts_a_line_of_its_own(capsys):
    """With ``-v`` a batch's log line was written right after the bar's last draw, on its line
    ("... [00:00<?, ?it/s]INFO qannealq...: batch solved"); it now goes through the bar, which clears its line first."""
    root = logging.getLogger()
    handler = logging.StreamHandler()  # stderr, as logging.basicConfig in qannealq.cli.main sets it up
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    level, root.level = root.level, logging.INFO
    try:
        with ConsoleReporter().progress(4, "layer 0") as bar:
            bar.update(1)
            logging.getLogger("qannealq.test").info("batch solved")
            bar.update(3)
    finally:
        root.removeHandler(handler)
        root.level = level
    err = capsys.readouterr().err
    assert "INFO qannealq.test: batch solved\n" in err
    assert re.search(r"(^|[\r\n])INFO qannealq.test: batch solved", err), err
