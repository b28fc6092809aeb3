"""League rules as specifications: limits, window, cooldown, visibility, leaderboard replacement, tie-break."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from evaluator.contract import RaceResult
from evaluator.models import EvaluationAttempt
from races.models import LeaderboardEntry, Race, RaceParticipant, Submission
from races.services import (
    RuleViolation,
    leaderboard_csv,
    leaderboard_table,
    model_upload,
    participant_remove,
    race_close_early,
    race_join,
    race_reset_invite_code,
    race_update,
    race_visible_to,
    submission_create,
    submission_disqualify,
    submission_fail,
    submission_mark_running,
    submission_record_result,
)

pytestmark = pytest.mark.django_db(transaction=True)


def laps(*seconds, incomplete: tuple[int, ...] = ()):
    return [
        {
            "trial": i,
            "elapsed_time_in_milliseconds": round(s * 1000),
            "completion_percentage": 40.0 if i in incomplete else 100.0,
            "off_track_count": 0,
            "crash_count": 0,
            "immobilized_count": 0,
            "reversed_count": 0,
            "reset_count": 0,
            "episode_status": "Off track" if i in incomplete else "Lap complete",
        }
        for i, s in enumerate(seconds, start=1)
    ]


def result(*seconds, incomplete=()) -> RaceResult:
    return RaceResult(laps=laps(*seconds, incomplete=incomplete), trace={}, simtrace_csv="", duration_s=1.0)


def score(submission, *seconds, incomplete=()):
    """What the evaluator does for a finished run: running, then the result, then it closes its attempt
    (the evaluator's own tests cover leases and claims; here only the races side is under test)."""
    attempt = submission.attempts.get(status=EvaluationAttempt.Status.PENDING)
    submission_mark_running(submission, attempt)
    run = submission_record_result(submission, attempt, result(*seconds, incomplete=incomplete))
    EvaluationAttempt.objects.filter(pk=attempt.pk).update(status=EvaluationAttempt.Status.SUCCEEDED)
    return run


def test_a_submission_is_queued_with_one_pending_attempt(make_racer, make_race, make_model):
    racer = make_racer()
    submission = submission_create(racer, make_race(), make_model(racer))
    assert submission.status == Submission.Status.QUEUED
    assert list(submission.attempts.values_list("number", "status")) == [(1, EvaluationAttempt.Status.PENDING)]


@pytest.mark.parametrize(
    ("race_values", "message"),
    [
        ({"opens_at_delta": timedelta(hours=1)}, "This race is upcoming"),
        ({"closes_at_delta": -timedelta(minutes=1), "opens_at_delta": -timedelta(days=1)}, "This race is closed"),
    ],
)
def test_submissions_are_accepted_only_while_the_race_is_open(make_racer, make_race, make_model, race_values, message):
    now = timezone.now()
    race = make_race(
        opens_at=now + race_values.get("opens_at_delta", -timedelta(hours=1)),
        closes_at=now + race_values.get("closes_at_delta", timedelta(days=1)),
    )
    racer = make_racer()
    with pytest.raises(RuleViolation, match=message):
        submission_create(racer, race, make_model(racer))


def test_the_submission_limit_and_cooldown_are_enforced(make_racer, make_race, make_model):
    racer = make_racer()
    model = make_model(racer)
    limited = make_race(max_submissions_per_racer=2)
    submission_create(racer, limited, model)
    submission_create(racer, limited, model)
    with pytest.raises(RuleViolation, match="used all 2 submissions"):
        submission_create(racer, limited, model)
    cooling = make_race(name="Cooldown Cup", submission_cooldown_s=600)
    submission_create(racer, cooling, model)
    with pytest.raises(RuleViolation, match=r"wait \d+ s before your next submission"):
        submission_create(racer, cooling, model)


def test_racers_need_an_alias_and_their_own_model(make_racer, make_race, make_model):
    race = make_race()
    anonymous = make_racer(alias=False)
    with pytest.raises(RuleViolation, match="Choose your racer alias"):
        submission_create(anonymous, race, make_model(anonymous))
    owner, other = make_racer(), make_racer()
    with pytest.raises(RuleViolation, match="your own valid models"):
        submission_create(other, race, make_model(owner))


def test_leaderboard_keeps_one_row_per_racer_replaced_only_by_strictly_better(make_racer, make_race, make_model):
    race = make_race()
    racer = make_racer()
    model = make_model(racer)
    first = submission_create(racer, race, model)
    score(first, 12.0, 11.0, 13.0)
    slower = submission_create(racer, race, model)
    score(slower, 11.5, 11.5, 11.5)
    equal = submission_create(racer, race, model)
    score(equal, 11.0, 14.0, 14.0)
    entry = LeaderboardEntry.objects.get(race=race, user=racer)
    assert entry.submission_id == first.pk and entry.ranking_score_ms == 11_000
    better = submission_create(racer, race, model)
    score(better, 10.9, 20.0, 20.0)
    entry.refresh_from_db()
    assert entry.submission_id == better.pk and entry.ranking_score_ms == 10_900
    assert LeaderboardEntry.objects.filter(race=race).count() == 1


def test_ties_are_broken_by_the_earlier_submission(make_racer, make_race, make_model):
    race = make_race()
    early, late = make_racer("Early"), make_racer("Late")
    early_submission = submission_create(early, race, make_model(early))
    late_submission = submission_create(late, race, make_model(late))
    score(late_submission, 10.0)  # scored first, but submitted later
    score(early_submission, 10.0)
    assert [row["racer"] for row in leaderboard_table(race)] == ["Early", "Late"]
    assert [row["gap_ms"] for row in leaderboard_table(race)] == [0, 0]


@pytest.mark.parametrize(
    ("method", "minimum", "total", "expected_ms"),
    [("BEST_LAP_TIME", 1, 3, 10_000), ("AVG_LAP_TIME", 2, 3, 10_500), ("TOTAL_TIME", 3, 3, 33_000)],
)
def test_each_ranking_method_scores_the_run(make_racer, make_race, make_model, method, minimum, total, expected_ms):
    race = make_race(ranking_method=method, minimum_laps=minimum, total_laps=total)
    racer = make_racer()
    submission = submission_create(racer, race, make_model(racer))
    score(submission, 12.0, 11.0, 10.0)
    assert LeaderboardEntry.objects.get(race=race).ranking_score_ms == expected_ms


def test_a_run_without_enough_consecutive_laps_is_scored_but_not_ranked(make_racer, make_race, make_model):
    race = make_race(minimum_laps=2)
    racer = make_racer()
    submission = submission_create(racer, race, make_model(racer))
    run = score(submission, 10.0, 10.0, 10.0, incomplete=(2,))
    submission.refresh_from_db()
    assert submission.status == Submission.Status.SCORED and not run.qualified
    assert not LeaderboardEntry.objects.filter(race=race).exists()


def test_a_result_is_recorded_exactly_once(make_racer, make_race, make_model):
    race = make_race()
    racer = make_racer()
    submission = submission_create(racer, race, make_model(racer))
    first = score(submission, 10.0)
    again = submission_record_result(submission, submission.attempts.get(), result(9.0))
    assert again is not None
    assert again.pk == first.pk and LeaderboardEntry.objects.get(race=race).ranking_score_ms == 10_000


def test_disqualifying_the_scoring_submission_falls_back_to_the_next_best(make_racer, make_race, make_model):
    race = make_race()
    racer = make_racer()
    model = make_model(racer)
    good, best = submission_create(racer, race, model), submission_create(racer, race, model)
    score(good, 11.0)
    score(best, 10.0)
    submission_disqualify(best)
    assert LeaderboardEntry.objects.get(race=race).submission_id == good.pk
    submission_disqualify(good)
    assert not LeaderboardEntry.objects.filter(race=race).exists()


def test_a_failed_submission_keeps_its_reason_and_a_late_failure_cannot_undo_a_score(make_racer, make_race, make_model):
    racer = make_racer()
    race = make_race()
    failing = submission_create(racer, race, make_model(racer, "a"))
    submission_fail(failing, "The model archive was refused: bad weights")
    failing.refresh_from_db()
    assert failing.status == "failed" and "bad weights" in failing.failure_reason
    scored = submission_create(racer, race, make_model(racer, "b"))
    score(scored, 10.0)
    submission_fail(scored, "late crash report")
    scored.refresh_from_db()
    assert scored.status == "scored"


def test_community_races_are_invisible_to_non_members_and_joined_by_code(make_racer, make_race):
    organiser, friend, stranger = make_racer(), make_racer(), make_racer()
    race = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser, name="Friends Cup")
    public = make_race(name="Public Cup")
    assert set(race_visible_to(stranger)) == {public}
    assert race in race_visible_to(organiser)
    assert race_join(race.invite_code, friend) == race
    assert race in race_visible_to(friend)


def test_a_reset_invite_code_stops_working_but_members_stay(make_racer, make_race):
    organiser, member, newcomer = make_racer(), make_racer(), make_racer()
    race = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser)
    old_code = race.invite_code
    race_join(old_code, member)
    new_code = race_reset_invite_code(race, organiser)
    assert new_code != old_code
    with pytest.raises(RuleViolation, match="not valid: it may have been reset"):
        race_join(old_code, newcomer)
    assert race in race_visible_to(member)
    assert race_join(new_code, newcomer) == race


def test_invite_codes_expire_at_close_and_removed_participants_lose_access(make_racer, make_race):
    organiser, member = make_racer(), make_racer()
    race = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser)
    race_join(race.invite_code, member)
    participant_remove(race, organiser, member)
    assert race not in race_visible_to(member)
    with pytest.raises(RuleViolation, match="removed you"):
        race_join(race.invite_code, member)
    race_close_early(race, organiser)
    with pytest.raises(RuleViolation, match="closed, so its invite code has expired"):
        race_join(race.invite_code, make_racer())


def test_only_the_organiser_edits_and_only_before_opening(make_racer, make_race):
    organiser, other = make_racer(), make_racer()
    soon = timezone.now() + timedelta(days=1)
    upcoming = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser, opens_at=soon,
                         closes_at=soon + timedelta(days=1))
    with pytest.raises(RuleViolation, match="Only the organiser"):
        race_update(upcoming, other, name="Hijacked")
    race_update(upcoming, organiser, total_laps=5)
    running = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser, name="Running")
    with pytest.raises(RuleViolation, match="only be edited before it opens"):
        race_update(running, organiser, total_laps=5)
    with pytest.raises(RuleViolation, match="minimum laps must equal total laps"):
        race_update(upcoming, organiser, ranking_method="TOTAL_TIME", minimum_laps=1)


def test_community_races_need_membership_to_submit(make_racer, make_race, make_model):
    organiser, outsider = make_racer(), make_racer()
    race = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser)
    with pytest.raises(RuleViolation, match="Join this race with its invite code"):
        submission_create(outsider, race, make_model(outsider))
    race_join(race.invite_code, outsider)
    assert submission_create(outsider, race, make_model(outsider, "m2")).status == "queued"
    assert RaceParticipant.objects.filter(race=race).count() == 1


def test_leaderboard_csv_has_the_spec_columns(make_racer, make_race, make_model):
    race = make_race()
    racer = make_racer("Csv")
    score(submission_create(racer, race, make_model(racer)), 10.5)
    lines = leaderboard_csv(race).splitlines()
    assert lines[0].startswith("rank,racer,time,time_ms,gap_ms")
    assert lines[1].startswith("1,Csv,00:10.500,10500,0")


def test_uploaded_archives_are_validated_before_anything_is_stored(make_racer, archive_bytes):
    racer = make_racer()
    model = model_upload(racer, "oval-runner", io.BytesIO(archive_bytes))
    assert model.metadata["neural_network"] == "DEEP_CONVOLUTIONAL_NETWORK_DEEP" and model.size_bytes > 0
    with pytest.raises(RuleViolation, match=r"This archive was refused: .*gzip"):
        model_upload(racer, "garbage", io.BytesIO(b"definitely not a tarball"))
    with pytest.raises(RuleViolation, match="already have a model named"):
        model_upload(racer, "oval-runner", io.BytesIO(archive_bytes))
    assert racer.racer_models.count() == 1


def test_the_race_page_shows_the_top_rows_plus_your_own(make_racer, make_race, make_model):
    from races.services import leaderboard_top

    race = make_race()
    for alias, seconds in (("Fast", 10.0), ("Mid", 11.0), ("Slow", 12.0)):
        racer = make_racer(alias)
        score(submission_create(racer, race, make_model(racer)), seconds)
    rows, ranked = leaderboard_top(race, "Slow", limit=2)
    assert ranked == 3 and [(r["rank"], r["racer"]) for r in rows] == [(1, "Fast"), (2, "Mid"), (3, "Slow")]
    rows, _ = leaderboard_top(race, "Mid", limit=2)
    assert [r["racer"] for r in rows] == ["Fast", "Mid"]
    assert [r["racer"] for r in leaderboard_top(race, None, limit=1)[0]] == ["Fast"]
