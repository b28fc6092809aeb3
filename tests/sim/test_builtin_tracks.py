"""The built-in tracks are original, well-formed, drivable loops with the advertised character."""

from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import LinearRing, LineString, Polygon

from sim.world.builtin_tracks import BUILTIN_TRACKS, build_builtin_track
from sim.world.geometry import ring_curvature
from sim.world.track import Track
from sim.world.track_catalog import get_track

SHARED_TRACKS = Path(__file__).resolve().parents[2].parent / "shared" / "tracks"
CAR_MIN_TURN_RADIUS = 0.164 / np.tan(np.radians(30))  # wheelbase / tan(max steer) ~ 0.28 m

EXPECTED = {  # name: (length range m, width range m)
    "pitlane_oval": ((17.0, 19.0), (1.0, 1.1)),
    "pitlane_technical": ((22.0, 24.0), (1.0, 1.1)),
    "pitlane_speedway": ((55.0, 60.0), (1.0, 1.1)),
    "pitlane_narrow": ((19.0, 21.0), (0.6, 0.76)),
}


def curvature_stats(track: Track) -> dict[str, float]:
    kappa, ds = ring_curvature(track.center)
    return {
        "mean": float(np.mean(np.abs(kappa))),
        "p90": float(np.quantile(np.abs(kappa), 0.9)),
        "turning": float(np.sum(np.abs(kappa) * ds)),  # total absolute heading change (rad)
    }


def test_the_catalogue_lists_at_least_the_four_designed_tracks_with_texts():
    assert list(BUILTIN_TRACKS)[:4] == list(EXPECTED)
    for spec in BUILTIN_TRACKS.values():
        assert spec.name.islower() and " " not in spec.name
        assert spec.title and len(spec.description) > 30


@pytest.mark.parametrize("name", list(EXPECTED))
def test_builtin_track_is_a_well_formed_ccw_route(name):
    track = get_track(name)
    (lo_len, hi_len), (lo_w, hi_w) = EXPECTED[name]
    spec = BUILTIN_TRACKS[name]
    assert track is build_builtin_track(name)
    assert track.title == spec.title and track.description == spec.description
    assert lo_len <= track.length <= hi_len
    np.testing.assert_allclose(track.widths, spec.width, atol=1e-5)
    assert lo_w <= spec.width <= hi_w
    rows = track.waypoints
    np.testing.assert_array_equal(rows[0], rows[-1])
    spacing = np.linalg.norm(np.diff(track.center, axis=0), axis=1)
    assert spacing.min() >= 0.1 and spacing.max() <= 0.2
    assert track.is_ccw and not track.is_reversed
    # borders: simple rings that do not touch each other, inner inside outer
    inner, outer = LinearRing(track.inner), LinearRing(track.outer)
    assert inner.is_simple and outer.is_simple
    assert not LineString(track.inner).intersects(LineString(track.outer))
    assert Polygon(track.outer).contains(Polygon(track.inner))
    assert Polygon(track.outer, [track.inner]).is_valid
    # the centre line never bends tighter than the car can turn (with margin) or than the border offset allows
    kappa, _ = ring_curvature(track.center)
    min_radius = 1.0 / np.abs(kappa).max()
    assert min_radius >= max(CAR_MIN_TURN_RADIUS + 0.15, spec.width / 2 + 0.08)
    assert bool(track.contains(track.center[:-1]).all())


def test_generation_is_deterministic():
    spec = BUILTIN_TRACKS["pitlane_technical"]
    np.testing.assert_array_equal(spec.rows(), spec.rows())


def test_narrow_track_is_narrow_and_twisty_and_the_speedway_is_fast():
    narrow, oval, speedway = (
        curvature_stats(get_track(n)) for n in ("pitlane_narrow", "pitlane_oval", "pitlane_speedway")
    )
    assert narrow["mean"] > 1.5 * oval["mean"]
    assert speedway["mean"] < 0.5 * oval["mean"]
    straight = np.abs(ring_curvature(get_track("pitlane_speedway").center)[0]) < 0.05
    assert straight.mean() > 0.3  # long straights


@pytest.mark.skipif(not (SHARED_TRACKS / "reInvent2019_track.npy").is_file(), reason="reInvent2019_track.npy absent")
def test_technical_track_is_about_as_demanding_as_the_2019_championship_track():
    ours = curvature_stats(get_track("pitlane_technical"))
    cup = curvature_stats(Track.from_npy(SHARED_TRACKS / "reInvent2019_track.npy"))
    for key in ("mean", "p90", "turning"):
        assert ours[key] == pytest.approx(cup[key], rel=0.2), key
    ours_rmin = 1 / np.abs(ring_curvature(get_track("pitlane_technical").center)[0]).max()
    cup_rmin = 1 / np.abs(ring_curvature(Track.from_npy(SHARED_TRACKS / "reInvent2019_track.npy").center)[0]).max()
    assert ours_rmin == pytest.approx(cup_rmin, rel=0.25)


@pytest.mark.skipif(not SHARED_TRACKS.is_dir(), reason="shared tracks absent")
def test_builtin_layouts_are_not_copies_of_aws_tracks():
    for name in EXPECTED:
        ours = curvature_stats(get_track(name))
        for path in SHARED_TRACKS.glob("*.npy"):
            real = Track.from_npy(path)
            same_length = abs(real.length - get_track(name).length) < 0.05
            same_turns = abs(curvature_stats(real)["turning"] - ours["turning"]) < 0.05
            assert not (same_length and same_turns), (name, path.stem)
