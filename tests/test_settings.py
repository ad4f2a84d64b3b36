"""portal.settings: the database timeouts, read from the environment as production reads them."""

from __future__ import annotations

import pytest

from tests.lib.test_logs import _settings_value

POSTGRES = {"DATABASE_URL": "postgres://u@db.example:5432/m2m"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "5 5000"),
        ({"DATABASE_CONNECT_TIMEOUT": "2"}, "2 2000"),
    ],
)
def test_every_postgresql_connection_has_a_connect_timeout(env, expected):
    options = "s.DATABASES['default']['OPTIONS']"
    result = _settings_value(
        {**POSTGRES, **env}, f"{options}['connect_timeout'], {options}['tcp_user_timeout']"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.parametrize(
    "env", [{"DATABASE_CONNECT_TIMEOUT": "0"}, {"OAUTH_TOKEN_DATABASE_TIMEOUT": "soon"}]
)
def test_a_timeout_that_is_not_a_positive_number_stops_start_up(env):
    result = _settings_value({**POSTGRES, **env}, "1")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr


def test_the_token_path_timeout_is_an_oauth_setting():
    result = _settings_value(
        {"OAUTH_TOKEN_DATABASE_TIMEOUT": "3"}, "s.OAUTH['TOKEN_DATABASE_TIMEOUT']"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"
