"""manage.py import_track FILE.npy --title "..." : add a DeepRacer route file as a track races can use."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from races.services import RuleViolation, track_import
from races.services.tracks import MAX_ROUTE_FILE_BYTES


class Command(BaseCommand):
    help = "Import a DeepRacer .npy route file as a track (validated; a preview is rendered and stored)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("route_file", type=Path, help="the .npy route file")
        parser.add_argument("--title", help="shown on race pages (default: the file name)")
        parser.add_argument("--slug", default="", help="identifier in URLs and the API (default: from the title)")
        parser.add_argument("--description", default="")
        parser.add_argument("--directions", default="both", choices=["both", "counterclockwise", "clockwise"],
                            help="the directions races may use (default: both)")

    def handle(self, route_file: Path, title: str | None, slug: str, description: str, directions: str,
               **options) -> None:
        if not route_file.is_file():
            raise CommandError(f"{route_file} is not a file.")
        if route_file.stat().st_size > MAX_ROUTE_FILE_BYTES:
            raise CommandError("Route files are at most 2 MiB.")
        title = title or route_file.stem.replace("_", " ")
        try:
            track = track_import(title, route_file.read_bytes(), slug=slug or route_file.stem,
                                 description=description, directions=directions)
        except RuleViolation as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"Imported '{track.title}' as {track.slug}: {track.length_m:.1f} m, "
                          f"{track.width_m:.2f} m wide, {track.waypoint_count} waypoints.")
