"""How ./pitlane test's two lanes keep apart (tests/conftest.py)."""

import os

import pytest
import torch

from tests.conftest import redis_url_for_lane


def test_each_lane_gets_its_own_redis_database_next_to_the_runs():
    assert redis_url_for_lane("redis://127.0.0.1:6379/9", 0) == "redis://127.0.0.1:6379/9"
    assert redis_url_for_lane("redis://127.0.0.1:6379/9", 1) == "redis://127.0.0.1:6379/10"
    assert redis_url_for_lane("redis://127.0.0.1:6379/15", 1) == "redis://127.0.0.1:6379/1"  # 0 stays free


def test_every_collected_test_has_an_id_of_its_own(request):
    ids = [item.nodeid for item in request.session.items]
    assert len(ids) == len(set(ids))


def test_in_a_run_of_several_lanes_torch_takes_one_core_per_lane(monkeypatch):
    # Two torch threads on a core the other lane keeps busy trained ~5x slower: the lanes inherit OMP_NUM_THREADS=1,
    # which caps even the trainer's explicit request for two.
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) < 2:
        pytest.skip("runs in a lane of ./pitlane test (two lanes)")
    from sim.learn.agent import use_cores_for_torch

    assert os.environ["OMP_NUM_THREADS"] == "1"
    before = torch.get_num_threads()
    try:
        assert use_cores_for_torch(2) == 1
    finally:
        torch.set_num_threads(before)
