"""Object-avoidance and head-to-bot races: settings rules (services, API, web form, admin), object layouts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from races.models import Race
from races.services import RuleViolation, race_create, race_update
from races.services.race_settings import race_objects_spec
from sim.world.builtin_tracks import build_builtin_track
from sim.world.objects import BotCars, StaticBoxes, objects_from_spec

pytestmark = pytest.mark.django_db


def settings_for(track, **values) -> dict:
    now = timezone.now()
    return {"name": "Box Cup", "track": track, "opens_at": now - timedelta(hours=1),
            "closes_at": now + timedelta(days=1), "total_laps": 3, "minimum_laps": 1} | values


OA, HTB = "OBJECT_AVOIDANCE", "HEAD_TO_BOT"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"race_type": OA, "box_count": 0}, "number of boxes must be between 1 and 10"),
        ({"race_type": OA, "box_count": 11}, "number of boxes must be between 1 and 10"),
        ({"race_type": OA, "box_placement": "scattered"}, "Box placement must be one of even, custom, random"),
        ({"race_type": OA, "box_placement": "custom"}, "Box positions must be a list"),
        ({"race_type": OA, "box_positions": [{"progress": 20, "lane": "inner"}]}, "only used with the custom"),
        ({"race_type": OA, "box_placement": "custom", "box_count": 2,
          "box_positions": [{"progress": 20, "lane": "inner"}]}, "one position per box: 2 boxes, 1 positions"),
        ({"race_type": OA, "box_placement": "custom",
          "box_positions": [{"progress": 120, "lane": "inner"}]}, "between 0 and 100"),
        ({"race_type": OA, "box_placement": "custom",
          "box_positions": [{"progress": 20, "lane": "middle"}]}, "lane is inner or outer"),
        ({"race_type": OA, "box_placement": "custom", "box_positions": [{"progress": 20}]}, "Each box position is"),
        ({"race_type": OA, "box_placement": "custom", "box_positions": "not a list"}, "Write each box as"),
        # 1 % of the 23 m track is 0.23 m: 2 % apart is too close, so is 2 % from the start line.
        ({"race_type": OA, "box_placement": "custom", "box_positions": [
            {"progress": 40, "lane": "inner"}, {"progress": 42, "lane": "outer"}]}, "at least 1 m apart"),
        ({"race_type": OA, "box_placement": "custom",
          "box_positions": [{"progress": 2, "lane": "inner"}]}, "from the start line"),
        ({"race_type": OA, "bot_count": 2}, "Number of bot cars: only for head to bot races"),
        ({"race_type": HTB, "bot_count": 0}, "number of bot cars must be between 1 and 6"),
        ({"race_type": HTB, "bot_count": 7}, "number of bot cars must be between 1 and 6"),
        ({"race_type": HTB, "bot_speed_mps": 0.1}, "bot speed must be between 0.2 and 4 m/s"),
        ({"race_type": HTB, "bot_speed_mps": 4.5}, "bot speed must be between 0.2 and 4 m/s"),
        ({"race_type": HTB, "bot_speed_mps": float("nan")}, "bot speed must be between"),
        ({"race_type": HTB, "bot_lane_change_s": 1}, "every 2 to 60 s"),
        ({"race_type": HTB, "box_count": 3, "box_placement": "random"},
         "Number of boxes, box placement: only for object avoidance races; leave empty for a head to bot"),
        ({"box_count": 3}, "Number of boxes: only for object avoidance races; leave empty for a time trial"),
        ({"bot_lane_change_s": 5}, "only for head to bot races"),
        ({"race_type": "HEAD_TO_HEAD", "bracket_size": 32}, "bracket size must be one of 2, 4, 8, 16"),
        ({"race_type": "HEAD_TO_HEAD", "bot_count": 2}, "only for head to bot races; leave empty for a head to head"),
    ],
)
def test_object_settings_are_validated_with_clear_messages(technical_track, values, message):
    with pytest.raises(RuleViolation, match=message):
        race_create(Race.Kind.VIRTUAL_CIRCUIT, **settings_for(technical_track, **values))
    assert not Race.objects.exists()


def test_each_type_gets_its_defaults_and_nothing_of_the_other_types(technical_track):
    boxes = race_create(Race.Kind.VIRTUAL_CIRCUIT, **settings_for(technical_track, race_type=OA))
    assert (boxes.box_count, boxes.box_placement, boxes.box_positions) == (3, "even", None)
    assert boxes.bot_count is None and boxes.bot_speed_mps is None
    bots = race_create(Race.Kind.VIRTUAL_CIRCUIT, **settings_for(technical_track, race_type=HTB, bot_count=5,
                                                                   bot_lane_change_s=8))
    assert (bots.bot_count, bots.bot_speed_mps, bots.bot_lane_change_s) == (5, 1.0, 8)
    assert bots.box_count is None and bots.box_placement == ""
    trial = race_create(Race.Kind.VIRTUAL_CIRCUIT, **settings_for(technical_track))
    assert trial.box_count is None and trial.bot_count is None and race_objects_spec(trial) is None
    custom = race_create(Race.Kind.VIRTUAL_CIRCUIT, **settings_for(
        technical_track, race_type=OA, box_placement="custom",
        box_positions=[{"progress": 60, "lane": "outer"}, {"progress": 25.5, "lane": "inner"}]))
    assert custom.box_count == 2  # the positions say how many


def test_changing_the_race_type_drops_the_old_types_settings(make_racer, technical_track):
    organiser = make_racer()
    now = timezone.now()
    race = race_create(Race.Kind.COMMUNITY, organiser=organiser, **settings_for(
        technical_track, race_type=OA, box_count=4, opens_at=now + timedelta(days=1),
        closes_at=now + timedelta(days=2)))
    race = race_update(race, organiser, race_type=HTB, bot_speed_mps=2.5)
    assert race.box_count is None and race.box_placement == "" and (race.bot_count, race.bot_speed_mps) == (3, 2.5)
    with pytest.raises(RuleViolation, match="only for object avoidance races"):
        race_update(race, organiser, race_type="TIME_TRIAL", box_count=2)
    race = race_update(race, organiser, race_type="TIME_TRIAL")
    assert race.bot_count is None and race.bot_speed_mps is None


def test_fixed_layouts_are_evenly_spaced_on_alternating_lanes(technical_track):
    race = race_create(Race.Kind.VIRTUAL_CIRCUIT, **settings_for(technical_track, race_type=OA, box_count=4))
    assert race_objects_spec(race) == {"kind": "boxes", "items": [
        {"ndist": 0.2, "lane": "inner"}, {"ndist": 0.4, "lane": "outer"},
        {"ndist": 0.6, "lane": "inner"}, {"ndist": 0.8, "lane": "outer"}]}
    bots = race_create(Race.Kind.VIRTUAL_CIRCUIT, **settings_for(technical_track, race_type=HTB, bot_count=1,
                                                                   bot_speed_mps=0.8, bot_lane_change_s=10))
    assert race_objects_spec(bots) == {"kind": "bots", "items": [{"ndist": 0.5, "lane": "inner"}],
                                       "speed": 0.8, "lane_change_every_s": 10.0}
    custom = race_create(Race.Kind.VIRTUAL_CIRCUIT, **settings_for(
        technical_track, race_type=OA, box_placement="custom", box_positions="60 outer, 25.5% inner"))
    assert race_objects_spec(custom)["items"] == [{"ndist": 0.255, "lane": "inner"}, {"ndist": 0.6, "lane": "outer"}]


def test_random_boxes_are_drawn_once_per_race_and_stay_put(technical_track):
    values = settings_for(technical_track, race_type=OA, box_count=10, box_placement="random")
    first, second = (race_create(Race.Kind.VIRTUAL_CIRCUIT, **values) for _ in range(2))
    layout = race_objects_spec(first)
    assert layout == race_objects_spec(Race.objects.get(pk=first.pk))  # stored seed: same boxes every time
    assert layout != race_objects_spec(second)  # another race, another draw
    ndists = [item["ndist"] for item in layout["items"]]
    assert ndists == sorted(ndists) and ndists[0] > 0 and ndists[-1] < 1
    assert min(b - a for a, b in zip([0, *ndists], [*ndists, 1], strict=True)) >= 0.5 / 11 - 1e-9
    objects = objects_from_spec(build_builtin_track("pitlane_technical"), layout)
    assert isinstance(objects, StaticBoxes) and len(objects) == 10


def test_the_spec_builds_the_simulators_objects():
    track = build_builtin_track("pitlane_oval")
    bots = objects_from_spec(track, {"kind": "bots", "items": [{"ndist": 0.5, "lane": "outer"}], "speed": 1.5,
                                     "lane_change_every_s": None})
    assert isinstance(bots, BotCars) and bots.speeds.tolist() == [1.5] and bots.lanes == ["outer"]
    assert objects_from_spec(track, None) is None


API_BASE = {"name": "API Boxes", "track": "pitlane_technical", "opens_at": "2030-01-01T00:00:00Z",
            "closes_at": "2030-01-02T00:00:00Z"}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"race_type": OA, "box_count": 12}, "between 1 and 10"),
        ({"race_type": OA, "box_placement": "custom", "box_positions": {"progress": 5}}, "must be a list"),
        ({"race_type": OA, "box_placement": "custom", "box_positions": [["20", "inner"]]}, "Each box position"),
        ({"race_type": OA, "box_placement": "custom", "box_positions": [{"progress": True, "lane": "inner"}]},
         "between 0 and 100"),
        ({"race_type": OA, "box_placement": "custom", "box_positions": [{"progress": 10**400, "lane": "inner"}]},
         "between 0 and 100"),
        ({"race_type": HTB, "bot_speed_mps": 9}, "between 0.2 and 4 m/s"),
        ({"race_type": HTB, "box_placement": "random"}, "only for object avoidance races"),
        ({"bot_count": 2}, "leave empty for a time trial"),
        ({"race_type": "HEAD_TO_HEAD", "bracket_size": 5}, "bracket size must be one of 2, 4, 8, 16"),
        ({"race_type": "HEAD_TO_HEAD", "bracket_size": 0}, "bracket size must be one of"),
    ],
)
def test_the_api_refuses_bad_object_settings_with_a_json_message(make_racer, technical_track, payload, message):
    api = APIClient()
    api.force_authenticate(make_racer())
    response = api.post("/api/races/", API_BASE | payload, format="json")
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json")
    assert message in str(response.json())
    assert not Race.objects.exists()


def test_the_api_creates_and_shows_object_races(make_racer, technical_track):
    api = APIClient()
    api.force_authenticate(make_racer())
    custom = [{"progress": 30, "lane": "inner"}, {"progress": 70, "lane": "outer"}]
    created = api.post("/api/races/", API_BASE | {"race_type": OA, "box_placement": "custom",
                                                  "box_positions": custom}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["box_count"], body["box_placement"], body["box_positions"]) == (2, "custom", custom)
    assert body["bot_count"] is None and "objects_seed" not in body
    bots = api.post("/api/races/", API_BASE | {"race_type": HTB, "bot_count": 6, "bot_speed_mps": 0.5}, format="json")
    assert bots.status_code == 201 and bots.json()["bot_count"] == 6 and bots.json()["box_count"] is None


def race_form(track, **values) -> dict:
    opens = timezone.localtime() + timedelta(days=1)
    return {"name": "Club Boxes", "description": "", "race_type": "TIME_TRIAL", "track": track.pk,
            "direction": "counterclockwise", "ranking_method": "BEST_LAP_TIME", "total_laps": 3, "minimum_laps": 1,
            "off_track_penalty_s": 2, "collision_penalty_s": 5, "max_resets": "", "time_cap_s": 180,
            "opens_at": opens.strftime("%Y-%m-%dT%H:%M"),
            "closes_at": (opens + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"), "max_submissions_per_racer": 10,
            "submission_cooldown_s": 0, "box_count": "", "box_placement": "", "box_positions": "", "bot_count": "",
            "bot_speed_mps": "", "bot_lane_change_s": ""} | values


def test_the_web_form_creates_edits_and_refuses_object_races(make_racer, technical_track, client):
    client.force_login(make_racer("Organiser"))
    page = client.get("/races/community/new/").content.decode()
    assert 'data-race-type="OBJECT_AVOIDANCE"' in page and "Head to bot" in page
    assert 'data-race-type="HEAD_TO_HEAD"' in page and '<option value="16">16 racers</option>' in page
    bad = client.post("/races/community/new/", race_form(technical_track, box_count=4)).content.decode()
    assert "only for object avoidance races; leave empty for a time trial" in bad
    bad = client.post("/races/community/new/", race_form(technical_track, race_type=OA, box_placement="custom",
                                                         box_positions="20 inside")).content.decode()
    assert "A box&#x27;s lane is inner or outer" in bad
    created = client.post("/races/community/new/", race_form(technical_track, race_type=OA, box_placement="custom",
                                                             box_positions="20 inner, 60 outer"))
    race = Race.objects.get(name="Club Boxes")
    assert created.status_code == 302 and race.box_count == 2
    assert race.box_positions == [{"progress": 20, "lane": "inner"}, {"progress": 60, "lane": "outer"}]
    manage = client.get(f"/races/{race.slug}/manage/").content.decode()
    assert 'value="20 inner, 60 outer"' in manage
    # Switching type in the browser disables the box fields, so they are not sent.
    form = race_form(technical_track, race_type=HTB, bot_count=2, bot_lane_change_s=5)
    saved = client.post(f"/races/{race.slug}/manage/", {k: v for k, v in form.items() if not k.startswith("box_")})
    race.refresh_from_db()
    assert saved.status_code == 302 and (race.race_type, race.bot_count, race.box_count) == (HTB, 2, None)


def test_the_race_page_lists_the_object_settings(make_race, client):
    boxes = make_race(name="Boxes", race_type=OA, box_count=5, box_placement="random")
    page = client.get(f"/races/{boxes.slug}/").content.decode()
    assert "5 boxes" in page and "random positions" in page
    bots = make_race(name="Bots", race_type=HTB, bot_count=2, bot_speed_mps=1.5, bot_lane_change_s=6)
    page = client.get(f"/races/{bots.slug}/").content.decode()
    assert "2 bot cars at 1.5 m/s" in page and "change lanes every 6 s" in page


def test_the_admin_form_applies_defaults_and_refuses_other_types_settings(client, technical_track):
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-12345!"))
    now = timezone.now()
    form = {
        "name": "Admin Boxes", "slug": "admin-boxes", "kind": "virtual_circuit", "race_type": OA,
        "track": technical_track.pk, "direction": "counterclockwise", "ranking_method": "BEST_LAP_TIME",
        "total_laps": 3, "minimum_laps": 1, "off_track_penalty_s": 2, "collision_penalty_s": 5, "time_cap_s": 180,
        "opens_at_0": now.strftime("%Y-%m-%d"), "opens_at_1": "00:00:00",
        "closes_at_0": (now + timedelta(days=5)).strftime("%Y-%m-%d"), "closes_at_1": "00:00:00",
        "max_submissions_per_racer": 10, "submission_cooldown_s": 0, "bot_count": 2,
        "participants-TOTAL_FORMS": 0, "participants-INITIAL_FORMS": 0,
    }
    refused = client.post("/admin/races/race/add/", form)
    assert refused.status_code == 200 and "only for head to bot races" in refused.content.decode()
    created = client.post("/admin/races/race/add/", form | {"bot_count": ""})
    assert created.status_code == 302
    race = Race.objects.get(slug="admin-boxes")
    assert (race.box_count, race.box_placement) == (3, "even") and race_objects_spec(race)["kind"] == "boxes"


def test_the_replay_and_the_trajectory_picture_show_the_boxes(make_racer, make_race, make_model, client):
    import io

    import numpy as np
    from PIL import Image

    from races.models import Run
    from races.services import submission_create
    from sim.io.render import BOX
    from tests.races.test_services import score

    racer = make_racer()
    boxes = make_race(name="Boxes", race_type=OA, box_count=3)
    submission = submission_create(racer, boxes, make_model(racer))
    score(submission, 10.25)
    trace = {"t": [0.1, 0.2], "x": [0.0, 0.1], "y": [0.0, 0.0], "yaw": [0, 0], "speed": [1, 1], "status": ["", ""]}
    Run.objects.filter(submission=submission).update(trace=trace)
    client.force_login(racer)
    run = client.get(f"/submissions/{submission.pk}/status.json").json()["run"]
    assert len(run["boxes"]) == 3 and all(np.asarray(box).shape == (4, 2) for box in run["boxes"])
    corners = np.asarray(run["boxes"][0])
    assert np.hypot(*(corners[0] - corners[1])) == pytest.approx(0.4, abs=0.01)  # 0.5 x 0.4 m
    picture = Image.open(io.BytesIO(client.get(f"/submissions/{submission.pk}/trajectory.png").content))
    pixels = np.asarray(picture.convert("RGB")).reshape(-1, 3)
    assert (np.abs(pixels.astype(int) - BOX).sum(axis=1) < 30).sum() > 50  # orange boxes on the road

    trial = make_race(name="Trial")
    plain = submission_create(racer, trial, make_model(racer, "other"))
    score(plain, 10.25)
    assert client.get(f"/submissions/{plain.pk}/status.json").json()["run"]["boxes"] == []


def box_pixels(png: bytes) -> int:
    import io

    import numpy as np
    from PIL import Image

    from sim.io.render import BOX

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).astype(int)
    return int((np.abs(pixels - BOX).sum(axis=1) < 30).sum())


def test_the_race_page_map_shows_the_boxes_and_follows_the_direction(make_race, client):
    boxes = make_race(name="Boxes", race_type=OA, box_count=3)
    mirrored = make_race(name="Mirrored", race_type=OA, box_count=3, direction="clockwise")
    trial = make_race(name="Trial")

    box_map = client.get(f"/races/{boxes.slug}/track.png")
    assert box_map.status_code == 200 and box_map["Content-Type"] == "image/png"
    assert box_pixels(box_map.content) > 20
    assert box_pixels(client.get(f"/races/{trial.slug}/track.png").content) == 0
    # Driven the other way the boxes sit elsewhere and the arrow turns: a different picture.
    assert client.get(f"/races/{mirrored.slug}/track.png").content != box_map.content

    Race.objects.filter(pk=boxes.pk).update(box_count=1)  # as an admin edit does
    assert box_pixels(client.get(f"/races/{boxes.slug}/track.png").content) < box_pixels(box_map.content)
