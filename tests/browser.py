"""What every browser test shares: Debian's chromium, and the marks that skip cleanly where it is missing."""

import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"

BROWSER_TEST_MARKS = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed (./pitlane test does)"),
]
# How long a page may take to show what a step waits for. Generous: it bounds a wait, it does not time the page,
# and a loaded 2-core machine (the suite's sandboxes and workers on the same cores) can take seconds per click.
PAGE_TIMEOUT_MS = 60_000
