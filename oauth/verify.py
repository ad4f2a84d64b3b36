"""``from oauth.verify import …`` goes on working: the kit lives in ``m2m_auth_kit.verify``."""

from m2m_auth_kit.verify import *  # noqa: F403
