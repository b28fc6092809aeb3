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
