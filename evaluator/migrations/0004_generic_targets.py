"""Attempts name their target generically (kind + id) instead of a foreign key into races: step 1 of 2.

The old constraints go first, the new columns are added and filled from the foreign keys: a submission's attempts
become ("submission", id) with its racer as owner, a bracket match's become ("match", id) at the matches' priority.
Step 2 (0005) drops the foreign keys and adds the new constraints. Reversible: the way back refills the keys.
"""

from django.db import migrations, models
from django.db.models import F, OuterRef, Subquery

MATCH_PRIORITY = 100  # races.evaluation_targets.MATCH_PRIORITY when this migration was written: matches go first


def _checks_now(schema_editor) -> None:
    # Foreign-key checks fire now, not at commit: PostgreSQL refuses ALTER TABLE with pending trigger events.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def targets_from_foreign_keys(apps, schema_editor) -> None:
    _checks_now(schema_editor)
    attempt = apps.get_model("evaluator", "EvaluationAttempt")
    submission = apps.get_model("races", "Submission")
    attempt.objects.filter(submission__isnull=False).update(
        target_kind="submission", target_id=F("submission_id"), priority=0,
        owner_id=Subquery(submission.objects.filter(pk=OuterRef("submission_id")).values("user_id")[:1]),
    )
    attempt.objects.filter(match__isnull=False).update(target_kind="match", target_id=F("match_id"),
                                                       priority=MATCH_PRIORITY, owner_id=None)


def foreign_keys_from_targets(apps, schema_editor) -> None:
    _checks_now(schema_editor)
    attempt = apps.get_model("evaluator", "EvaluationAttempt")
    attempt.objects.filter(target_kind="submission").update(submission_id=F("target_id"))
    attempt.objects.filter(target_kind="match").update(match_id=F("target_id"))
    # Attempts of any other kind cannot exist in the old schema.
    attempt.objects.exclude(target_kind__in=["submission", "match"]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('evaluator', '0003_match_attempts'),
        ('races', '0009_head_to_head_brackets'),
    ]

    operations = [
        migrations.RemoveConstraint(model_name='evaluationattempt', name='evaluator_attempt_one_target'),
        migrations.RemoveConstraint(model_name='evaluationattempt', name='evaluator_attempt_number_unique'),
        migrations.RemoveConstraint(model_name='evaluationattempt', name='evaluator_match_attempt_number_unique'),
        migrations.RemoveConstraint(model_name='evaluationattempt', name='evaluator_one_active_attempt'),
        migrations.RemoveConstraint(model_name='evaluationattempt', name='evaluator_one_active_match_attempt'),
        migrations.AddField(
            model_name='evaluationattempt',
            name='target_kind',
            field=models.CharField(default='', max_length=32),
        ),
        migrations.AddField(
            model_name='evaluationattempt',
            name='target_id',
            field=models.BigIntegerField(null=True),
        ),
        migrations.AddField(
            model_name='evaluationattempt',
            name='owner_id',
            field=models.IntegerField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name='evaluationattempt',
            name='priority',
            field=models.IntegerField(default=0),
        ),
        migrations.RunPython(targets_from_foreign_keys, foreign_keys_from_targets),
    ]
