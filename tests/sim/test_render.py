"""Track pictures: a road a person recognises, trajectories coloured by speed, clear errors."""

import io

import numpy as np
import pytest
from PIL import Image

from sim.io.render import ROAD, Trajectory, render_track_image, render_track_png, speed_colour, track_preview_png
from sim.world.track_catalog import get_track


def pixel_at(img: Image.Image, track, xy, size) -> tuple[int, int, int]:
    """Colour of the rendered pixel under world point xy (same fit as the renderer, via a probe render)."""
    from sim.io.render import _View

    header = round(size[1] * 0.07)
    view = _View(track, (6 * 2, (header + 4) * 2, (size[0] - 6) * 2, (size[1] - 6) * 2))
    (x, y) = view(np.array([xy]))[0]
    return img.getpixel((int(x / 2), int(y / 2)))


def test_png_file_has_the_requested_size_and_shows_road_on_the_racing_surface(tmp_path):
    track = get_track("pitlane_oval")
    path = tmp_path / "oval.png"
    render_track_png(track, path, size=(600, 400))
    img = Image.open(path)
    assert img.format == "PNG" and img.size == (600, 400)
    # a point on the road halfway between centre line and inner border is asphalt grey
    probe = (track.center[40] + track.inner[40]) / 2
    assert np.abs(np.array(pixel_at(img.convert("RGB"), track, probe, (600, 400))) - ROAD).max() <= 12


def test_trajectories_are_drawn_in_speed_colours_with_a_colour_bar():
    track = get_track("pitlane_technical")
    xy = track.interpolate(np.linspace(0, 1, 300))
    img = render_track_image(track, [Trajectory(xy, np.full(300, 4.0), "fast")], size=(800, 500))
    colours = np.asarray(img).reshape(-1, 3).astype(int)
    fast = speed_colour(np.array([4.0]), 0.0, 4.0)[0].astype(int)
    assert (np.abs(colours - fast).max(axis=1) <= 10).sum() > 500  # the red path (and the bar's top)
    plain = np.asarray(render_track_image(track, size=(800, 500))).reshape(-1, 3).astype(int)
    assert (np.abs(plain - fast).max(axis=1) <= 10).sum() < 50


def test_writes_to_a_buffer_and_accepts_plain_tuples():
    track = get_track("pitlane_narrow")
    buf = io.BytesIO()
    xy = track.interpolate(np.linspace(0, 0.5, 50))
    render_track_png(track, buf, trajectories=[(xy, np.linspace(0.5, 3.0, 50))], size=(300, 200))
    assert buf.getvalue().startswith(b"\x89PNG")


def test_preview_is_small_png_bytes():
    data = track_preview_png(get_track("pitlane_speedway"))
    img = Image.open(io.BytesIO(data))
    assert img.size == (480, 320)


def test_bad_trajectories_and_sizes_are_rejected():
    track = get_track("pitlane_oval")
    with pytest.raises(ValueError, match="trajectory"):
        render_track_image(track, [(np.zeros((5, 3)), np.zeros(5))])
    with pytest.raises(ValueError, match="trajectory"):
        render_track_image(track, [np.zeros((5, 2))])
    with pytest.raises(ValueError, match="size"):
        render_track_image(track, size=(10, 10))


def test_speed_colour_ramp_runs_from_blue_to_red():
    slow, fast = speed_colour(np.array([0.0, 4.0]), 0.0, 4.0)
    assert slow[2] > slow[0] and fast[0] > fast[2]


def test_trajectories_with_their_own_colour_are_drawn_in_it_without_a_speed_bar():
    track = get_track("pitlane_oval")
    orange, blue = (255, 90, 31), (56, 189, 248)
    paths = [Trajectory(track.lane_point(np.linspace(0, 1, 200), "inner"), np.full(200, 1.0), "A", orange),
             Trajectory(track.lane_point(np.linspace(0, 1, 200), "outer"), np.full(200, 3.0), "B", blue)]
    img = render_track_image(track, paths, size=(600, 400))
    pixels = np.asarray(img).reshape(-1, 3).astype(int)
    for colour in (orange, blue):
        assert (np.abs(pixels - colour).max(axis=1) <= 10).sum() > 300
    red_end = speed_colour(np.array([4.0]), 0.0, 4.0)[0].astype(int)  # the top of the speed bar
    assert (np.abs(pixels - red_end).max(axis=1) <= 10).sum() < 50
