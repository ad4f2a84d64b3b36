"""Django settings for the guards' tests alone, without the server.

``tests/kit/test_package.py`` runs ``tests/kit/test_guards.py`` with these settings in a
virtualenv holding the kit's wheel, the oldest Django it supports (4.2), DRF and pytest-django,
and nothing of the server: so the ``django`` and ``drf`` modules are proven on 4.2 as well as on
the server's own Django. Like the server: CSRF checks on, sessions and auth middleware in, and
DRF with no default authentication (the guards bring their own).
"""

SECRET_KEY = "guards-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
USE_TZ = True
ROOT_URLCONF = "tests.kit.urls_guards"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "rest_framework",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
# The guards touch no database; SQLite in memory in case a middleware asks.
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
