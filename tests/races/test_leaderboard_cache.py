"""Cached leaderboards are never stale: every change a board shows moves its version, and every cache
(in-process table, shared cache, the page's rendered rows, API pages and their ETags) is keyed on it."""

from __future__ import annotations

import re

import pytest
from django.contrib import messages
from django.contrib.messages.storage.base import Message
from django.contrib.messages.storage.cookie import CookieStorage
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from races.models import Race, Submission
from races.services import leaderboard_table, submission_create, submission_disqualify
from tests.races.test_services import score

pytestmark = pytest.mark.django_db


def racers_on(race: Race) -> list[tuple[str, int]]:
    return [(row["racer"], row["submission_count"]) for row in leaderboard_table(race)]


def board(html: str) -> list[str]:
    return re.findall(r'<td class="alias"><a href="[^"]+">([^<]+)</a></td>', html)


def test_the_table_follows_every_change_even_through_a_race_loaded_before_it(make_racer, make_race, make_model):
    race = make_race()
    fast, slow = make_racer("Fast"), make_racer("Slow")
    assert racers_on(race) == []

    first = submission_create(fast, race, make_model(fast))
    score(first, 10.0)
    assert racers_on(race) == [("Fast", 1)]
    score(submission_create(slow, race, make_model(slow)), 12.0)
    assert racers_on(race) == [("Fast", 1), ("Slow", 1)]

    submission_create(slow, race, make_model(slow, name="second"))  # queued: only the submission count changes
    assert racers_on(race) == [("Fast", 1), ("Slow", 2)]

    submission_disqualify(first)
    assert racers_on(race) == [("Slow", 2)]

    Submission.objects.filter(user=slow).delete()  # rows also leave through cascades (here: of the submissions)
    assert racers_on(race) == []


def test_another_race_keeps_its_own_cached_table(make_racer, make_race, make_model):
    one, two = make_race(name="One"), make_race(name="Two")
    racer = make_racer("Solo")
    score(submission_create(racer, one, make_model(racer)), 10.0)
    assert racers_on(one) == [("Solo", 1)] and racers_on(two) == []


def test_the_api_answers_an_unchanged_board_with_304_and_a_changed_one_with_the_new_rows(
    make_racer, make_race, make_model
):
    race = make_race()
    racer = make_racer("Fast")
    api = APIClient()
    url = f"/api/races/{race.slug}/leaderboard/"

    empty = api.get(url)
    assert empty.status_code == 200 and empty.json()["count"] == 0
    etag = empty["ETag"]
    unchanged = api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304 and unchanged.content == b""

    score(submission_create(racer, race, make_model(racer)), 10.0)
    changed = api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert [row["racer"] for row in changed.json()["results"]] == ["Fast"]
    assert api.get(f"{url}?page=2", HTTP_IF_NONE_MATCH=changed["ETag"]).status_code == 404  # pages differ


def test_a_private_boards_etag_opens_nothing_for_a_stranger(make_racer, make_race):
    organiser = make_racer("Host")
    race = make_race(Race.Kind.COMMUNITY, organiser=organiser)
    member = APIClient()
    member.force_authenticate(organiser)
    url = f"/api/races/{race.slug}/leaderboard/"
    etag = member.get(url)["ETag"]

    stranger = APIClient()
    stranger.force_authenticate(make_racer("Stranger"))
    assert stranger.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 404
    assert APIClient().get(url, HTTP_IF_NONE_MATCH=etag).status_code == 404


def test_the_race_page_shows_the_new_row_and_highlights_only_the_viewers_own(make_racer, make_race, make_model):
    race = make_race()
    fast, slow = make_racer("Fast"), make_racer("Slow")
    score(submission_create(fast, race, make_model(fast)), 10.0)
    anonymous, as_slow = Client(), Client()
    as_slow.force_login(slow)
    page = f"/races/{race.slug}/"
    assert board(anonymous.get(page).content.decode()) == ["Fast"]

    score(submission_create(slow, race, make_model(slow)), 12.0)
    html = as_slow.get(page).content.decode()
    assert board(html) == ["Fast", "Slow"] and 'mine" data-submission' in html
    html = anonymous.get(page).content.decode()
    assert board(html) == ["Fast", "Slow"] and 'mine"' not in html


def test_spectators_share_one_page_that_still_follows_every_change(make_racer, make_race, make_model, client):
    race = make_race(name="Spectator Cup")
    fast = make_racer("Fast")
    page = client.get(f"/races/{race.slug}/").content.decode()
    assert board(page) == [] and "Spectator Cup" in page

    score(submission_create(fast, race, make_model(fast)), 10.0)
    assert board(client.get(f"/races/{race.slug}/").content.decode()) == ["Fast"]

    Race.objects.filter(pk=race.pk).update(name="Renamed Cup", collision_penalty_s=7)  # an admin edit
    page = client.get(f"/races/{race.slug}/").content.decode()
    assert "Renamed Cup" in page and "Spectator Cup" not in page
    race.track.__class__.objects.filter(pk=race.track_id).update(title="Retitled Track")
    assert "Retitled Track" in client.get(f"/races/{race.slug}/").content.decode()


def test_signed_in_racers_and_waiting_messages_never_get_the_spectators_page(make_racer, make_race, make_model):
    race = make_race(name="Personal Cup")
    Client().get(f"/races/{race.slug}/")  # fills the spectators' copy
    racer = make_racer("Mine")
    signed_in = Client()
    signed_in.force_login(racer)
    page = signed_in.get(f"/races/{race.slug}/").content.decode()
    assert "Submit a model" in page and "Mine" in page

    flashed = Client()  # a flash message waiting in its cookie (as after a refused join link)
    storage = CookieStorage(RequestFactory().get("/"))
    flashed.cookies["messages"] = storage._encode([Message(messages.ERROR, "That invite code has expired.")])
    assert "That invite code has expired." in flashed.get(f"/races/{race.slug}/").content.decode()
    assert "That invite code has expired." not in Client().get(f"/races/{race.slug}/").content.decode()
