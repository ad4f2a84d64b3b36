"""Test settings: the production settings with a test SECRET_KEY and cheap argon2.

Cheap argon2 parameters keep the suite fast; the hash is still argon2id, so
tests that check the stored hash still see the real format.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-for-the-suite-only-0123456789")
os.environ.setdefault("OAUTH_ARGON2_TIME_COST", "1")
os.environ.setdefault("OAUTH_ARGON2_MEMORY_COST", "1024")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")

from portal.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
SECURE_SSL_REDIRECT = False
