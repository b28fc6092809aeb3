"""Attempts name their target generically: step 2 of 2. The foreign keys into races go, the target is required,
at most one live attempt per target; the evaluation queue's admin proxy now lives here (it was races')."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('evaluator', '0004_generic_targets'),
    ]

    operations = [
        migrations.RemoveField(model_name='evaluationattempt', name='submission'),
        migrations.RemoveField(model_name='evaluationattempt', name='match'),
        migrations.AlterField(
            model_name='evaluationattempt',
            name='target_kind',
            field=models.CharField(max_length=32),
        ),
        migrations.AlterField(
            model_name='evaluationattempt',
            name='target_id',
            field=models.BigIntegerField(),
        ),
        migrations.AddConstraint(
            model_name='evaluationattempt',
            constraint=models.CheckConstraint(condition=models.Q(('target_kind', ''), _negated=True),
                                              name='evaluator_attempt_has_target',
                                              violation_error_message='An attempt names the kind of its target.'),
        ),
        migrations.AddConstraint(
            model_name='evaluationattempt',
            constraint=models.UniqueConstraint(fields=('target_kind', 'target_id', 'number'),
                                               name='evaluator_attempt_number_unique'),
        ),
        migrations.AddConstraint(
            model_name='evaluationattempt',
            constraint=models.UniqueConstraint(condition=models.Q(('status__in', ['pending', 'running'])),
                                               fields=('target_kind', 'target_id'),
                                               name='evaluator_one_active_attempt'),
        ),
        migrations.CreateModel(
            name='EvaluationQueue',
            fields=[],
            options={
                'verbose_name': 'queued evaluation',
                'verbose_name_plural': 'evaluation queue',
                'proxy': True,
                'indexes': [],
                'constraints': [],
            },
            bases=('evaluator.evaluationattempt',),
        ),
    ]
