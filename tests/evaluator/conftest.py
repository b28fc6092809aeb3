"""The evaluator's tests use the league factories of tests/races."""

from tests.races.conftest import archive_bytes, make_model, make_race, make_racer, technical_track  # noqa: F401
