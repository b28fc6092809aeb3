"""manage.py import_track: real DeepRacer route files become tracks; bad files are refused with the reason."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from races.models import Track

pytestmark = pytest.mark.django_db
SHARED_TRACKS = Path(__file__).resolve().parents[2].parent / "shared" / "tracks"


@pytest.mark.skipif(not (SHARED_TRACKS / "Oval_track.npy").exists(), reason="shared DeepRacer tracks are absent")
def test_a_deepracer_route_file_is_imported(tmp_path):
    out = io.StringIO()
    call_command("import_track", str(SHARED_TRACKS / "Oval_track.npy"), "--title", "Oval", stdout=out)
    track = Track.objects.get(slug="oval_track")
    assert track.title == "Oval" and track.source == "imported" and track.preview.name
    assert "Imported 'Oval' as oval_track" in out.getvalue()
    with pytest.raises(CommandError, match="exists already"):
        call_command("import_track", str(SHARED_TRACKS / "Oval_track.npy"), stdout=io.StringIO())


def test_a_bad_route_file_is_refused(tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"nope")
    with pytest.raises(CommandError, match="Not a valid DeepRacer route file"):
        call_command("import_track", str(bad), stdout=io.StringIO())
    with pytest.raises(CommandError, match="is not a file"):
        call_command("import_track", str(tmp_path / "missing.npy"), stdout=io.StringIO())
    assert not Track.objects.exists()
