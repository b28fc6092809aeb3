"""Keep ``Race.leaderboard_version`` moving with every change a leaderboard shows.

Receivers rather than calls in the services: rows also disappear through cascades (a deleted user, model or
submission) and the admin, and a stale cached board must not outlive any of those.
"""

from __future__ import annotations

from django.db.models import F
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from races.models import LeaderboardEntry, Race, Submission


def leaderboard_version_bump(race_id: int) -> None:
    """In the caller's transaction: readers see the new version only together with the change."""
    Race.objects.filter(pk=race_id).update(leaderboard_version=F("leaderboard_version") + 1)


@receiver(post_save, sender=LeaderboardEntry)
@receiver(post_delete, sender=LeaderboardEntry)
def _entry_changed(sender, instance: LeaderboardEntry, **kwargs) -> None:
    leaderboard_version_bump(instance.race_id)


@receiver(post_save, sender=Submission)
def _submission_saved(sender, instance: Submission, created: bool, **kwargs) -> None:
    if created:  # the board's submission counts change; status changes alone do not show on it
        leaderboard_version_bump(instance.race_id)


@receiver(post_delete, sender=Submission)
def _submission_deleted(sender, instance: Submission, **kwargs) -> None:
    leaderboard_version_bump(instance.race_id)
