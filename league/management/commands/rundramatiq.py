import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from league.broker import actor_modules


class Command(BaseCommand):
    help = "Run Dramatiq worker processes for every installed app's actors (needs PITLANE_BROKER_URL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--processes",
            "-p",
            type=int,
            default=os.cpu_count() or 1,
            help="worker processes (default: number of CPUs)",
        )
        parser.add_argument("--threads", "-t", type=int, default=2, help="worker threads per process (default: 2)")
        parser.add_argument("--queues", "-Q", nargs="*", help="only these queues (default: all)")
        parser.add_argument("--dry-run", action="store_true", help="print the dramatiq command instead of running it")

    def handle(self, *args, processes: int, threads: int, queues: list[str] | None, dry_run: bool, **options):
        if not settings.PITLANE_BROKER_URL:
            raise CommandError(
                "PITLANE_BROKER_URL is empty: the embedded broker's workers run inside `manage.py runleague`. "
                "Set PITLANE_BROKER_URL=redis://… or amqp://… to run separate worker processes."
            )
        if processes < 1 or threads < 1:
            raise CommandError("--processes and --threads must be at least 1")
        argv = [
            sys.executable,
            "-m",
            "dramatiq",
            "league.worker_entry",
            *actor_modules(),
            "--processes",
            str(processes),
            "--threads",
            str(threads),
            "--path",
            str(settings.BASE_DIR),
        ]
        if queues:
            argv += ["--queues", *queues]
        if dry_run:
            self.stdout.write(" ".join(argv))
            return
        self.stdout.write(f"Starting {processes} worker process(es) x {threads} thread(s): {' '.join(argv[3:])}")
        sys.stdout.flush()
        os.execv(sys.executable, argv)
