"""``from oauth.guards import …`` goes on working: the kit lives in ``m2m_auth_kit.guards``."""

from m2m_auth_kit.guards import *  # noqa: F403
