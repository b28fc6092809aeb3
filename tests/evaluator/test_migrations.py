"""The attempts' move from foreign keys into races to a generic target (kind + id) keeps every existing row."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from evaluator.models import EvaluationAttempt
from races.evaluation_targets import MATCH_PRIORITY
from races.models import BracketMatch, Submission

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = ("evaluator", "0003_match_attempts")
AttemptStatus = EvaluationAttempt.Status


def migrate(to_evaluator: tuple[str, str] | None):
    """Migrate the evaluator to ``to_evaluator`` (None: the latest), every other app to its latest; returns the
    historical apps of that state."""
    executor = MigrationExecutor(connection)
    targets = [node for node in executor.loader.graph.leaf_nodes() if node[0] != "evaluator" or to_evaluator is None]
    if to_evaluator is not None:
        targets.append(to_evaluator)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def test_old_attempts_get_their_target_owner_and_priority_and_the_way_back_restores_the_keys(
        make_racer, make_race, make_model):
    racer, rival = make_racer("Old"), make_racer("Rival")
    race = make_race()
    mine = Submission.objects.create(race=race, user=racer, model=make_model(racer), sequence=1)
    theirs = Submission.objects.create(race=race, user=rival, model=make_model(rival), sequence=1)
    match = BracketMatch.objects.create(race=race, round=1, slot=0, racer_a=racer, seed_a=1, submission_a=mine,
                                        racer_b=rival, seed_b=2, submission_b=theirs)
    try:
        old_apps = migrate(BEFORE)
        old = old_apps.get_model("evaluator", "EvaluationAttempt")
        old.objects.create(submission_id=mine.pk, number=1, status=AttemptStatus.FAILED, error="crashed")
        old.objects.create(submission_id=mine.pk, number=2, status=AttemptStatus.PENDING)
        old.objects.create(match_id=match.pk, number=1, status=AttemptStatus.RUNNING, worker_id="host:1")

        migrate(None)
        rows = list(EvaluationAttempt.objects.order_by("pk").values_list(
            "target_kind", "target_id", "number", "status", "owner_id", "priority"))
        assert rows == [
            ("submission", mine.pk, 1, AttemptStatus.FAILED, racer.pk, 0),
            ("submission", mine.pk, 2, AttemptStatus.PENDING, racer.pk, 0),
            ("match", match.pk, 1, AttemptStatus.RUNNING, None, MATCH_PRIORITY),
        ]
        assert list(mine.attempts.values_list("number", flat=True)) == [1, 2]
        assert match.attempts.get().worker_id == "host:1"
        with pytest.raises(IntegrityError), transaction.atomic():  # still one live attempt per target
            EvaluationAttempt.objects.create(target_kind="submission", target_id=mine.pk, number=3)

        old_apps = migrate(BEFORE)  # and back: the foreign keys are filled again from the targets
        old = old_apps.get_model("evaluator", "EvaluationAttempt")
        assert list(old.objects.order_by("pk").values_list("submission_id", "match_id", "number")) == [
            (mine.pk, None, 1), (mine.pk, None, 2), (None, match.pk, 1)]
    finally:
        migrate(None)
