"""The guide's deployment API: a tiny Django service protected by the resource-server kit.

Run it against an authorization server of ours::

    ISSUER=http://127.0.0.1:8000 gunicorn examples.deployment_api.wsgi --worker-class gthread \
        --bind 127.0.0.1:8001
    ISSUER=http://127.0.0.1:8000 python -m examples.deployment_api 127.0.0.1:8001   # dev server

Routes:

* ``POST /deployments`` needs the ``deploy:applications`` scope (plain Django view with
  ``m2m_auth_kit.guards.require_scopes``);
* ``GET /deployments`` needs ``read:deployments`` (DRF view with ``BearerTokenAuthentication``
  and ``HasScopes``).
"""
