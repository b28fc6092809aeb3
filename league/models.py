from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


class RacerProfile(models.Model):
    """The public identity of a user on leaderboards. The alias is chosen once and never changes."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="racer")
    alias = models.CharField(max_length=32, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("alias"), name="league_racer_alias_ci_unique")]

    def __str__(self) -> str:
        return self.alias
