"""Account services: the racer alias (chosen once) and the API token."""

import re

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework.authtoken.models import Token

from league.models import RacerProfile

# Also the alias field's HTML `pattern`: browsers compile it with the `v` flag, where a literal '-' in a class
# must be escaped (unescaped, Chromium rejects the whole pattern and skips the check).
ALIAS_REGEX = r"[A-Za-z0-9_\-]{3,32}"
ALIAS_PATTERN = re.compile(ALIAS_REGEX)
ALIAS_RULES = "3 to 32 characters: letters, digits, '_' or '-'"


def alias_validate(alias: str) -> str:
    """The alias stripped of surrounding spaces, or ValidationError explaining the rule it breaks."""
    alias = alias.strip()
    if not ALIAS_PATTERN.fullmatch(alias):
        raise ValidationError(f"Alias must be {ALIAS_RULES}.", code="invalid")
    return alias


def racer_alias(user: AbstractBaseUser) -> str | None:
    """The user's racer alias, or None while they have not chosen one (or are anonymous)."""
    if not user.is_authenticated:
        return None
    profile = RacerProfile.objects.filter(user=user).only("alias").first()
    return profile.alias if profile else None


def racer_set_alias(user: AbstractBaseUser, alias: str) -> RacerProfile:
    """Give `user` the racer alias `alias` for good.

    Raises ValidationError when the alias is malformed, already taken (case-insensitively) or when
    the user already has one: aliases identify racers on leaderboards and never change.
    """
    alias = alias_validate(alias)
    if RacerProfile.objects.filter(user=user).exists():
        raise ValidationError("Your racer alias is already set and cannot be changed.", code="immutable")
    if RacerProfile.objects.filter(alias__iexact=alias).exists():
        raise ValidationError(f"The alias {alias!r} is taken.", code="taken")
    try:
        # Savepoint: the unique constraints settle races between two requests without poisoning
        # the caller's transaction.
        with transaction.atomic():
            return RacerProfile.objects.create(user=user, alias=alias)
    except IntegrityError:
        if RacerProfile.objects.filter(user=user).exists():
            raise ValidationError("Your racer alias is already set and cannot be changed.", code="immutable") from None
        raise ValidationError(f"The alias {alias!r} is taken.", code="taken") from None


def api_token_regenerate(user: AbstractBaseUser) -> str:
    """Replace the user's API token with a new one and return its key (shown to the user once)."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user).key


def api_token_exists(user: AbstractBaseUser) -> bool:
    return Token.objects.filter(user=user).exists()
