"""Settings for digitsite, read from the environment with safe defaults.

Every setting that differs between a laptop and a server comes from a `DIGITSITE_*` variable;
the defaults give a private, single-machine site: SQLite, DEBUG off, only 127.0.0.1 allowed.
"""

import os
import secrets
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_rate(name: str, default: str) -> str | None:
    # "none" switches a throttle off, for load tests and benchmarks on a private machine.
    value = os.environ.get(name, default).strip()
    return None if value.lower() in {"", "none", "off"} else value


# Where the site keeps what it writes: database, secret key, published models.
VAR_DIR = Path(os.environ.get("DIGITSITE_VAR_DIR", BASE_DIR / "var"))

DEBUG = env_bool("DIGITSITE_DEBUG")


def secret_key_file(path: Path) -> str:
    """The key kept in `path`, made there first if there is none.

    Made atomically with its final mode: the key is written to a private (0600) temporary
    file, then linked to `path`, which fails if another process got there first; that
    process's key then wins. No process ever reads a half-written or empty key, and the file
    is never readable by other users, not even for a moment.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")  # mode 0600
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(50))
                file.flush()
                os.fsync(file.fileno())
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


def _secret_key() -> str:
    # A key from the environment wins; otherwise one random key is made once and kept in
    # VAR_DIR, so sessions survive restarts and no shared default key ever ships.
    return os.environ.get("DIGITSITE_SECRET_KEY") or secret_key_file(VAR_DIR / "secret_key")


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DIGITSITE_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("DIGITSITE_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "recognizer",  # first, so that its runserver (Nagle off) replaces staticfiles' one
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from here, not from a CDN
    "feedback",
    "training",
]

MIDDLEWARE = [
    "digitsite.middleware.JsonErrorsMiddleware",  # first: it sees every answer under /api/
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files with DEBUG off, no web server needed
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "digitsite.urls"

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
            ],
        },
    },
]

WSGI_APPLICATION = "digitsite.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DIGITSITE_DB_PATH", VAR_DIR / "db.sqlite3"),
        # Seconds a write waits for SQLite's lock before the API answers 503 with Retry-After.
        # Corrections take milliseconds to write: a lock held longer is not worth a client's wait.
        "OPTIONS": {"timeout": float(os.environ.get("DIGITSITE_DB_TIMEOUT", "2"))},
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DIGITSITE_STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Serve straight from the apps' static folders, so no collectstatic step is needed to start;
# a deployment may still run collectstatic and put a CDN or web server in front.
WHITENOISE_USE_FINDERS = True

# A drawing is a 400x400 PNG of a few kilobytes; 2 MB leaves room for photos of digits and
# refuses anything bigger before it is read into memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Published models live here; the shipped model in recognizer/weights/ serves until one is.
MODEL_DIR = Path(os.environ.get("DIGITSITE_MODEL_DIR", VAR_DIR / "models"))
SHIPPED_MODEL = BASE_DIR / "recognizer" / "weights" / "digitnet.safetensors"

# MNIST in torchvision's layout (data/MNIST/raw/*.gz); downloaded there when missing.
MNIST_DIR = Path(os.environ.get("DIGITSITE_MNIST_DIR", BASE_DIR / "data"))

# Rate-limit counters live here. Local memory is per process: see DEFAULT_THROTTLE_RATES.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["digitsite.parsers.SafeJSONParser"],
    # The API is anonymous: no session lookup, so guessing and health never wait on the database.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_SCHEMA_CLASS": "digitsite.schema.AutoSchema",
    "EXCEPTION_HANDLER": "digitsite.api.exception_handler",
    # Proxies in front of the site whose X-Forwarded-For is trusted: with none (the default), a
    # client is its socket's address, and a forged header cannot buy it a fresh rate limit.
    "NUM_PROXIES": int(os.environ.get("DIGITSITE_NUM_PROXIES", "0")),
    # Counted in Django's default cache, local memory: each server process counts on its own,
    # so N worker processes let a client through up to N times the rate. A shared cache
    # (CACHES, e.g. Redis) makes the limits exact.
    "DEFAULT_THROTTLE_RATES": {
        # A person drawing sends at most two guesses a second.
        "predict": env_rate("DIGITSITE_PREDICT_RATE", "600/min"),
        "feedback": env_rate("DIGITSITE_FEEDBACK_RATE", "30/min"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "digitsite API",
    "DESCRIPTION": "Guess hand-drawn digits and teach the model with corrections.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "recognizer": {"handlers": ["console"], "level": "INFO"},
        "feedback": {"handlers": ["console"], "level": "INFO"},
        "training": {"handlers": ["console"], "level": "INFO"},
        # Django logs each 5xx here with its traceback; by default only with DEBUG on.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"
    SECURE_CONTENT_TYPE_NOSNIFF = True

import json  # noqa: E402  (kept with the training settings it serves)

# Training runs asked for in the admin are queued in the database (django-tasks' Tasks API, the
# same as Django 6's django.tasks) and run by `manage.py training_worker`: no other service.
INSTALLED_APPS += ["django_tasks", "django_tasks_db"]
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
# Options for runs queued from the admin beyond its form's, as JSON, e.g. '{"device": "cuda"}';
# the rest are training.options.RunOptions' defaults, shared with `manage.py train_digits`.
TRAINING_OPTIONS = json.loads(os.environ.get("DIGITSITE_TRAINING_OPTIONS") or "{}")
