"""``python -m shared``: the ``tradingbrain`` command, for when the script is not on PATH."""

import sys

from shared.cli import main

sys.exit(main())
