"""Exact batched geometry: nearest-point projection and strict point-in-road, checked against shapely."""

import numpy as np
import pytest
import shapely
from shapely.geometry import LinearRing, Polygon

from sim.world.geometry import Polyline, RoadRegion, as_points, ring_curvature, signed_area


def star_ring(n: int = 120, seed: int = 0) -> np.ndarray:
    """A wobbly closed ring (radius 2-3 m) with one duplicated vertex."""
    rng = np.random.default_rng(seed)
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 2.5 + 0.4 * np.sin(5 * a) + rng.uniform(-0.05, 0.05, n)
    ring = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
    ring = np.insert(ring, 10, ring[10], axis=0)
    return np.vstack([ring, ring[:1]])


SQUARE = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0], [0.0, 0.0]])


def test_projection_is_bit_exact_with_shapely_on_a_random_ring():
    ring = star_ring()
    line = Polyline(ring)
    pts = np.random.default_rng(1).uniform(-6, 6, (5000, 2))  # includes points beyond the grid margin
    s, segment, nearest, distance = line.project(pts)
    shp = LinearRing(ring)
    np.testing.assert_array_equal(s, shapely.line_locate_point(shp, shapely.points(pts)))
    np.testing.assert_allclose(distance, shapely.distance(shp, shapely.points(pts)), atol=1e-12)
    np.testing.assert_allclose(nearest, line.interpolate(s), atol=1e-12)
    assert line.length == shp.length
    assert np.all(line.segment_start[segment] <= s + 1e-12)


def test_ties_go_to_the_first_segment_like_shapely():
    line = Polyline(SQUARE)
    s, segment, _, distance = line.project(np.array([[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]]))
    assert segment.tolist() == [0, 0, 1]  # centre: equidistant to all sides; vertices: first segment
    assert s.tolist() == [1.0, 0.0, 4.0]
    assert distance.tolist() == [1.0, 0.0, 0.0]


def test_zero_length_segments_are_kept_but_never_change_the_answer():
    with_dup = np.insert(SQUARE, 2, SQUARE[2], axis=0)
    a, b = Polyline(SQUARE), Polyline(with_dup)
    assert b.n_segments == a.n_segments + 1 and b.length == a.length
    assert b.segment_length[2] == 0.0 and not b.segment_direction[2].any()
    pts = np.random.default_rng(2).uniform(-1, 3, (500, 2))
    np.testing.assert_array_equal(a.project(pts)[0], b.project(pts)[0])


def test_interpolate_clamps_to_the_ends_and_hits_vertices_exactly():
    line = Polyline(SQUARE)
    got = line.interpolate(np.array([-1.0, 0.0, 1.0, 2.0, 8.0, 9.0]))
    np.testing.assert_array_equal(got, [[0, 0], [0, 0], [1, 0], [2, 0], [0, 0], [0, 0]])


def test_road_region_matches_shapely_polygon_with_hole():
    outer = star_ring(seed=3) * 1.2
    inner = star_ring(seed=3) * 0.8
    region = RoadRegion([outer, inner])
    rng = np.random.default_rng(4)
    k = rng.integers(0, len(outer) - 1, 4000)
    near_edges = np.vstack([outer[k], inner[k]]) + rng.uniform(-1e-3, 1e-3, (8000, 2))
    pts = np.vstack([rng.uniform(-5, 5, (6000, 2)), near_edges, outer, inner])
    expected = shapely.contains_xy(Polygon(outer, [inner]), pts[:, 0], pts[:, 1])
    np.testing.assert_array_equal(region.contains(pts), expected)


def test_points_on_the_boundary_are_not_contained():
    hole = np.array([[0.5, 0.5], [1.5, 0.5], [1.5, 1.5], [0.5, 1.5], [0.5, 0.5]])
    region = RoadRegion([SQUARE, hole])
    pts = np.array([[0.25, 1.0], [1.0, 1.0], [0.0, 1.0], [0.5, 1.0], [2.0, 2.0], [0.5, 0.5], [3.0, 1.0], [1.0, 0.25]])
    assert region.contains(pts).tolist() == [True, False, False, False, False, False, False, True]


def test_curvature_of_a_circle_and_orientation():
    a = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    circle = np.stack([2 * np.cos(a), 2 * np.sin(a)], axis=1)
    closed = np.vstack([circle, circle[:1]])
    kappa, ds = ring_curvature(closed)
    np.testing.assert_allclose(kappa, 0.5, rtol=1e-3)
    assert ds.sum() == pytest.approx(4 * np.pi, rel=1e-3)
    assert signed_area(closed) > 0 > signed_area(closed[::-1])
    np.testing.assert_allclose(ring_curvature(closed[::-1])[0], -0.5, rtol=1e-3)


def test_bad_inputs_are_rejected_with_clear_errors():
    with pytest.raises(ValueError, match=r"\(M, 2\)"):
        as_points(np.zeros((3, 3)))
    assert as_points([1.0, 2.0]).shape == (1, 2)
    with pytest.raises(ValueError, match="at least 4"):
        Polyline(SQUARE[:3])
    with pytest.raises(ValueError, match="finite"):
        Polyline(np.where(SQUARE == 2.0, np.nan, SQUARE))
