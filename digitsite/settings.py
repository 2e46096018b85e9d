"""Settings for digitsite, read from the environment with safe defaults.

Every setting that differs between a laptop and a server comes from a `DIGITSITE_*` variable;
the defaults give a private, single-machine site: SQLite, DEBUG off, only 127.0.0.1 allowed.
Grouped as `.env.example` groups them, which documents each variable once (a test checks it).
"""

import json
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from digitsite.files import atomic_file

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


# -- where data lives: the database, the shared cache, the site's own folder -------------------
# Where the site keeps what it writes: database, secret key, published models.
VAR_DIR = Path(os.environ.get("DIGITSITE_VAR_DIR", BASE_DIR / "var"))

def secret_key_file(path: Path) -> str:
    """The key kept in `path`, made there first if there is none.

    Made atomically with its final mode: the key is written to a private (0600) temporary
    file, then linked to `path`, which fails if another process got there first; that
    process's key then wins. No process ever reads a half-written or empty key, and the file
    is never readable by other users, not even for a moment.
    """
    if not path.exists():
        try:
            with atomic_file(path, mode=0o600, replace=False) as file:
                file.write(secrets.token_urlsafe(50).encode())
        except FileExistsError:
            pass
    return path.read_text().strip()

def database_url() -> str:
    # An empty DATABASE_URL counts as unset, so a test or a benchmark can ask for SQLite in a
    # child process whatever the parent's environment says.
    return os.environ.get("DATABASE_URL", "").strip() or f"sqlite:///{Path(os.environ.get('DIGITSITE_DB_PATH', VAR_DIR / 'db.sqlite3')).resolve()}"


DATABASES = {
    "default": dj_database_url.parse(
        database_url(),
        # Web requests reuse a connection for a minute, checked before each request, so a
        # restarted PostgreSQL costs one failed check, not a failed request.
        conn_max_age=int(os.environ.get("DIGITSITE_DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
EMBEDDED_DB = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if EMBEDDED_DB:
    # Django's SQLite, making the data folder (0700) and the database file (0600) when it is
    # first opened: a fresh clone has no var/, and importing settings writes nothing.
    DATABASES["default"]["ENGINE"] = "digitsite.sqlite"
DB_TIMEOUT = float(os.environ.get("DIGITSITE_DB_TIMEOUT", "2"))
if EMBEDDED_DB:
    # Seconds a write waits for SQLite's lock before the API answers 503 with Retry-After.
    # Corrections take milliseconds to write: a lock held longer is not worth a client's wait.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = DB_TIMEOUT
    # Write-ahead logging: reads (the active model's version, once a second) never wait for a
    # writer, so guessing goes on while a long write holds the lock.
    DATABASES["default"]["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL;"
    # A transaction takes the write lock when it begins. One that began by reading could not
    # become a writer after another connection committed, and failed at once without waiting:
    # a correction reads the active model's version before it writes (the soak's one 503).
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable or stuck server answers a correction 503 within seconds, like a locked SQLite.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        connect_timeout=max(1, round(DB_TIMEOUT)), options=f"-c lock_timeout={round(DB_TIMEOUT * 1000)}"
    )

# Rate-limit counters and the active model's version hint live here. Local memory is per
# process; with DIGITSITE_CACHE_URL (redis://host:6379/0) every worker on every machine shares
# one count, so the rates below hold for the whole site.
CACHE_URL = os.environ.get("DIGITSITE_CACHE_URL", "").strip()
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "digitsite",
            # A stalled Redis must not stall every request: a request that needs the cache (the
            # rate limits) fails within a second, answered 500, instead of waiting on it.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


# -- the site and its security -----------------------------------------------------------------
DEBUG = env_bool("DIGITSITE_DEBUG")

def _secret_key() -> str:
    """A key from the environment wins. Several machines on one database must share one key
    (sessions, password resets, signed values), so with any database but the embedded SQLite
    the key must come from the environment. On one machine with SQLite, the key kept in
    VAR_DIR/secret_key is read (`manage.py migrate` makes it, see digitsite.apps); importing
    settings never writes, so until it exists a process uses a random key of its own."""
    if key := os.environ.get("DIGITSITE_SECRET_KEY", "").strip():
        if key.startswith("replace-with"):
            raise ImproperlyConfigured("DIGITSITE_SECRET_KEY is still .env.example's placeholder: set a long random value.")
        return key
    if not EMBEDDED_DB:
        raise ImproperlyConfigured(
            f"DIGITSITE_SECRET_KEY is not set, and the database is {DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
            "not the embedded SQLite: every web machine on one database must share one secret key (sessions, "
            "CSRF-protected forms and signed values made on one machine are checked on another). Set "
            "DIGITSITE_SECRET_KEY to the same long random value on every machine, e.g. from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
        )
    try:
        return (VAR_DIR / "secret_key").read_text().strip() or secrets.token_urlsafe(50)
    except OSError:
        return secrets.token_urlsafe(50)


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DIGITSITE_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("DIGITSITE_CSRF_TRUSTED_ORIGINS", "")

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"
    SECURE_CONTENT_TYPE_NOSNIFF = True

# Behind a TLS-terminating proxy (DIGITSITE_HTTPS=on): the proxy's X-Forwarded-Proto says a request
# came over HTTPS; plain HTTP is redirected, browsers are told to use HTTPS only (HSTS), and the
# session and CSRF cookies are sent over HTTPS only. The proxy must set X-Forwarded-Proto itself
# and drop a client's own.
HTTPS = env_bool("DIGITSITE_HTTPS")
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # The health check of a load balancer speaking plain HTTP inside the network still answers.
    SECURE_REDIRECT_EXEMPT = [r"^api/health/$"]
    SECURE_HSTS_SECONDS = int(os.environ.get("DIGITSITE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DIGITSITE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DIGITSITE_HSTS_PRELOAD", False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content-Security-Policy on every answer (django-csp): scripts only from this site's own files, so
# an injected <script> or on*= attribute does not run. The page, the admin and the API docs keep
# their JavaScript in files (the docs through drf-spectacular's split view); inline styles stay
# allowed for the admin's and the docs' style attributes. Pictures may be data: URLs (the model's
# 28x28 input, the admin's thumbnails). Only on pages: digitsite.middleware.DocumentCSPMiddleware.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# Admin logins (django-axes): after DIGITSITE_LOGIN_FAILURES wrong passwords from one client address,
# that address may not log in for DIGITSITE_LOGIN_COOLOFF_MINUTES after its last attempt; other
# addresses are unaffected. The address is the rate limits' (digitsite.clients, DIGITSITE_NUM_PROXIES).
# Failures are kept in the database, so every web machine counts together.
from datetime import timedelta  # noqa: E402  (kept with the login settings it serves)

AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = max(1, int(os.environ.get("DIGITSITE_LOGIN_FAILURES", "5")))
AXES_COOLOFF_TIME = timedelta(minutes=max(1.0, float(os.environ.get("DIGITSITE_LOGIN_COOLOFF_MINUTES", "15"))))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_CLIENT_IP_CALLABLE = "digitsite.clients.client_address"
AXES_LOCKOUT_CALLABLE = "digitsite.clients.login_lockout_response"
AXES_RESET_ON_SUCCESS = True  # a right password clears the address's earlier failures


# -- metrics -----------------------------------------------------------------------------------
# Prometheus metrics at /metrics (digitsite.metrics): off unless DIGITSITE_METRICS=on, and then only
# for these addresses or a client with the token.
METRICS = env_bool("DIGITSITE_METRICS")
METRICS_ALLOWED_IPS = env_list("DIGITSITE_METRICS_ALLOWED_IPS", "127.0.0.1")
METRICS_TOKEN = os.environ.get("DIGITSITE_METRICS_TOKEN", "").strip()


# -- Django and its apps -----------------------------------------------------------------------
INSTALLED_APPS = [
    "digitsite.apps.DigitsiteConfig",  # makes the secret key file on `migrate`
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
    "csp",
    "feedback",
    "training",
    # Training runs asked for in the admin are queued in the database (TASKS below).
    "django_tasks",
    "digitsite.apps.TrainingQueueConfig",  # django_tasks_db, named for what it holds here
    "axes",  # the admin's login lockout (AXES_* below)
]

MIDDLEWARE = [
    *(["digitsite.metrics.MetricsMiddleware"] if METRICS else []),  # outermost: sees every answer as sent
    "digitsite.middleware.JsonErrorsMiddleware",  # first after metrics: it sees every answer under /api/
    "django.middleware.security.SecurityMiddleware",
    "digitsite.middleware.DocumentCSPMiddleware",  # Content-Security-Policy on pages, see CONTENT_SECURITY_POLICY
    # Static files with DEBUG off, no web server needed; quiet about a STATIC_ROOT not made yet.
    "digitsite.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks: answers a locked-out login
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
# Serve straight from the apps' static folders, so no collectstatic step is needed to start;
# a deployment may still run collectstatic and put a CDN or web server in front. Importing
# settings makes no folder, so STATIC_ROOT exists only after collectstatic: until then
# digitsite.middleware.StaticFilesMiddleware serves from the finders without WhiteNoise's warning.
WHITENOISE_USE_FINDERS = True

# A drawing is a 400x400 PNG of a few kilobytes; 2 MB leaves room for photos of digits and
# refuses anything bigger before it is read into memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

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
    # One handler, on the root logger, that the apps' loggers propagate to. A handler of their
    # own as well printed each line twice once anything gave the root logger one: ONNX Runtime's
    # quantizer logs through logging.info(), which calls basicConfig() on a root without handlers
    # (the training worker, after its first promotion). Holding one, the root is left as it is.
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "recognizer": {"level": "INFO"},
        "feedback": {"level": "INFO"},
        "training": {"level": "INFO"},
        # Django logs each 5xx here with its traceback; by default only with DEBUG on.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}


# -- models ------------------------------------------------------------------------------------
# Published models live in the database (recognizer.models.ModelVersion); this machine keeps its
# local copies of them here. The shipped model in recognizer/weights/ serves until one is active.
MODEL_DIR = Path(os.environ.get("DIGITSITE_MODEL_DIR", VAR_DIR / "models"))
# Seconds between a process's checks of which version is active (one cache GET or one query).
MODEL_CHECK_S = float(os.environ.get("DIGITSITE_MODEL_CHECK_S", "1"))
SHIPPED_MODEL = BASE_DIR / "recognizer" / "weights" / "digitnet.safetensors"


# -- guesses and corrections -------------------------------------------------------------------
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
    # Counted in Django's default cache: with Redis (DIGITSITE_CACHE_URL) one count for the whole
    # site; with local memory each server process counts on its own, so N worker processes let a
    # client through up to N times the rate.
    "DEFAULT_THROTTLE_RATES": {
        # A person drawing sends at most two guesses a second.
        "predict": env_rate("DIGITSITE_PREDICT_RATE", "600/min"),
        "feedback": env_rate("DIGITSITE_FEEDBACK_RATE", "30/min"),
    },
}

# Trust in corrections (feedback.services). Each sample records its source: the signed-in user,
# else a keyed hash of the client's address (DIGITSITE_NUM_PROXIES' rule) and its session.
# A burst is many corrections of one guess -> label pair that the model was sure of, arriving
# within DIGITSITE_BURST_WINDOW_MINUTES: from one source (DIGITSITE_BURST_PER_SOURCE) or from all
# sources together (DIGITSITE_BURST_ALL_SOURCES, which a script dropping its cookies cannot dodge).
# A burst's samples wait as "needs review" and are not trained on until a reviewer approves them.
# Samples made by commands (no source, e.g. the benchmarks') are neither held nor counted.
# Defaults from the honest feedback benchmark (all 7,494 pen digits, 30 writers): 19 of its 61
# corrections were of sure guesses; the commonest pair (7 -> 1) came 9 times from all writers
# together and at most 4 times from one. A day's window, twice those counts. 0 switches a rule off.
BURST_WINDOW_MINUTES = float(os.environ.get("DIGITSITE_BURST_WINDOW_MINUTES", "1440"))
BURST_PER_SOURCE = int(os.environ.get("DIGITSITE_BURST_PER_SOURCE", "10"))
BURST_ALL_SOURCES = int(os.environ.get("DIGITSITE_BURST_ALL_SOURCES", "20"))
# Samples one source may store in any 24 hours; beyond it the API answers 429 and stores nothing.
# Reviewers (signed in, with feedback.change_sample) are exempt. 0 switches the cap off.
FEEDBACK_PER_SOURCE_DAILY = int(os.environ.get("DIGITSITE_FEEDBACK_PER_SOURCE_DAILY", "200"))
# For this long after saving an answer, the page that sent it may change it or take it back, by
# its client_id (a random UUID only that page knows); after that it is the reviewers'.
FEEDBACK_CHANGE_MINUTES = float(os.environ.get("DIGITSITE_FEEDBACK_CHANGE_MINUTES", "5"))

# The memory of a person's own corrections (recognizer.memory): a drawing close to one its
# sender corrected lately is answered with their label at once, before any retrain; nobody
# else's answers change. Per source the newest DIGITSITE_MEMORY_SIZE corrections of the last
# DIGITSITE_MEMORY_HOURS count; "close" is a cosine distance of the net's pooled features of
# at most DIGITSITE_MEMORY_DISTANCE, chosen on ten pen writers and measured on twenty others
# (bench/memory_replay.py). Once a sender has a correction remembered, the newest
# DIGITSITE_MEMORY_STOOD of their drawings whose answer they let stand count too (0: none).
# DIGITSITE_MEMORY=off switches it off: every answer is the net's.
MEMORY = env_bool("DIGITSITE_MEMORY", True)
MEMORY_SIZE = int(os.environ.get("DIGITSITE_MEMORY_SIZE", "50"))
MEMORY_STOOD = int(os.environ.get("DIGITSITE_MEMORY_STOOD", "100"))
MEMORY_HOURS = float(os.environ.get("DIGITSITE_MEMORY_HOURS", "24"))
MEMORY_DISTANCE = float(os.environ.get("DIGITSITE_MEMORY_DISTANCE", "0.2"))


# -- training ----------------------------------------------------------------------------------
# MNIST in torchvision's layout (data/MNIST/raw/*.gz); downloaded there when missing.
MNIST_DIR = Path(os.environ.get("DIGITSITE_MNIST_DIR", BASE_DIR / "data"))
# Omniglot's published strokes zip (training.nn.omniglot): read only to pack training/nn/omniglot/omniglot.npz.
OMNIGLOT_STROKES = Path(os.environ.get("DIGITSITE_OMNIGLOT_STROKES", BASE_DIR.parent / "shared" / "omniglot" / "strokes_background_small1.zip"))

# Training runs asked for in the admin are queued in the database (django-tasks' Tasks API, the
# same as Django 6's django.tasks) and run by `manage.py training_worker`: no other service.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
# Options for runs queued from the admin beyond its form's, as JSON, e.g. '{"device": "cuda"}';
# the rest are training.options.RunOptions' defaults, shared with `manage.py train_digits`.
TRAINING_OPTIONS = json.loads(os.environ.get("DIGITSITE_TRAINING_OPTIONS") or "{}")
