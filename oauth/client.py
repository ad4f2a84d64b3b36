"""``from oauth.client import …`` goes on working: the kit lives in ``m2m_auth_kit.client``."""

from m2m_auth_kit.client import *  # noqa: F403
