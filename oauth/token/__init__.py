"""The token endpoint's hot path, free of any web framework.

A request travels: ``request`` (the form and the client's credentials, parsed strictly) ->
``authenticate`` (a secret checked once per process, or a ``private_key_jwt`` assertion; attempts
limited by ``oauth.ratelimit``) -> ``lookup`` (one query: the client, its usable secrets, the
current key id; on PostgreSQL under the asgi server, ``batching`` shares one query among the
requests that wait together) -> ``signing`` (the JWT) -> ``endpoint`` (the answer, the metrics
and the access-log fields). The Django view ``oauth.views.token`` and the server's fast path
``portal.serving.fastpath`` are thin adapters over ``endpoint.token_endpoint``.
"""
