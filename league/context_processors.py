from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from league.services import racer_alias

# Pages the races app owns; the nav shows each one once its URL name exists.
NAV_URL_NAMES = {
    "races_url": "races:race_list",
    "models_url": "races:model_list",
    "training_url": "races:training_list",
    "train_new_url": "races:training_new",
    "community_url": "races:community_list",
    "tracks_url": "races:track_list",
    "seasons_url": "races:season_list",
    "schedule_url": "races:schedule",
}


def _reverse_or_none(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def site(request: HttpRequest) -> dict[str, object]:
    """`racer_alias` for the account menu, the nav links of the races app and where the source code is."""
    user = getattr(request, "user", None)
    context: dict[str, object] = {"racer_alias": racer_alias(user) if user is not None else None,
                                  "source_url": settings.PITLANE_SOURCE_URL}
    context.update({key: _reverse_or_none(name) for key, name in NAV_URL_NAMES.items()})
    alias = context["racer_alias"]
    try:
        context["profile_url"] = reverse("races:racer_profile", args=[alias]) if alias else None
    except NoReverseMatch:
        context["profile_url"] = None
    return context
