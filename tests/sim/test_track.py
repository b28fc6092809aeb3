"""`Track` reproduces the DeepRacer simapp's shapely-based track semantics on the real route files."""

import bisect
import re
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import LinearRing, Point, Polygon

from sim.world.track import Track
from sim.world.track_catalog import get_track

SHARED_TRACKS = Path(__file__).resolve().parents[2].parent / "shared" / "tracks"
TRACK_FILES = sorted(SHARED_TRACKS.glob("*.npy")) if SHARED_TRACKS.is_dir() else []
needs_shared = pytest.mark.skipif(not TRACK_FILES, reason=f"real track files not found in {SHARED_TRACKS}")


def shared(name: str) -> Track:
    path = SHARED_TRACKS / f"{name}.npy"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    return Track.from_npy(path)


def readme_lengths() -> dict[str, float]:
    text = (SHARED_TRACKS / "README.md").read_text()
    row = re.compile(r"^\| `([^`]+)\.npy` \| \(\d+, 6\) \| \w+ \| ([\d.]+) \|", re.M)
    return {m[1]: float(m[2]) for m in row.finditer(text)}


def points_around(track: Track, n: int, spread: float, seed: int = 0) -> np.ndarray:
    """Points along the centre line pushed sideways by up to `spread` metres, plus exact waypoints."""
    rng = np.random.default_rng(seed)
    ndist = rng.uniform(0, 1, n)
    base = track.interpolate(ndist)
    return np.vstack([base + rng.normal(0, spread, (n, 2)), track.center, track.inner, track.outer])


def simapp_ndists(ring: LinearRing) -> list[float]:
    return [ring.project(Point(p), normalized=True) for p in list(ring.coords)[:-1]] + [1.0]


def simapp_prev_next(ndists: list[float], ndist: float) -> tuple[int, int]:
    nxt = bisect.bisect_right(ndists, ndist)
    prev = nxt - 1
    if prev == -1:
        prev = len(ndists) - 1
    if nxt == len(ndists):
        nxt = 0
    return prev, nxt


@needs_shared
def test_track_length_matches_the_readme_table_for_every_shared_file():
    expected = readme_lengths()
    assert len(expected) == len(TRACK_FILES)
    for path in TRACK_FILES:
        track = Track.from_npy(path)
        assert track.length == pytest.approx(expected[path.stem], abs=5e-4), path.stem
        assert track.length == LinearRing(np.load(path)[:, :2]).length
        assert track.cumulative[-1] == track.length


@needs_shared
@pytest.mark.parametrize("path", TRACK_FILES, ids=lambda p: p.stem)
def test_projection_is_bit_exact_with_shapely_in_both_directions(path):
    for track in (Track.from_npy(path), Track.from_npy(path).reversed()):
        ring = LinearRing(track.center)
        pts = points_around(track, 600, 0.6)
        proj = track.project(pts)
        expected = shapely.line_locate_point(ring, shapely.points(pts), normalized=True)
        np.testing.assert_array_equal(proj.ndist, expected)
        np.testing.assert_allclose(proj.s, proj.ndist * track.length, rtol=0, atol=1e-12)
        nearest = shapely.get_coordinates(shapely.line_interpolate_point(ring, expected, normalized=True))
        np.testing.assert_allclose(proj.point, nearest, atol=1e-12)
        np.testing.assert_allclose(proj.distance, shapely.distance(ring, shapely.points(pts)), atol=1e-12)


@needs_shared
def test_points_far_outside_the_grid_still_project_exactly():
    track = shared("reInvent2019_track")
    pts = np.array([[-50.0, -40.0], [100.0, 3.0], [4.0, 60.0]])
    expected = shapely.line_locate_point(LinearRing(track.center), shapely.points(pts), normalized=True)
    np.testing.assert_array_equal(track.project(pts).ndist, expected)


@needs_shared
@pytest.mark.parametrize("name", ["reInvent2019_track", "Spain_track", "2022_reinvent_champ", "Bowtie_track"])
def test_closest_waypoints_follow_find_prev_next(name):
    for track in (shared(name), shared(name).reversed()):
        ring = LinearRing(track.center)
        pts = points_around(track, 150, 0.4, seed=1)
        ndist = track.project(pts).ndist
        got = track.closest_waypoints(ndist)
        ndists = simapp_ndists(ring)
        expected = [simapp_prev_next(ndists, x) for x in ndist]
        assert got.tolist() == [list(e) for e in expected]
        # the lap boundary: ndist 1.0 wraps to [last, 0]
        assert track.closest_waypoints([0.0, 1.0]).tolist()[1] == [len(track.center) - 1, 0]


@needs_shared
def test_closest_waypoint_is_the_nearer_of_prev_and_next():
    track = shared("reInvent2019_track")
    pts = points_around(track, 100, 0.3, seed=2)
    ndist = track.project(pts).ndist
    prev_next = track.closest_waypoints(ndist)
    got = track.closest_waypoint(pts, ndist)
    for p, (i, j), k in zip(pts, prev_next, got, strict=True):
        d_prev, d_next = np.linalg.norm(p - track.center[i]), np.linalg.norm(p - track.center[j])
        assert k == (j if d_next < d_prev else i)


@needs_shared
def test_reinvent_base_progress_from_a_real_simtrace():
    track = shared("reinvent_base")
    proj = track.project(np.array([[3.1999032745384617, 0.6830977174476494]]))
    assert 100 * proj.ndist[0] == 0.7915139235659773
    assert track.length == 17.709159380834848


@needs_shared
@pytest.mark.parametrize("name", ["reInvent2019_track", "Spain_track"])
def test_is_left_of_center_is_relative_to_the_driving_direction(name):
    for track in (shared(name), shared(name).reversed()):
        rng = np.random.default_rng(3)
        ndist = rng.uniform(0, 1, 200)
        center, yaw = track.pose_at(ndist)
        # Offset each point sideways from the driving direction (left = +90 degrees).
        left = np.stack([-np.sin(yaw), np.cos(yaw)], axis=1)
        side = rng.choice([-1.0, 1.0], 200)
        pts = center + left * (side * rng.uniform(0.05, 0.3, 200))[:, None]
        centre_pts = track.project(pts).point
        got = track.is_left_of_center(pts, centre_pts)
        np.testing.assert_array_equal(got, side > 0)
        # ...and matches the simapp formula with shapely on the direction-dependent rings
        inner, outer = LinearRing(track.inner), LinearRing(track.outer)
        ccw = LinearRing(track.center).is_ccw
        for p, c, g in zip(pts[:40], centre_pts[:40], got[:40], strict=True):
            near_in = inner.interpolate(inner.project(Point(c)))
            near_out = outer.interpolate(outer.project(Point(c)))
            assert g == ((Point(p).distance(near_in) < Point(p).distance(near_out)) ^ (not ccw))


@needs_shared
def test_driving_direction_flags():
    spain = shared("Spain_track")
    assert not spain.is_ccw and not spain.is_reversed
    assert spain.reversed().is_ccw and spain.reversed().is_reversed
    assert spain.with_direction("counterclockwise") == spain.reversed()
    assert spain.with_direction("clockwise") is spain
    smile = shared("reInvent2019_track")
    assert smile.is_ccw
    np.testing.assert_array_equal(smile.reversed().waypoints, smile.waypoints[::-1])
    assert smile.reversed().length == pytest.approx(smile.length, abs=1e-12)
    assert smile.reversed().reversed() == smile


@needs_shared
@pytest.mark.parametrize("path", TRACK_FILES, ids=lambda p: p.stem)
def test_contains_matches_shapely_polygon_including_points_within_a_millimetre_of_the_borders(path):
    track = Track.from_npy(path)
    rng = np.random.default_rng(4)
    lo, hi = np.array(track.bounds[:2]) - 1.0, np.array(track.bounds[2:]) + 1.0
    border = np.vstack([track.inner, track.outer])
    k = rng.integers(0, len(border) - 1, 3000)
    f = rng.uniform(0, 1, (3000, 1))
    on_border = border[k] * (1 - f) + border[(k + 1) % len(border)] * f  # points near border segments
    pts = np.vstack(
        [
            rng.uniform(lo, hi, (3000, 2)),
            on_border + rng.uniform(-1e-3, 1e-3, (3000, 2)),
            track.inner,
            track.outer,
            track.center,
        ]
    )
    poly = Polygon(track.outer, [track.inner])
    np.testing.assert_array_equal(track.contains(pts), shapely.contains_xy(poly, pts[:, 0], pts[:, 1]))


@needs_shared
def test_track_width_on_a_variable_width_track_matches_the_simapp_definition():
    track = shared("Bowtie_track")
    pts = points_around(track, 200, 0.3, seed=5)
    centre_pts = track.project(pts).point
    got = track.track_width(centre_pts)
    inner, outer = LinearRing(track.inner), LinearRing(track.outer)
    expected = [
        inner.interpolate(inner.project(Point(c))).distance(outer.interpolate(outer.project(Point(c))))
        for c in centre_pts
    ]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    # Row-wise widths vary a lot on Bowtie; the simapp definition (nearest border points) does not.
    assert track.widths.max() > 1.0 > got.max()


@needs_shared
def test_pose_at_start_faces_the_next_waypoint():
    track = shared("reinvent_base")
    xy, yaw = track.pose_at([0.0, 0.5])
    np.testing.assert_array_equal(xy[0], track.center[0])
    d = track.center[1] - track.center[0]
    assert yaw[0] == pytest.approx(np.arctan2(d[1], d[0]))
    nxt = track.closest_waypoints([0.5])[0, 1]
    d = track.center[nxt] - xy[1]
    assert yaw[1] == pytest.approx(np.arctan2(d[1], d[0]))


@needs_shared
def test_lane_points_lie_halfway_between_centre_and_border():
    track = shared("reInvent2019_track")  # constant width 1.067 m
    ndist = np.linspace(0, 1, 50, endpoint=False)
    centre = track.interpolate(ndist)
    for lane in ("inner", "outer"):
        pts = track.lane_point(ndist, lane)
        np.testing.assert_allclose(np.linalg.norm(pts - centre, axis=1), 1.067 / 4, atol=0.02)
        assert track.contains(pts).all()
    left = track.is_left_of_center(track.lane_point(ndist, "inner"), centre)
    assert left.all()  # CCW track: the inner lane is on the driver's left
    with pytest.raises(ValueError, match="lane"):
        track.lane_point(ndist, "middle")


@needs_shared
def test_get_track_finds_shared_files_by_name_and_memoises(monkeypatch):
    track = get_track("reInvent2019_track", tracks_dir=SHARED_TRACKS)
    assert track.name == "reInvent2019_track" and track.n_waypoints == 155
    assert get_track("reInvent2019_track", tracks_dir=SHARED_TRACKS) is track
    monkeypatch.setenv("PITLANE_TRACKS_DIR", str(SHARED_TRACKS))
    assert get_track("Spain_track").name == "Spain_track"


def test_get_track_unknown_name_lists_the_available_tracks(tmp_path):
    with pytest.raises(KeyError, match="pitlane_oval"):
        get_track("no_such_track", tracks_dir=tmp_path)


def test_builtin_tracks_are_memoised():
    assert get_track("pitlane_oval") is get_track("pitlane_oval")


def square_rows(n_side: int = 10) -> np.ndarray:
    """A 4 x 4 m square loop, 1 m wide, CCW, with one duplicate row."""
    t = np.linspace(0, 1, n_side, endpoint=False)
    side = [
        np.stack([t * 4, 0 * t], 1),
        np.stack([4 + 0 * t, t * 4], 1),
        np.stack([4 - t * 4, 4 + 0 * t], 1),
        np.stack([0 * t, 4 - t * 4], 1),
    ]
    c = np.vstack(side)
    inner = c * 0.875 + 0.25
    outer = c * 1.125 - 0.25
    rows = np.hstack([c, inner, outer])
    rows = np.insert(rows, 5, rows[5], axis=0)  # duplicate row, kept
    return np.vstack([rows, rows[:1]])


def test_from_array_keeps_raw_rows_and_is_read_only():
    rows = square_rows()
    track = Track.from_array(rows, "square", title="Square")
    np.testing.assert_array_equal(track.waypoints, rows)
    assert track.length == pytest.approx(16.0)
    assert track.is_ccw and track.title == "Square"
    with pytest.raises(ValueError):
        track.waypoints[0, 0] = 1.0
    track.cache["x"] = 1
    assert track == Track.from_array(rows, "square")
    # the duplicate row makes a zero-length segment that never wins a projection
    proj = track.project(np.array([[2.5, 0.3], [2.0, -0.2]]))
    np.testing.assert_allclose(proj.point, [[2.5, 0.0], [2.0, 0.0]])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (np.zeros((10, 5)), "shape"),
        (np.zeros((3, 6)), "at least 4"),
        (np.vstack([square_rows()[:-1], square_rows()[1]]), "closed"),
        (np.where(np.arange(6) == 0, np.nan, square_rows()), "NaN"),
    ],
)
def test_from_array_rejects_bad_rows(rows, message):
    with pytest.raises(ValueError, match=message):
        Track.from_array(rows, "bad")


def test_from_npy_reports_unreadable_files(tmp_path):
    bad = tmp_path / "broken.npy"
    bad.write_text("not numpy")
    with pytest.raises(ValueError, match="cannot read track file"):
        Track.from_npy(bad)


def test_a_route_file_is_a_track_by_its_path(tmp_path, monkeypatch):
    from sim.learn.config import TrainingConfig
    from sim.world.reward_examples import example_source
    from sim.world.track_catalog import track_argument
    from sim.world.vehicle import get_vehicle

    rows = get_track("pitlane_oval").waypoints
    np.save(tmp_path / "club-oval.npy", rows)
    monkeypatch.chdir(tmp_path)
    track = get_track("club-oval.npy")  # e.g. downloaded from a league's tracks page
    assert track.name == "club-oval" and np.array_equal(track.waypoints, rows)
    assert get_track("club-oval.npy") is track
    with pytest.raises(KeyError, match=r"no track file 'missing\.npy'"):
        get_track("missing.npy")

    # A training run keeps the file's absolute path, so resuming from another folder finds it.
    config = TrainingConfig(track=track_argument("club-oval.npy"), vehicle=get_vehicle("original_deepracer"),
                            reward_function_source=example_source("example_1_follow_center_line"))
    assert config.track == str(tmp_path / "club-oval.npy")
    monkeypatch.chdir("/")
    assert np.array_equal(config.load_track().waypoints, rows)
    assert track_argument("pitlane_oval") == "pitlane_oval"
