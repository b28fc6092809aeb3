"""Settings come from PITLANE_* variables; production values pass Django's deployment checklist."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PITLANE_")}
    env.update(
        PITLANE_DEBUG="false",
        PITLANE_SECRET_KEY="k9$" + "x7Qv2LmZp4Rt8Wn1Bc6Hy3Jd5Fg0Ks-" * 2,
        PITLANE_ALLOWED_HOSTS="pitlane.example.org",
        PITLANE_CSRF_TRUSTED_ORIGINS="https://pitlane.example.org",
        PITLANE_HTTPS="true",
        PITLANE_BEHIND_PROXY="true",
        PITLANE_DATABASE_URL="postgres://pitlane:secret@db.internal:5432/pitlane",
        PITLANE_BROKER_URL="redis://queue.internal:6379/0",
        PITLANE_STORAGE="s3",
        PITLANE_S3_BUCKET="pitlane-models",
        PITLANE_S3_ENDPOINT_URL="https://s3.example.org",
        PITLANE_DATA_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="league.settings",
    )
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_reports_no_warnings_with_production_settings(tmp_path):
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stderr


def test_check_deploy_flags_a_site_without_https(tmp_path):
    result = run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        production_env(tmp_path, PITLANE_HTTPS="false"),
    )
    assert result.returncode != 0
    assert "security.W008" in result.stderr  # SECURE_SSL_REDIRECT


def test_production_variables_select_postgres_redis_and_s3(tmp_path):
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from django.core.files.storage import storages\n"
        "import dramatiq\n"
        "db = settings.DATABASES['default']\n"
        "print(db['ENGINE'], db['HOST'], db['NAME'])\n"
        "print(type(storages['default']).__name__, storages['default'].bucket_name)\n"
        "print(type(dramatiq.get_broker()).__name__)\n"
        "print(settings.SECURE_PROXY_SSL_HEADER, settings.SESSION_COOKIE_SECURE)\n"
    )
    result = run(["-c", code], production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[0] == "django.db.backends.postgresql db.internal pitlane"
    assert lines[1].split() == ["S3Storage", "pitlane-models"]
    assert lines[2] == "RedisBroker"
    assert lines[3] == "('HTTP_X_FORWARDED_PROTO', 'https') True"


def embedded_environment(tmp_path) -> dict[str, str]:
    """This process's environment without any PITLANE_ setting: the embedded layout's defaults."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PITLANE_")}
    env.update(PITLANE_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="league.settings")
    return env


def test_the_embedded_defaults_need_no_variables_and_keep_one_secret_key(tmp_path):
    env = embedded_environment(tmp_path)
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\nimport dramatiq\n"
        "print(settings.DATABASES['default']['ENGINE'], type(dramatiq.get_broker()).__name__, settings.DEBUG)\n"
        "print(settings.SECRET_KEY)\n"
    )
    first = run(["-c", code], env)
    second = run(["-c", code], env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split("\n")[0] == "django.db.backends.sqlite3 StubBroker False"
    key = (tmp_path / "secret_key").read_text().strip()
    assert len(key) >= 50
    assert first.stdout.split("\n")[1] == second.stdout.split("\n")[1] == key
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"


def test_the_embedded_sqlite_database_takes_concurrent_writers(tmp_path):
    """WAL, a busy timeout and write locks taken at BEGIN (tests/races/test_embedded_concurrency.py shows why)."""
    env = embedded_environment(tmp_path)
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    print(cursor.execute('PRAGMA journal_mode').fetchone()[0], cursor.execute('PRAGMA busy_timeout')"
        ".fetchone()[0])\n"
        "print(connection.transaction_mode)\n"
    )
    result = run(["-c", code], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "30000", "IMMEDIATE"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PITLANE_DEBUG", "maybe", "PITLANE_DEBUG='maybe' is not a boolean"),
        ("PITLANE_STORAGE", "ftp", "PITLANE_STORAGE='ftp': use 'filesystem' or 's3'"),
        ("PITLANE_HSTS_SECONDS", "soon", "PITLANE_HSTS_SECONDS='soon' is not an integer"),
        ("PITLANE_EVAL_LEASE_S", "a minute", "PITLANE_EVAL_LEASE_S='a minute' is not a number"),
        ("PITLANE_EVAL_REAP_EVERY_S", "-5", "PITLANE_EVAL_REAP_EVERY_S='-5' must be a positive number"),
    ],
)
def test_bad_values_fail_with_a_clear_message(tmp_path, variable, value, message):
    result = run(["manage.py", "check"], production_env(tmp_path, **{variable: value}))
    assert result.returncode != 0
    assert message in result.stderr


def test_s3_storage_needs_a_bucket(tmp_path):
    result = run(["manage.py", "check"], production_env(tmp_path, PITLANE_S3_BUCKET=""))
    assert result.returncode != 0
    assert "PITLANE_STORAGE=s3 needs PITLANE_S3_BUCKET" in result.stderr


def test_every_evaluator_setting_comes_from_its_variable_and_unset_ones_keep_the_evaluators_defaults(tmp_path):
    code = ("import django; django.setup()\n"
            "from evaluator.config import evaluator_settings\n"
            "print(evaluator_settings())\n")
    given = {"PITLANE_EVAL_LEASE_S": "90", "PITLANE_EVAL_MAX_ATTEMPTS": "5",
             "PITLANE_EVAL_MAX_CONCURRENT_PER_RACER": "2", "PITLANE_EVAL_STALE_PENDING_S": "30.5",
             "PITLANE_EVAL_REAP_EVERY_S": "4", "PITLANE_SANDBOX_ALLOW_FALLBACK": "true"}
    result = run(["-c", code], embedded_environment(tmp_path) | given)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("EvaluatorSettings(lease_s=90.0, max_attempts=5, max_concurrent_per_racer=2, "
                                     "stale_pending_s=30.5, reap_every_s=4.0, sandbox_allow_fallback=True)")
    defaults = run(["-c", code], embedded_environment(tmp_path))
    assert defaults.stdout.strip() == ("EvaluatorSettings(lease_s=60.0, max_attempts=3, max_concurrent_per_racer=1, "
                                       "stale_pending_s=120.0, reap_every_s=15.0, sandbox_allow_fallback=False)")
