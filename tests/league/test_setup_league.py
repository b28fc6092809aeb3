import io

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def setup_league() -> str:
    out = io.StringIO()
    call_command("setup_league", stdout=out)
    return out.getvalue()


def test_creates_the_admin_once_with_a_generated_password_file(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("PITLANE_ADMIN_PASSWORD", raising=False)
    settings.DATA_DIR = tmp_path
    output = setup_league()
    password = (tmp_path / "admin-password.txt").read_text().strip()
    assert f"password in {tmp_path / 'admin-password.txt'}" in output
    assert len(password) >= 16
    assert oct((tmp_path / "admin-password.txt").stat().st_mode & 0o777) == "0o600"
    admin = authenticate(username="admin", password=password)
    assert admin is not None and admin.is_superuser and admin.is_staff

    # A second run (every `./pitlane run`) keeps the account and its password.
    assert "Admin user 'admin' exists." in setup_league()
    assert User.objects.filter(username="admin").count() == 1
    assert (tmp_path / "admin-password.txt").read_text().strip() == password


def test_uses_pitlane_admin_password_and_writes_no_file(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("PITLANE_ADMIN_PASSWORD", "chosen-by-the-operator-42")
    settings.DATA_DIR = tmp_path
    assert "password in PITLANE_ADMIN_PASSWORD" in setup_league()
    assert authenticate(username="admin", password="chosen-by-the-operator-42") is not None
    assert not (tmp_path / "admin-password.txt").exists()
