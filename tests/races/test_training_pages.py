"""The training pages: the racer's list (and its link in the site navigation), a job's live page with the small
JSON it polls, its pictures and its Stop button; nobody else's job is visible (404)."""

from __future__ import annotations

import pytest
from django.test import Client

from races.models import TrainingJob
from races.services.training import training_start
from tests.races.training_helpers import small_request

pytestmark = pytest.mark.django_db


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def job(make_racer, oval_track) -> TrainingJob:
    return training_start(make_racer("Pagey"), small_request(oval_track, name="page model"))


def test_the_list_and_the_navigation_show_the_racers_jobs(job, make_racer):
    page = client_of(job.owner).get("/training/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/training/"' in html and ">Training</a>" in html
    assert f'href="/training/{job.pk}/"' in html and "Queued" in html
    other = client_of(make_racer("Nobody")).get("/training/").content.decode()
    assert "page model" not in other
    assert Client().get("/training/").status_code == 302  # sign in first


def test_every_way_in_leads_a_new_racer_to_create_a_model(make_racer):
    """A racer without jobs or models, on the home page, the training list and the models list, is one click from
    the create-model form (the home page once told only of the command line, the training list had no way to start)."""
    client = client_of(make_racer("Newbie"))
    for path in ("/", "/training/", "/models/"):
        html = client.get(path).content.decode()
        assert 'href="/models/new/training/"' in html, path
    assert "No training jobs yet." in client.get("/training/").content.decode()
    anonymous = Client().get("/").content.decode()
    assert 'href="/models/new/training/"' in anonymous and "In your browser" in anonymous


def test_the_live_page_shows_the_queue_position_chart_and_stop_button(job):
    html = client_of(job.owner).get(f"/training/{job.pk}/").content.decode()
    assert "position 1 in the training queue" in html
    assert "vendor/chartjs/chart.umd.min.js" in html and "races/training.js" in html
    assert "cdn" not in html.lower()
    assert f'action="/training/{job.pk}/stop/"' in html and "data-reward-chart" in html
    assert "Pitlane Oval" in html or "pitlane" in html.lower()


def test_the_progress_json_follows_the_job(job):
    client = client_of(job.owner)
    data = client.get(f"/training/{job.pk}/progress.json").json()
    assert data["status"] == "queued" and data["queue_position"] == 1 and data["trajectories_url"] is None
    episodes = [{"x": [0.0, 1.0, 2.0], "y": [0.0, 0.5, 1.0], "speed": [1.0, 2.0, 3.0]}]
    TrainingJob.objects.filter(pk=job.pk).update(
        status="training", iterations=1, episodes=5, env_steps=300, trained_seconds=30,
        curve=[{"iteration": 1, "episodes": 5, "env_steps": 300, "elapsed_seconds": 3.0, "mean_reward": 12.5,
                "mean_progress": 20.0, "evaluation_mean_progress": 15.0, "steps_per_second": 100.0, "is_best": True}],
        trajectories={"iteration": 1, "episodes": episodes}, log_tail="iteration 1: 5 episodes")
    data = client.get(f"/training/{job.pk}/progress.json").json()
    assert data["status"] == "training" and data["queue_position"] is None
    assert data["curve"][0]["mean_reward"] == 12.5 and data["seconds_left"] == 600 - 30
    assert data["trajectories_url"] == f"/training/{job.pk}/trajectories.png?i=1"
    picture = client.get(data["trajectories_url"])
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    assert data["log_tail"] == "iteration 1: 5 episodes"
    # While iteration 2 collects, the page adds what it has so far to the committed totals ...
    live = {"phase": "collecting", "iteration": 2, "iteration_episodes_planned": 5, "iteration_episodes_finished": 3,
            "iteration_env_steps": 180}
    TrainingJob.objects.filter(pk=job.pk).update(live=live)
    data = client.get(f"/training/{job.pk}/progress.json").json()
    assert (data["iteration_episodes_finished"], data["iteration_env_steps"]) == (3, 180)
    assert data["episodes"] == 5 and data["env_steps"] == 300
    # ... and once it is committed they are in the totals, never counted twice.
    committed = live | {"phase": "collecting next", "iteration_episodes_finished": 5}
    TrainingJob.objects.filter(pk=job.pk).update(iterations=2, episodes=10, env_steps=600, live=committed)
    data = client.get(f"/training/{job.pk}/progress.json").json()
    assert data["iteration_episodes_finished"] is None and data["iteration_env_steps"] is None


def test_nobody_else_sees_or_stops_the_job(job, make_racer):
    nosy = client_of(make_racer("Nosy"))
    for url in (f"/training/{job.pk}/", f"/training/{job.pk}/progress.json", f"/training/{job.pk}/trajectories.png",
                f"/training/{job.pk}/reward-graph.png"):
        assert nosy.get(url).status_code == 404, url
    assert nosy.post(f"/training/{job.pk}/stop/").status_code == 404
    job.refresh_from_db()
    assert job.status == "queued"


def test_the_stop_button_stops_the_job(job):
    client = client_of(job.owner)
    answer = client.post(f"/training/{job.pk}/stop/", follow=True)
    assert answer.status_code == 200
    job.refresh_from_db()
    assert job.status == "failed" and "before training started" in job.failure_reason
    assert "before training started" in answer.content.decode()


def test_a_trained_models_page_says_where_it_was_trained_and_an_uploaded_ones_says_uploaded(job, make_model):
    trained, uploaded = make_model(job.owner, "trained"), make_model(job.owner, "uploaded")
    TrainingJob.objects.filter(pk=job.pk).update(status="done", model=trained)
    client = client_of(job.owner)
    html = client.get(f"/models/{trained.pk}/").content.decode()
    assert f'trained in <a href="/training/{job.pk}/">the console</a>' in html
    assert "<span>uploaded" in client.get(f"/models/{uploaded.pk}/").content.decode()
