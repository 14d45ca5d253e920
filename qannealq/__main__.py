"""``python -m qannealq ...``: the ``qannealq`` command (:func:`qannealq.cli.main`), where the console script is not
on the PATH (a virtual environment not activated, a checkout used through ``PYTHONPATH``)."""

import sys

from qannealq.cli import main

sys.exit(main())
