"""Bench helper (not part of the product): make an organization and a client, print its credentials.

Run from the repository root with the server's environment (DATABASE_URL, SECRET_KEY, ...):
``python bench/make_client.py [--algorithm RS256|ES256]``. Prints one JSON line with
``client_id`` and ``client_secret``. With ``--algorithm``, first makes sure the current signing key
uses that algorithm (rotating when it does not).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--algorithm", choices=["RS256", "ES256"], default=None)
    parser.add_argument("--count", type=int, default=1, help="how many clients to make")
    parser.add_argument(
        "--federated",
        action="store_true",
        help="also give each client a trust policy (a static JWKS) and print an external "
        "workload token it admits, as assertion",
    )
    args = parser.parse_args()

    import django

    django.setup()
    from clients.services import Actor, client_create, organization_create
    from oauth import keys

    current = keys.ensure_signing_key()
    if args.algorithm and current.algorithm != args.algorithm:
        keys.rotate_signing_key(algorithm=args.algorithm)
    actor = Actor.system("bench")
    organization = organization_create(actor=actor, display_name="Bench Org")
    for _ in range(args.count):
        client, secret = client_create(
            actor=actor,
            organization=organization,
            name="bench client",
            scopes=["read:things", "write:things"],
            audience=["https://api.example.com"],
            custom_claims=[{"key": "tier", "value": "gold"}],
        )
        made = {"client_id": client.id, "client_secret": secret}
        if args.federated:
            made["assertion"] = _federate(actor, client)
        print(json.dumps(made))


def _federate(actor, client) -> str:
    """A Kubernetes-style trust policy with a static JWKS, and a day-long token it admits: the
    federated grant's cost is the external signature check, not fetching keys."""
    import time

    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    from clients.conf import client_settings
    from clients.services import trust_policy_create

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "bench-cluster"}
    issuer = "https://kubernetes.default.svc.cluster.local"
    trust_policy_create(
        actor=actor,
        client=client,
        name="bench cluster",
        issuer=issuer,
        jwks={"keys": [jwk]},
        subject="system:serviceaccount:bench:loader",
        max_token_age=86400,
    )
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": "system:serviceaccount:bench:loader",
        "aud": [client_settings.ISSUER],
        "iat": now,
        "nbf": now,
        "exp": now + 86400,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench-cluster"})


if __name__ == "__main__":
    main()
