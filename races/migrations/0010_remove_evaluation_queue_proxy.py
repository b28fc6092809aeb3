"""The evaluation queue's admin proxy moved to the evaluator (``evaluator/migrations/0005_drop_race_foreign_keys.py``)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('races', '0009_head_to_head_brackets'),
    ]

    operations = [
        migrations.DeleteModel(
            name='EvaluationQueue',
        ),
    ]
