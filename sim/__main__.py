"""``python -m sim``: see ``sim.cli``."""

import time

STARTED = time.monotonic()  # before the heavy imports: ``train --max-minutes`` counts them too

import sys  # noqa: E402

from sim.cli import main  # noqa: E402

sys.exit(main(started=STARTED))
