"""Pitlane settings: every deployment knob is a PITLANE_* environment variable (see README.md).

Defaults give the embedded layout (SQLite file + in-memory broker under ./data), so a fresh clone runs
with no configuration; production sets PostgreSQL, Redis/RabbitMQ, S3 storage and HTTPS through the
same variables.
"""

import math
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from league.broker import ACTOR_MODULE, dramatiq_broker_settings

BASE_DIR = Path(__file__).resolve().parent.parent


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _env_bool(name: str, default: bool = False) -> bool:
    value = _env(name).lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true/false)")


def _env_int(name: str, default: int) -> int:
    value = _env(name)
    try:
        return int(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def _env_float(name: str, default: float) -> float:
    value = _env(name)
    try:
        number = float(value) if value else default
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if not math.isfinite(number) or number <= 0:
        raise ImproperlyConfigured(f"{name}={value!r} must be a positive number")
    return number


def _env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in _env(name, default).split(",") if item.strip()]


def _secret_key(data_dir: Path) -> str:
    """PITLANE_SECRET_KEY, else a key generated once and kept in data/secret_key.

    The stored key suits one machine (the embedded layout); several web machines must share
    PITLANE_SECRET_KEY or their sessions and CSRF tokens will not validate on each other.
    """
    key = _env("PITLANE_SECRET_KEY")
    if key:
        return key
    path = data_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting together must not write two different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(64))
    key = path.read_text().strip()
    if not key:
        raise ImproperlyConfigured(f"{path} is empty: delete it to generate a new key")
    return key


# --- Paths ---------------------------------------------------------------------------------------------
DATA_DIR = Path(_env("PITLANE_DATA_DIR") or BASE_DIR / "data").resolve()
MEDIA_ROOT = Path(_env("PITLANE_MEDIA_ROOT") or DATA_DIR / "media")
MEDIA_URL = "/media/"
STATIC_ROOT = Path(_env("PITLANE_STATIC_ROOT") or BASE_DIR / "staticfiles")
STATIC_URL = "/static/"

# --- Core ----------------------------------------------------------------------------------------------
DEBUG = _env_bool("PITLANE_DEBUG", False)
SECRET_KEY = _secret_key(DATA_DIR)
ALLOWED_HOSTS = _env_list("PITLANE_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = _env_list("PITLANE_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # league first: its AppConfig.ready() installs the Dramatiq broker before any actor module is imported.
    "league",
    # Builds Dramatiq's global broker from DRAMATIQ_BROKER while the app registry loads, before the apps
    # below import their actors. After league, so that league's rundramatiq command is the one that runs.
    "django_dramatiq",
    "races",
    "evaluator",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "league.urls"
WSGI_APPLICATION = "league.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "league.context_processors.site",
            ],
            # {% when %}: every time shown names its zone (league/templatetags/times.py).
            "builtins": ["league.templatetags.times"],
        },
    },
]

# --- Database ------------------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        _env("PITLANE_DATABASE_URL") or f"sqlite:///{DATA_DIR / 'pitlane.sqlite3'}",
        conn_max_age=_env_int("PITLANE_DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded layout has concurrent writers (gunicorn threads, the in-process evaluation workers). WAL lets
    # readers go on while one writes; IMMEDIATE transactions take the write lock at BEGIN, so a transaction that
    # read first cannot fail with "database is locked" when it then writes (SQLite refuses that upgrade without
    # waiting); the busy timeout makes writers queue for the lock instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        transaction_mode="IMMEDIATE",
        timeout=30,
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Task queue ----------------------------------------------------------------------------------------
# redis://… or amqp://…; empty = embedded in-memory broker whose workers run inside the web process.
# Safe because the database, not the queue, holds every evaluation: the reaper re-enqueues lost work.
PITLANE_BROKER_URL = _env("PITLANE_BROKER_URL")
DRAMATIQ_BROKER = dramatiq_broker_settings(PITLANE_BROKER_URL)
DRAMATIQ_AUTODISCOVER_MODULES = [ACTOR_MODULE]
PITLANE_EMBEDDED_WORKER_THREADS = _env_int("PITLANE_EMBEDDED_WORKER_THREADS", 2)  # evaluations and matches
# Training jobs' threads (0: this server trains nothing; a separate `rundramatiq --queues training` may).
PITLANE_EMBEDDED_TRAINING_THREADS = _env_int("PITLANE_EMBEDDED_TRAINING_THREADS", 1)

# --- Files ---------------------------------------------------------------------------------------------
PITLANE_STORAGE = _env("PITLANE_STORAGE", "filesystem").lower()
if PITLANE_STORAGE == "filesystem":
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif PITLANE_STORAGE == "s3":
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": _env("PITLANE_S3_BUCKET"),
            "endpoint_url": _env("PITLANE_S3_ENDPOINT_URL") or None,
            "region_name": _env("PITLANE_S3_REGION") or None,
            "access_key": _env("PITLANE_S3_ACCESS_KEY_ID") or None,
            "secret_key": _env("PITLANE_S3_SECRET_ACCESS_KEY") or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
    if not _default_storage["OPTIONS"]["bucket_name"]:
        raise ImproperlyConfigured("PITLANE_STORAGE=s3 needs PITLANE_S3_BUCKET")
else:
    raise ImproperlyConfigured(f"PITLANE_STORAGE={PITLANE_STORAGE!r}: use 'filesystem' or 's3'")

STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Non-file form and JSON bodies; files are limited by PITLANE_MAX_UPLOAD_MB (below) while they stream in.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- HTTPS (production behind TLS) ---------------------------------------------------------------------
PITLANE_HTTPS = _env_bool("PITLANE_HTTPS", False)
SECURE_SSL_REDIRECT = _env_bool("PITLANE_SECURE_SSL_REDIRECT", PITLANE_HTTPS)
SESSION_COOKIE_SECURE = PITLANE_HTTPS
CSRF_COOKIE_SECURE = PITLANE_HTTPS
SECURE_HSTS_SECONDS = _env_int("PITLANE_HSTS_SECONDS", 31_536_000 if PITLANE_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("PITLANE_HSTS_INCLUDE_SUBDOMAINS", PITLANE_HTTPS)
SECURE_HSTS_PRELOAD = _env_bool("PITLANE_HSTS_PRELOAD", PITLANE_HTTPS)
if _env_bool("PITLANE_BEHIND_PROXY", False):
    # Only behind a proxy that sets X-Forwarded-Proto itself; otherwise clients could spoof https.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /healthz is probed by load balancers over plain HTTP inside the private network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
X_FRAME_OPTIONS = "DENY"

# --- Accounts ------------------------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PITLANE_ADMIN_USERNAME = _env("PITLANE_ADMIN_USERNAME", "admin")

# --- API -----------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "league.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Pitlane API",
    "DESCRIPTION": "Upload models, enter races and read leaderboards. Authenticate with "
    "`Authorization: Token <key>` (create the token on your account page).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Self-hosted Swagger UI / Redoc assets: the docs page must work without internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Named once: every race type and the race types a model drives alone are two enums of the schema.
    "ENUM_NAME_OVERRIDES": {"RaceTypeEnum": "races.models.Race.RaceType",
                            "SoloRaceTypeEnum": "races.api.serializers.SOLO_RACE_TYPES"},
}

# --- League and evaluation ---------------------------------------------------------------------------------
PITLANE_MAX_UPLOAD_MB = _env_int("PITLANE_MAX_UPLOAD_MB", 200)
# Uploads beyond 10 MB stream to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# The limit handler goes first: it stops a file at PITLANE_MAX_UPLOAD_MB before the others store it.
FILE_UPLOAD_HANDLERS = [
    "league.uploads.UploadLimitHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# The evaluator's settings: evaluator/config.py holds their types and the one set of defaults, so a variable only
# becomes a setting when it is given (checked here, at start-up). Without bubblewrap the evaluator refuses to run
# untrusted models unless PITLANE_SANDBOX_ALLOW_FALLBACK accepts the weaker sandbox.
for _name, _parse in (("PITLANE_EVAL_LEASE_S", _env_float), ("PITLANE_EVAL_MAX_ATTEMPTS", _env_int),
                      ("PITLANE_EVAL_MAX_CONCURRENT_PER_RACER", _env_int),
                      ("PITLANE_EVAL_STALE_PENDING_S", _env_float), ("PITLANE_EVAL_REAP_EVERY_S", _env_float),
                      ("PITLANE_SANDBOX_ALLOW_FALLBACK", _env_bool)):
    if _env(_name):
        globals()[_name] = _parse(_name, 0)
# Training jobs (races.services.training): the run's in-memory scratch (checkpoints, the export) and how often its
# files are copied to storage while it runs (a killed worker loses at most that much, or the iteration under way).
PITLANE_TRAINING_SCRATCH_MB = _env_int("PITLANE_TRAINING_SCRATCH_MB", 1024)
PITLANE_TRAINING_PROGRESS_S = _env_int("PITLANE_TRAINING_PROGRESS_S", 3)
# setup_league enters a driver-cloned baseline model in the demo race (trains for ~20 s once).
PITLANE_DEMO_BASELINE = _env_bool("PITLANE_DEMO_BASELINE", True)

# --- Misc ----------------------------------------------------------------------------------------------
# Where racers get the simulator (this repository): the home page's install step links it and shows the clone.
PITLANE_SOURCE_URL = _env("PITLANE_SOURCE_URL")
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
FORMAT_MODULE_PATH = ["league.formats"]  # default datetimes name their zone (league/formats/en)
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": _env("PITLANE_LOG_LEVEL", "INFO").upper()},
    "loggers": {"django": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
