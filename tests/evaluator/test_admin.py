"""The attempts admin: every attempt listed read-only, and the sandbox's state stated above the list."""

import pytest

from evaluator import sandbox
from evaluator.services import attempt_claim_next, attempt_fail
from races.services import submission_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


def test_attempts_are_listed_with_their_errors(staff_client, make_racer, make_race, make_model):
    racer = make_racer("Lister")
    submission_create(racer, make_race(), make_model(racer))
    attempt_fail(attempt_claim_next("host:1"), "The model archive was refused: NaN weights", retryable=False)
    page = staff_client.get("/admin/evaluator/evaluationattempt/")
    assert page.status_code == 200
    assert b"NaN weights" in page.content and b"host:1" in page.content


@pytest.mark.parametrize(("allow_fallback", "banner"), [
    (False, b"evaluations are refused until it is installed"),
    (True, b"SANDBOX FALLBACK"),
])
def test_the_page_says_when_the_sandbox_is_missing(staff_client, monkeypatch, settings, allow_fallback, banner):
    monkeypatch.setattr(sandbox, "bubblewrap_works", lambda: False)
    settings.PITLANE_SANDBOX_ALLOW_FALLBACK = allow_fallback
    assert banner in staff_client.get("/admin/evaluator/evaluationattempt/").content


def test_attempts_cannot_be_added_or_deleted(staff_client):
    assert staff_client.get("/admin/evaluator/evaluationattempt/add/").status_code == 403


def test_the_queue_page_shows_positions_and_targets_and_offers_their_actions(staff_client, make_racer, make_race,
                                                                             make_model):
    from races.models import Submission

    racer = make_racer("Queued")
    race = make_race(name="Queue Cup", max_submissions_per_racer=5)
    first = submission_create(racer, race, make_model(racer))
    second = submission_create(racer, race, make_model(racer, "other"))
    attempt_claim_next("host:2")  # the first runs: it has no position, the second is next
    page = staff_client.get("/admin/evaluator/evaluationqueue/").content.decode()
    assert "#1 running" in page and "#1 pending" in page and "Queue Cup" in page and "host:2" in page
    assert f"/admin/races/submission/{second.pk}/change/" in page
    assert '<td class="field-position">1</td>' in page and '<td class="field-position">—</td>' in page
    queued = second.attempts.get()
    response = staff_client.post("/admin/evaluator/evaluationqueue/", {
        "action": "submission__disqualify", "_selected_action": [queued.pk]}, follow=True)
    assert "Disqualified 1 submission(s)." in response.content.decode()
    assert Submission.objects.get(pk=second.pk).status == "disqualified"
    assert Submission.objects.get(pk=first.pk).status == "running"
