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
        print(json.dumps({"client_id": client.id, "client_secret": secret}))


if __name__ == "__main__":
    main()
