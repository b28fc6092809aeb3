"""Built-in data: tracks, the demo race and its baseline entry made by our own code."""

import io

import pytest

from evaluator.models import EvaluationAttempt
from races.models import Race, Submission, Track
from races.setup import BASELINE_ALIAS, DEMO_RACE_NAME, install_builtin_data

pytestmark = pytest.mark.django_db(transaction=True)


def test_builtin_tracks_and_the_demo_race_are_installed_once(settings):
    settings.PITLANE_DEMO_BASELINE = False
    install_builtin_data(io.StringIO())
    install_builtin_data(io.StringIO())
    assert set(Track.objects.values_list("slug", flat=True)) >= {"pitlane_oval", "pitlane_technical",
                                                                  "pitlane_speedway", "pitlane_narrow"}
    race = Race.objects.get(name=DEMO_RACE_NAME)
    assert race.phase() == "open" and race.kind == "virtual_circuit"


@pytest.mark.slow
def test_the_demo_race_gets_a_driver_clone_baseline_entry_queued_for_evaluation(settings):
    settings.PITLANE_DEMO_BASELINE = True
    out = io.StringIO()
    install_builtin_data(out)
    install_builtin_data(io.StringIO())  # idempotent: one baseline submission only
    submission = Submission.objects.get(race__name=DEMO_RACE_NAME)
    assert submission.user.racer.alias == BASELINE_ALIAS and submission.status == "queued"
    assert submission.model.metadata["neural_network"] == "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"
    assert submission.attempts.filter(status=EvaluationAttempt.Status.PENDING).count() == 1
    assert "Baseline entry submitted" in out.getvalue()
