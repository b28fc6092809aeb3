import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from league.services import api_token_exists, api_token_regenerate, racer_alias, racer_set_alias

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", password="pw-alice-123")


@pytest.fixture
def bob() -> User:
    return User.objects.create_user("bob", password="pw-bob-123")


def test_a_new_user_has_no_alias_until_they_choose_one(alice):
    assert racer_alias(alice) is None
    racer_set_alias(alice, "Speedy_Al-1")
    assert racer_alias(alice) == "Speedy_Al-1"


def test_anonymous_visitors_have_no_alias():
    assert racer_alias(AnonymousUser()) is None


def test_surrounding_spaces_are_ignored(alice):
    racer_set_alias(alice, "  alice  ")
    assert racer_alias(alice) == "alice"


@pytest.mark.parametrize("alias", ["ab", "x" * 33, "has space", "dot.ted", "émile", "", "semi;colon"])
def test_malformed_aliases_are_rejected_with_the_rule(alice, alias):
    with pytest.raises(ValidationError, match="3 to 32 characters"):
        racer_set_alias(alice, alias)
    assert racer_alias(alice) is None


@pytest.mark.parametrize("alias", ["abc", "x" * 32, "A-b_9"])
def test_aliases_at_the_limits_are_accepted(alice, alias):
    racer_set_alias(alice, alias)
    assert racer_alias(alice) == alias


def test_aliases_are_unique_ignoring_case(alice, bob):
    racer_set_alias(alice, "Turbo")
    with pytest.raises(ValidationError, match="taken"):
        racer_set_alias(bob, "tURBO")
    assert racer_alias(bob) is None


def test_an_alias_cannot_be_changed(alice):
    racer_set_alias(alice, "first")
    with pytest.raises(ValidationError, match="cannot be changed"):
        racer_set_alias(alice, "second")
    assert racer_alias(alice) == "first"


def test_the_database_enforces_case_insensitive_uniqueness(alice, bob):
    from django.db import IntegrityError, transaction

    from league.models import RacerProfile

    RacerProfile.objects.create(user=alice, alias="Zoom")
    with pytest.raises(IntegrityError), transaction.atomic():
        RacerProfile.objects.create(user=bob, alias="zoom")


def test_a_regenerated_token_authenticates_and_revokes_the_old_one(alice):
    assert not api_token_exists(alice)
    first = api_token_regenerate(alice)
    user, _ = TokenAuthentication().authenticate_credentials(first)
    assert user == alice
    second = api_token_regenerate(alice)
    assert second != first
    assert TokenAuthentication().authenticate_credentials(second)[0] == alice
    with pytest.raises(AuthenticationFailed):
        TokenAuthentication().authenticate_credentials(first)
