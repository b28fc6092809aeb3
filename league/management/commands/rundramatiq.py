"""``manage.py rundramatiq``: django_dramatiq's worker command, refusing the embedded broker."""

import os

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django_dramatiq.management.commands import rundramatiq


class Command(rundramatiq.Command):
    help = "Run Dramatiq worker processes for every installed app's actors (needs PITLANE_BROKER_URL)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        # Each evaluation thread runs a sandbox that keeps a core busy: a few threads, not django_dramatiq's 8.
        # --path: the project folder on the workers' sys.path wherever the command is started from.
        parser.set_defaults(processes=os.cpu_count() or 1, threads=2, path=[str(settings.BASE_DIR)])

    def handle(self, *args, processes: int, threads: int, **options) -> None:
        if not settings.PITLANE_BROKER_URL:
            raise CommandError(
                "PITLANE_BROKER_URL is empty: the embedded broker's workers run inside `manage.py runleague`. "
                "Set PITLANE_BROKER_URL=redis://… or amqp://… to run separate worker processes."
            )
        if processes < 1 or threads < 1:
            raise CommandError("--processes and --threads must be at least 1")
        # A process fetches no more messages than it has threads (Dramatiq's default is twice as many): a message
        # is only a nudge, and one waiting in a process whose threads all train for hours would hold a queued job
        # back while another worker sits idle.
        os.environ.setdefault("dramatiq_queue_prefetch", str(threads))
        super().handle(*args, processes=processes, threads=threads, **options)
