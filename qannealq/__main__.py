"""``python -m qannealq ...``: the ``qannealq`` command (:func:`qannealq.cli.main`), where the console script is not
on the PATH (a virtual environment not activated, a checkout used through ``PYTHONPATH``)."""

import sys

try:
    from qannealq.cli import main
except KeyboardInterrupt:  # Ctrl-C before the command's own handling: the same line and exit code, no traceback
    print("qannealq: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
