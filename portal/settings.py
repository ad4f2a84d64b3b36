"""Settings, read from the environment through small strict helpers.

Everything tunable lives here. The OAuth knobs sit together under ``OAUTH``.
A variable ``NAME_FILE`` may name a file that holds the value of ``NAME``
(for secrets mounted by an orchestrator).
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.lib.env import env, env_bool, env_int, env_list, env_rate
from portal.lib.net import parse_trusted_proxies

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)

_DEV_SECRET_KEY = "django-insecure-development-only-never-use-in-production"
SECRET_KEY = env("SECRET_KEY") or _DEV_SECRET_KEY
if not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 32):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 32 characters when DEBUG is off "
        '(for example: python -c "import secrets; print(secrets.token_urlsafe(50))").'
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "portal.console.apps.ConsoleAdminConfig",  # the admin, on the staff console's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by us (no CDN, CSP 'self')
    "django_htmx",
    "template_partials",
    "clients",
    "oauth",
    "portal",
    "portal.console",
]

MIDDLEWARE = [
    # First: the request id and the access log cover everything below.
    "portal.serving.middleware.AccessLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "portal.serving.middleware.SecurityHeadersMiddleware",
    "portal.serving.middleware.NulCharacterMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Sets the same X-Frame-Options as portal/serving/headers.py; kept for Django's deploy check.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "libraries": {"portal_time": "portal.ui.timetags"},
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 600, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers go on while one process writes (several gunicorn workers).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database that drops packets must fail a connection attempt in seconds (a 503), not hold
    # a worker's thread for the system's TCP timeout (minutes); so must a query sent on an open
    # connection that the network then swallows (tcp_user_timeout: how long sent data may go
    # unacknowledged, in ms). Every connection: Django's and the token batch's
    # (oauth.token.batching, which also bounds each round by OAUTH_TOKEN_DATABASE_TIMEOUT).
    DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        connect_timeout=DATABASE_CONNECT_TIMEOUT,
        tcp_user_timeout=DATABASE_CONNECT_TIMEOUT * 1000,
    )
    # The token query runs through a server-side-binding psycopg cursor (oauth.token.lookup), which
    # psycopg prepares after five runs: PostgreSQL then skips parsing and planning it, more than
    # half of its cost. Django's own cursors bind on the client and are never prepared. Behind a
    # pooler that cannot keep prepared statements (PgBouncer in transaction mode before 1.21),
    # set DATABASE_PREPARED_STATEMENTS=false.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        5 if env_bool("DATABASE_PREPARED_STATEMENTS", True) else None
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# Log-in failures are limited per account and per address at every door (portal, staff
# console): oauth/logins.py.
AUTHENTICATION_BACKENDS = ["oauth.logins.LimitedModelBackend"]
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
# Where ``manage.py collectstatic`` writes, and whitenoise serves from when DEBUG is off.
STATIC_ROOT = Path(env("STATIC_ROOT") or BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# In development, serve static files straight from the finders (no collectstatic).
WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_USE_FINDERS = DEBUG

DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "portal.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The management API's OpenAPI schema (/api/v1/openapi.json) and reference (/api/v1/docs).
SPECTACULAR_SETTINGS = {
    "TITLE": "M2M authorization server: management API",
    "DESCRIPTION": (
        "Organizations, API clients and their secrets. Authenticate with a Bearer token from "
        "POST /oauth/token for a management client. Every error has the same shape (Error)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SERVERS": [{"url": "/"}],
}

# --- OAuth ---------------------------------------------------------------------------------------
OAUTH_ISSUER = (env("OAUTH_ISSUER") or "http://127.0.0.1:8000").rstrip("/")

# The OAuth knobs. Only what the environment sets is here: every default lives beside the code
# that owns the knob (clients/conf.py, oauth/settings.py), and a settings module of your own may
# set any of them in this dict.
OAUTH = {
    name: value
    for name, value in {
        "ISSUER": OAUTH_ISSUER,
        "MANAGEMENT_AUDIENCE": env("OAUTH_MANAGEMENT_AUDIENCE") or f"{OAUTH_ISSUER}/api/v1",
        "SIGNING_ALG": env("OAUTH_SIGNING_ALG"),
        "RSA_KEY_SIZE": env_int("OAUTH_RSA_KEY_SIZE", None, minimum=2048),
        "KEY_ENCRYPTION_KEYS": env_list("OAUTH_KEY_ENCRYPTION_KEYS", None) or None,
        "SECRET_PREFIX": env("OAUTH_SECRET_PREFIX"),
        "SECRET_MAX_LIFETIME_DAYS_CAP": env_int(
            "OAUTH_SECRET_MAX_LIFETIME_DAYS_CAP", None, minimum=1
        ),
        "UNUSED_SECRET_DAYS": env_int("OAUTH_UNUSED_SECRET_DAYS", None, minimum=1),
        "ASSERTION_MAX_LIFETIME": env_int("OAUTH_ASSERTION_MAX_LIFETIME", None, minimum=60),
        "JWKS_MAX_AGE": env_int("OAUTH_JWKS_MAX_AGE", None, minimum=0),
        "SECRET_CACHE_SECONDS": env_int("OAUTH_SECRET_CACHE_SECONDS", None, minimum=0),
        "TOKEN_LEEWAY_SECONDS": env_int("OAUTH_TOKEN_LEEWAY_SECONDS", None, minimum=0),
        "TOKEN_FAST_PATH": env_bool("OAUTH_TOKEN_FAST_PATH", None),
        "FEDERATION_SINGLE_USE": env_bool("OAUTH_FEDERATION_SINGLE_USE", None),
        "TOKEN_QUERY_BATCHING": env_bool("OAUTH_TOKEN_QUERY_BATCHING", None),
        "TOKEN_DATABASE_TIMEOUT": env_int("OAUTH_TOKEN_DATABASE_TIMEOUT", None, minimum=1),
        "DPOP_IAT_WINDOW": env_int("OAUTH_DPOP_IAT_WINDOW", None, minimum=5),
        "DPOP_NONCE_REQUIRED": env_bool("OAUTH_DPOP_NONCE_REQUIRED", None),
        "DPOP_NONCE_SECONDS": env_int("OAUTH_DPOP_NONCE_SECONDS", None, minimum=30),
        "ARGON2_TIME_COST": env_int("OAUTH_ARGON2_TIME_COST", None, minimum=1),
        "ARGON2_MEMORY_COST": env_int("OAUTH_ARGON2_MEMORY_COST", None, minimum=8),
        "ARGON2_PARALLELISM": env_int("OAUTH_ARGON2_PARALLELISM", None, minimum=1),
        "TOKEN_QUOTA_DEFAULT_PER_HOUR": env_int(
            "OAUTH_TOKEN_QUOTA_DEFAULT_PER_HOUR", None, minimum=1
        ),
        "TOKEN_QUOTA_DEFAULT_PER_DAY": env_int(
            "OAUTH_TOKEN_QUOTA_DEFAULT_PER_DAY", None, minimum=1
        ),
        "TOKEN_QUOTA_DEFAULT_MODE": env("OAUTH_TOKEN_QUOTA_DEFAULT_MODE"),
        "TOKEN_USAGE_RETENTION_DAYS": env_int("OAUTH_TOKEN_USAGE_RETENTION_DAYS", None, minimum=1),
    }.items()
    if value is not None
}

if OAUTH.get("TOKEN_QUOTA_DEFAULT_MODE") not in (None, "enforce", "observe"):
    raise ImproperlyConfigured("OAUTH_TOKEN_QUOTA_DEFAULT_MODE must be enforce or observe")

# --- Operations: proxies, Redis, metrics ---------------------------------------------------------
# Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto we believe (IPs or CIDRs, and
# "unix" for a Unix socket). Empty: the peer address is the client. See portal/lib/net.py.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
parse_trusted_proxies(TRUSTED_PROXIES)  # a wrong entry stops the start, not the first request
REDIS_URL = env("REDIS_URL") or None
# /metrics answers 404 unless this is set, then only to "Authorization: Bearer <token>".
METRICS_BEARER_TOKEN = env("METRICS_BEARER_TOKEN") or None
if METRICS_BEARER_TOKEN is not None and len(METRICS_BEARER_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_BEARER_TOKEN must be at least 16 characters")

# --- Outbound requests (portal/lib/outbound.py) -------------------------------------------------
# TEST-ONLY: also allow http:// URLs and loopback addresses for every outbound request of ours
# (issuer discovery and JWKS, webhooks), so that tests and local development can run an issuer on
# 127.0.0.1. Never set it in production: it opens the server-side request forgery guard.
OUTBOUND_ALLOW_INSECURE = env_bool("OUTBOUND_ALLOW_INSECURE", False)
# How long a worker owns a claimed outbox task; past it another worker runs it again (a worker
# killed mid-task). Longer than the slowest task (a webhook delivery takes at most 10 s).
OUTBOX_LEASE_SECONDS = env_int("OUTBOX_LEASE_SECONDS", 300, minimum=1)

# --- GitHub secret scanning partner program (oauth/secret_scanning.py) --------------------------
# Where GitHub publishes the keys its alerts are signed with (fetched through the safe fetcher),
# how long they are cached, and how often an unknown key id may make us fetch them again.
GITHUB_SECRET_SCANNING_KEYS_URL = (
    env("GITHUB_SECRET_SCANNING_KEYS_URL")
    or "https://api.github.com/meta/public_keys/secret_scanning"
)
GITHUB_SECRET_SCANNING_KEYS_TTL = env_int("GITHUB_SECRET_SCANNING_KEYS_TTL", 3600, minimum=60)
GITHUB_SECRET_SCANNING_REFETCH_SECONDS = env_int(
    "GITHUB_SECRET_SCANNING_REFETCH_SECONDS", 60, minimum=1
)

# --- Rate limits (oauth/ratelimit.py) -----------------------------------------------------------
# Each "N/s", "N/m" or "N/h"; counted in Redis when REDIS_URL is set, else in the database.


# Failed client authentications at the token endpoint, per (client_id, source address) and per
# source address (IPv6: per /64). Never per client_id alone: that would let anyone lock it out.
RATE_LIMIT_TOKEN_FAILURES = env_rate("RATE_LIMIT_TOKEN_FAILURES", "10/m")
RATE_LIMIT_TOKEN_FAILURES_PER_IP = env_rate("RATE_LIMIT_TOKEN_FAILURES_PER_IP", "100/m")
# Argon2 verifications per source address, right secret or wrong (a secret verified once is
# cached per process and costs nothing more).
RATE_LIMIT_ARGON2_PER_IP = env_rate("RATE_LIMIT_ARGON2_PER_IP", "300/m")
# Portal login failures per account (ten times this per address).
RATE_LIMIT_LOGIN_FAILURES = env_rate("RATE_LIMIT_LOGIN_FAILURES", "5/m")
# Password-reset requests per target address and per requesting address (oauth/logins.py).
RATE_LIMIT_PASSWORD_RESET = env_rate("RATE_LIMIT_PASSWORD_RESET", "5/h")
# Management API requests per management client.
RATE_LIMIT_API = env_rate("RATE_LIMIT_API", "600/m")

# --- Portal --------------------------------------------------------------------------------------
# The provider may turn self sign-up off; invitations still work then.
PORTAL_SIGNUP_ENABLED = env_bool("PORTAL_SIGNUP_ENABLED", True)
PORTAL_INVITATION_MAX_AGE = env_int("PORTAL_INVITATION_MAX_AGE", 7 * 24 * 3600, minimum=60)
# How long a sign-up's confirmation link works (the account opens only through it).
PORTAL_SIGNUP_CONFIRM_MAX_AGE = env_int("PORTAL_SIGNUP_CONFIRM_MAX_AGE", 2 * 24 * 3600, minimum=60)
# The portal's address in the links of e-mails (never the Host header of a request).
PORTAL_URL = (env("PORTAL_URL") or OAUTH_ISSUER).rstrip("/")
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:login"

# Email (invitations, sign-up, password reset), sent by the worker (portal/lib/mail.py): the
# console in development, SMTP otherwise.
EMAIL_BACKEND = env("EMAIL_BACKEND") or (
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH")  # for the file backend (tests of a real server)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# Seconds before a mail server that stops answering fails the task (the outbox retries it).
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "webmaster@localhost")

# --- Logging -------------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", "INFO")
# "json" (one object per line, for log shippers) or "text" (for people).
LOG_FORMAT = (env("LOG_FORMAT") or ("text" if DEBUG else "json")).strip().lower()
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "portal.lib.logs.JsonFormatter"},
        "text": {"()": "portal.lib.logs.TextFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
        "null": {"class": "logging.NullHandler"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Our access log replaces these: runserver's line carries the query string, and
        # django.request repeats every 4xx. Unhandled exceptions (5xx) still come through.
        "django.server": {"handlers": ["null"], "propagate": False},
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}

# --- Production hardening ------------------------------------------------------------------------
if TRUSTED_PROXIES:
    # Believed only from a trusted proxy: AccessLogMiddleware drops the header from others.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    # Plain HTTP is redirected to HTTPS, except the probes a load balancer sends over HTTP.
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# HSTS (sent on HTTPS answers only): a year by default in production; 0 turns it off.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# htmx reads the CSRF token from the page (hx-headers), never from the cookie.
CSRF_COOKIE_HTTPONLY = True
# Sent on every answer with the other security headers (portal/serving/headers.py): no inline
# script or style anywhere (htmx runs with includeIndicatorStyles off: templates/portal/base.html).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
