import os
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from league.broker import is_embedded
from league.management.commands.setup_league import admin_password_file


class Command(BaseCommand):
    help = "Serve Pitlane with gunicorn (embedded layout: also runs the task workers in the same process)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--bind",
            default=os.environ.get("PITLANE_BIND", "127.0.0.1:8000"),
            help="host:port to listen on (default: $PITLANE_BIND or 127.0.0.1:8000)",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("PITLANE_WEB_WORKERS", "2")),
            help="gunicorn worker processes with a real broker (embedded layout: always 1)",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=int(os.environ["PITLANE_WEB_THREADS"]) if os.environ.get("PITLANE_WEB_THREADS") else None,
            help="threads per gunicorn worker (default: 8 in the embedded layout; 1 with a real broker: sync "
                 "workers, whose latency tail measured best, benchmarks/http_load.py)",
        )

    def handle(self, *args, bind: str, workers: int, threads: int | None, **options):
        embedded = is_embedded()
        if threads is None:
            threads = 8 if embedded else 1
        if workers < 1 or threads < 1:
            raise CommandError("--workers and --threads must be at least 1")
        if embedded:
            # One process: the in-memory queue and its worker threads must live where requests enqueue.
            workers = 1
        host, _, port = bind.rpartition(":")
        shown_host = "localhost" if host in {"0.0.0.0", "127.0.0.1", "[::]", ""} else host
        self.stdout.write(self.style.SUCCESS(f"Pitlane is starting on http://{shown_host}:{port}/"))
        username = settings.PITLANE_ADMIN_USERNAME
        password_file = admin_password_file()
        where = password_file if password_file.exists() else "the PITLANE_ADMIN_PASSWORD you set"
        self.stdout.write(f"  Admin: http://{shown_host}:{port}/admin/  user '{username}', password in {where}")
        if embedded:
            self.stdout.write("  Broker: embedded (in-memory); evaluation workers run inside this server.")
        else:
            self.stdout.write(
                "  Broker: PITLANE_BROKER_URL. This serves HTTP only: start workers on any machine with\n"
                "    .venv/bin/python manage.py rundramatiq --queues evaluations\n"
                "    .venv/bin/python manage.py rundramatiq --queues training   (the training console's jobs)"
            )
        sys.stdout.flush()
        # One line per option pair keeps the command readable.
        argv = [sys.executable, "-m", "gunicorn", "league.wsgi:application"]
        argv += ["--config", "python:league.gunicorn_conf", "--bind", bind]
        argv += ["--workers", str(workers), "--threads", str(threads)]
        argv += ["--chdir", str(settings.BASE_DIR), "--access-logfile", "-"]
        argv += ["--timeout", "120", "--graceful-timeout", "30"]
        # No control socket: its default path is shared by every gunicorn of this user.
        argv += ["--no-control-socket"]
        os.execv(sys.executable, argv)
