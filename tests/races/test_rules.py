"""More league rules as specifications: the submission state machine, re-runs, concurrent submits, race phases,
invite-code expiry, race settings and model deletion."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from evaluator.contract import RaceResult
from races.models import LeaderboardEntry, Race, RacerModel, Run, Submission
from races.services import (
    RuleViolation,
    model_delete,
    model_upload,
    race_close_early,
    race_create,
    race_join,
    race_visible_to,
    races_by_phase,
    submission_create,
    submission_disqualify,
    submission_fail,
    submission_mark_running,
    submission_record_result,
    submission_rerun,
)
from races.services.submissions import TRANSITIONS, submission_transition
from tests.races.test_services import result, score

pytestmark = pytest.mark.django_db(transaction=True)
SubmissionStatus = Submission.Status


def test_the_status_machine_allows_exactly_the_documented_moves(make_racer, make_race, make_model):
    racer = make_racer()
    submission = submission_create(racer, make_race(), make_model(racer))
    for start in SubmissionStatus.values:
        for target in SubmissionStatus.values:
            Submission.objects.filter(pk=submission.pk).update(status=start)
            submission.refresh_from_db()
            if target in TRANSITIONS[start]:
                submission_transition(submission, target)
                assert Submission.objects.get(pk=submission.pk).status == target
            else:
                with pytest.raises(RuleViolation, match=f"A {start} submission cannot become {target}"):
                    submission_transition(submission, target)
    # Final states never move back to running on their own; a scored run is never re-scored silently.
    finals = (SubmissionStatus.SCORED, SubmissionStatus.FAILED, SubmissionStatus.DISQUALIFIED)
    assert all(SubmissionStatus.RUNNING not in TRANSITIONS[final] for final in finals)
    assert submission.events.first().status == SubmissionStatus.QUEUED


def test_submissions_are_numbered_per_racer_and_race(make_racer, make_race, make_model):
    racer, other = make_racer(), make_racer()
    race = make_race()
    model, other_model = make_model(racer), make_model(other)
    assert [submission_create(racer, race, model).sequence for _ in range(3)] == [1, 2, 3]
    assert submission_create(other, race, other_model).sequence == 1
    assert submission_create(racer, make_race(name="Second Cup"), model).sequence == 1


def test_a_rerun_drops_the_old_run_requeues_and_scores_again(make_racer, make_race, make_model):
    race = make_race()
    racer = make_racer()
    submission = submission_create(racer, race, make_model(racer))
    score(submission, 10.0)
    with pytest.raises(RuleViolation, match="queued already"):
        submission_rerun(submission_create(racer, race, make_model(racer, "other")))

    submission_rerun(submission)
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.QUEUED
    assert submission.started_at is None and submission.finished_at is None
    assert not Run.objects.filter(submission=submission).exists()
    assert not LeaderboardEntry.objects.filter(race=race).exists()
    retry = submission.attempts.order_by("-number").first()
    assert retry.number == 2 and retry.status == "pending"
    submission_mark_running(submission, retry)
    submission_record_result(submission, retry, result(12.0))
    assert LeaderboardEntry.objects.get(race=race).ranking_score_ms == 12_000


def test_a_rerun_reinstates_a_disqualified_submission(make_racer, make_race, make_model):
    race = make_race()
    racer = make_racer()
    submission = submission_create(racer, race, make_model(racer))
    score(submission, 10.0)
    submission_disqualify(submission, "Suspicious")
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.DISQUALIFIED and submission.failure_reason == "Suspicious"
    submission_rerun(submission)
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.QUEUED and submission.failure_reason == ""


def test_a_submission_disqualified_while_waiting_ignores_its_evaluation(make_racer, make_race, make_model):
    race = make_race()
    racer = make_racer()
    submission = submission_create(racer, race, make_model(racer))
    submission_disqualify(submission)
    attempt = submission.attempts.get()
    submission_mark_running(submission, attempt)
    assert submission_record_result(submission, attempt, result(9.0)) is None
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.DISQUALIFIED
    assert not LeaderboardEntry.objects.filter(race=race).exists() and not Run.objects.exists()


def test_a_result_that_cannot_be_scored_fails_the_submission_with_the_reason(make_racer, make_race, make_model):
    racer = make_racer()
    submission = submission_create(racer, make_race(), make_model(racer))
    attempt = submission.attempts.get()
    submission_mark_running(submission, attempt)
    assert submission_record_result(submission, attempt, RaceResult(laps=[{"trial": 1}], trace={})) is None
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.FAILED and "could not be scored" in submission.failure_reason
    submission_fail(submission, "late")  # a final state is never overwritten
    submission.refresh_from_db()
    assert "could not be scored" in submission.failure_reason


def test_concurrent_submissions_cannot_both_squeeze_under_the_limit(make_racer, make_race, make_model):
    """Eight threads submit at the same instant to a race that allows one submission: exactly one wins."""
    race = make_race(max_submissions_per_racer=1)
    racer = make_racer()
    model = make_model(racer)
    barrier, outcomes = threading.Barrier(8), []

    def submit() -> None:
        try:
            connection.ensure_connection()
            barrier.wait()
            submission_create(get_user_model().objects.get(pk=racer.pk), race, model)
            outcomes.append("ok")
        except RuleViolation as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["limit"] * 7 + ["ok"]
    assert Submission.objects.filter(race=race).count() == 1


def test_races_are_grouped_by_phase_in_the_order_racers_want(make_race):
    now = timezone.now()
    closing_late = make_race(name="Late", closes_at=now + timedelta(days=9))
    closing_soon = make_race(name="Soon", closes_at=now + timedelta(hours=2))
    upcoming = make_race(name="Next", opens_at=now + timedelta(days=1), closes_at=now + timedelta(days=2))
    finished = make_race(name="Done", opens_at=now - timedelta(days=3), closes_at=now - timedelta(days=1))
    grouped = races_by_phase(Race.objects.all())
    assert grouped == {"open": [closing_soon, closing_late], "upcoming": [upcoming], "closed": [finished]}


def test_closing_an_upcoming_race_early_closes_it_for_good(make_racer, make_race):
    organiser = make_racer()
    soon = timezone.now() + timedelta(hours=1)
    race = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser, opens_at=soon, closes_at=soon + timedelta(days=1))
    race_close_early(race, organiser)
    assert race.phase() == "closed" and race.phase(soon + timedelta(hours=2)) == "closed"
    assert races_by_phase(Race.objects.all())["closed"] == [race]
    with pytest.raises(RuleViolation, match="closed already"):
        race_close_early(race, organiser)


def test_an_invite_code_expires_when_the_race_reaches_its_closing_time(make_racer, make_race):
    organiser = make_racer()
    race = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser)
    Race.objects.filter(pk=race.pk).update(closes_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(RuleViolation, match="closed, so its invite code has expired"):
        race_join(race.invite_code, make_racer())


def test_invite_codes_are_long_random_and_versioned(make_racer, make_race):
    organiser = make_racer()
    races = [make_race(kind=Race.Kind.COMMUNITY, organiser=organiser, name=f"Cup {i}") for i in range(20)]
    codes = {race.invite_code for race in races}
    assert len(codes) == 20 and all(len(code) >= 16 for code in codes)
    assert {race.invite_code_version for race in races} == {1}
    assert all(race.invite_code_created_at is not None for race in races)
    assert make_race(name="Public").invite_code == ""


def test_staff_see_every_race_and_anonymous_visitors_only_public_ones(make_racer, make_race):
    organiser = make_racer()
    private = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser, name="Private")
    public = make_race(name="Public")
    admin = get_user_model().objects.create_user("admin", is_staff=True)
    assert set(race_visible_to(admin)) == {private, public}
    from django.contrib.auth.models import AnonymousUser

    assert set(race_visible_to(AnonymousUser())) == {public}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"race_type": "HEAD_TO_HEAD", "bracket_size": 6}, "bracket size must be one of 2, 4, 8, 16"),
        ({"race_type": "TIME_TRIAL", "bracket_size": 8}, "Bracket size: only for head to head races"),
        ({"race_type": "KNOCKOUT"}, "Race type must be one of"),
        ({"total_laps": 11}, "Total laps must be between 1 and 10"),
        ({"total_laps": 0, "minimum_laps": 0}, "Total laps must be between 1 and 10"),
        ({"minimum_laps": 4}, "Minimum laps must be between 1 and the total laps"),
        ({"ranking_method": "TOTAL_TIME", "minimum_laps": 2}, "minimum laps must equal total laps"),
        ({"closes_at_delta": timedelta(hours=-2)}, "must close after it opens"),
        ({"closes_at_delta": timedelta(days=365 * 200)}, "between the years 2000 and 2100"),
        ({"off_track_penalty_s": -1}, "Penalties must be between 0 and 60 seconds"),
        ({"time_cap_s": 5}, "time cap must be between 30 seconds and 20 minutes"),
        ({"direction": "sideways"}, "Direction"),
        ({"ranking_method": "FASTEST"}, "Ranking method"),
    ],
)
def test_race_settings_are_validated_with_clear_messages(technical_track, values, message):
    now = timezone.now()
    settings = {"name": "Bad Cup", "track": technical_track, "opens_at": now - timedelta(hours=1),
                "closes_at": now + values.pop("closes_at_delta", timedelta(days=1)), "total_laps": 3,
                "minimum_laps": 1} | values
    with pytest.raises(RuleViolation, match=message):
        race_create(Race.Kind.VIRTUAL_CIRCUIT, **settings)
    assert not Race.objects.exists()


def test_a_raced_model_is_hidden_not_destroyed_and_an_unused_one_is_removed(make_racer, make_race, make_model):
    racer = make_racer()
    raced, unused = make_model(racer, "raced"), make_model(racer, "unused")
    submission_create(racer, make_race(), raced)
    model_delete(raced)
    model_delete(unused)
    raced.refresh_from_db()
    assert raced.status == RacerModel.Status.DELETED and raced.archive.storage.exists(raced.archive.name)
    assert not RacerModel.objects.filter(pk=unused.pk).exists()
    with pytest.raises(RuleViolation, match="your own valid models"):
        submission_create(racer, make_race(name="Later Cup"), raced)
    make_model(racer, "raced")  # the name is free again


def test_uploads_over_the_size_cap_are_refused_before_validation(make_racer, settings):
    settings.PITLANE_MAX_UPLOAD_MB = 1
    racer = make_racer()
    big = io.BytesIO(b"\0" * (1024 * 1024 + 1))
    with pytest.raises(RuleViolation, match="larger than the upload limit of 1 MiB"):
        model_upload(racer, "big", big)
    with pytest.raises(RuleViolation, match="uploads are limited to 1 MiB"):
        model_upload(racer, "big", big, size=5 * 1024 * 1024)
    with pytest.raises(RuleViolation, match="name of 1 to 64 characters"):
        model_upload(racer, "  ", io.BytesIO(b"x"))
    assert not RacerModel.objects.exists()


def test_two_runs_of_one_racer_scored_at_the_same_moment_leave_one_row_with_the_better_score(
    make_racer, make_race, make_model
):
    race = make_race()
    racer = make_racer()
    model = make_model(racer)
    submissions = [submission_create(racer, race, model) for _ in range(4)]
    attempts = []
    for submission in submissions:
        attempt = submission.attempts.get()
        submission_mark_running(submission, attempt)
        attempts.append(attempt)
    barrier, errors = threading.Barrier(4), []

    def record(submission, attempt, seconds) -> None:
        try:
            connection.ensure_connection()  # connect first, so that the threads really meet at the database
            barrier.wait()
            submission_record_result(submission, attempt, result(seconds))
        except Exception as error:  # any failure of a worker thread fails the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=record, args=(s, a, 10.0 + i)) for i, (s, a) in
               enumerate(zip(submissions, attempts, strict=True))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    entry = LeaderboardEntry.objects.get(race=race)
    assert entry.submission_id == submissions[0].pk and entry.ranking_score_ms == 10_000


def test_private_race_addresses_cannot_be_guessed_and_names_do_not_collide(make_racer, make_race):
    organiser = make_racer()
    first = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser, name="Secret Cup")
    second = make_race(kind=Race.Kind.COMMUNITY, organiser=make_racer(), name="Secret Cup")
    assert first.slug != second.slug and all(r.slug.startswith("secret-cup-") for r in (first, second))
    assert len(first.slug) == len("secret-cup-") + 6
    public = make_race(name="Secret Cup")
    assert public.slug == "secret-cup"  # a public name is not affected by private races of the same name


def test_a_one_direction_track_refuses_races_the_other_way(make_race, technical_track):
    technical_track.directions = "counterclockwise"
    technical_track.save()
    with pytest.raises(RuleViolation, match="Pitlane Technical is raced counterclockwise only"):
        make_race(direction="clockwise")
    assert make_race(direction="counterclockwise").track == technical_track


def test_a_submission_is_not_blocked_by_a_worker_scoring_the_same_racer(make_racer, make_race, make_model):
    """Scoring holds the racer's row lock; creating a submission only checks that row as a foreign key. With a full
    FOR UPDATE on both sides (racer by scoring, race by submission_create) the two deadlocked under load."""
    from races.services.leaderboards import _lock_racer

    race, racer = make_race(), make_racer()
    model = make_model(racer)
    locked, released, created = threading.Event(), threading.Event(), threading.Event()

    def worker_scoring() -> None:
        try:
            with transaction.atomic():
                _lock_racer(racer.pk)
                locked.set()
                released.wait(timeout=30)
        finally:
            connection.close()

    thread = threading.Thread(target=worker_scoring)
    thread.start()
    try:
        assert locked.wait(timeout=30)
        done = threading.Thread(target=lambda: (submission_create(racer, race, model), created.set(),
                                                connection.close()))
        done.start()
        assert created.wait(timeout=20), "submission_create waited for the scoring transaction's racer lock"
        done.join(timeout=5)
    finally:
        released.set()
        thread.join(timeout=30)
    assert Submission.objects.filter(race=race, user=racer).count() == 1
