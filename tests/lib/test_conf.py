"""portal.lib.conf: the OAuth knobs, read with their defaults from one place each."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from clients.conf import client_settings
from oauth.settings import oauth_settings
from portal import settings as production
from portal.lib.conf import REQUIRED, AppSettings


def test_each_knob_has_one_home():
    assert not client_settings.declared & oauth_settings.declared
    # Everything the settings module may put in OAUTH is declared by exactly one of them.
    assert set(production.OAUTH) <= client_settings.declared | oauth_settings.declared


def test_the_defaults_apply_when_the_setting_is_absent(settings):
    settings.OAUTH = {"ISSUER": "https://auth.example.com"}
    assert oauth_settings.SECRET_CACHE_SECONDS == 300
    assert client_settings.MAX_SECRETS_PER_CLIENT == 5
    assert client_settings.MANAGEMENT_AUDIENCE == "https://auth.example.com/api/v1"
    assert oauth_settings.KEY_ENCRYPTION_KEYS == [settings.SECRET_KEY]
    # The server's object answers for the domain's knobs too.
    assert oauth_settings.TOKEN_EXPIRY_MAX == 86400


def test_a_changed_setting_is_read_again(settings):
    settings.OAUTH = {**settings.OAUTH, "SECRET_CACHE_SECONDS": 7}
    assert oauth_settings.SECRET_CACHE_SECONDS == 7
    settings.OAUTH = {**settings.OAUTH, "SECRET_CACHE_SECONDS": 9}
    assert oauth_settings.SECRET_CACHE_SECONDS == 9


def test_a_required_knob_that_is_missing_is_a_configuration_error(settings):
    settings.OAUTH = {}
    with pytest.raises(ImproperlyConfigured, match='OAUTH\\["ISSUER"\\] must be set'):
        _ = client_settings.ISSUER


def test_an_undeclared_name_is_an_attribute_error():
    knobs = AppSettings("OAUTH", {"A": REQUIRED})
    with pytest.raises(AttributeError):
        _ = knobs.NOT_A_KNOB
    with pytest.raises(AttributeError):
        _ = oauth_settings.NOT_A_KNOB
