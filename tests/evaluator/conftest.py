"""The evaluator's tests use the league factories of tests/races."""

from tests.races.conftest import (  # noqa: F401
    archive_bytes,
    lapping_archive,
    make_model,
    make_race,
    make_racer,
    technical_track,
)
