import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand


def admin_password_file() -> Path:
    return Path(settings.DATA_DIR) / "admin-password.txt"


class Command(BaseCommand):
    help = "Prepare a Pitlane site: migrate, create the admin account once, install the built-in tracks and races."

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        self._create_admin()
        # The races app owns the built-in data (tracks, the default races); it must be idempotent.
        try:
            from races.setup import install_builtin_data
        except ModuleNotFoundError as error:
            if error.name != "races.setup":
                raise
            self.stdout.write(self.style.WARNING("races.setup is not available yet: no built-in data installed."))
            return
        install_builtin_data(self.stdout)

    def _create_admin(self) -> None:
        username = settings.PITLANE_ADMIN_USERNAME
        users = get_user_model().objects
        if users.filter(username=username).exists():
            self.stdout.write(f"Admin user '{username}' exists.")
            return
        password = os.environ.get("PITLANE_ADMIN_PASSWORD", "")
        if password:
            where = "PITLANE_ADMIN_PASSWORD"
        else:
            password = secrets.token_urlsafe(12)
            path = admin_password_file()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(password + "\n")
            where = str(path)
        users.create_superuser(username=username, email="", password=password)
        self.stdout.write(self.style.SUCCESS(f"Created admin user '{username}' (password in {where})."))
