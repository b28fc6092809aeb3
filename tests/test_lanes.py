"""How ./pitlane test's two lanes keep apart (tests/conftest.py)."""

from tests.conftest import redis_url_for_lane


def test_each_lane_gets_its_own_redis_database_next_to_the_runs():
    assert redis_url_for_lane("redis://127.0.0.1:6379/9", 0) == "redis://127.0.0.1:6379/9"
    assert redis_url_for_lane("redis://127.0.0.1:6379/9", 1) == "redis://127.0.0.1:6379/10"
    assert redis_url_for_lane("redis://127.0.0.1:6379/15", 1) == "redis://127.0.0.1:6379/1"  # 0 stays free


def test_every_collected_test_has_an_id_of_its_own(request):
    ids = [item.nodeid for item in request.session.items]
    assert len(ids) == len(set(ids))
