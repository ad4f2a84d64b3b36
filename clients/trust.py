"""Trust policies' rules (workload identity federation, issue 18): what a policy may say, and how
its subject and claim conditions match an external token's claims.

A pattern is an exact value, or a value with ``*`` wildcards; a ``*`` stands for any run of
characters **without a colon**. GitHub, GitLab and Kubernetes build their subjects from
colon-separated fields (``repo:acmecorp/api:environment:production``,
``system:serviceaccount:ci:deployer``), so ``repo:acmecorp/*:ref:refs/heads/main`` matches any
repository of acmecorp on main, but ``*`` can never swallow a field boundary and let another
environment or branch through.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from clients.jwk import JWKError, parse_public_jwk

MAX_POLICIES_PER_CLIENT = 10
MAX_CLAIM_CONDITIONS = 20
MAX_PATTERN_LENGTH = 512
MAX_ISSUER_LENGTH = 256
MAX_JWKS_KEYS = 20
DEFAULT_MAX_TOKEN_AGE = 300
MAX_TOKEN_AGE_LIMIT = 86400
CLAIM_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:/-]{0,127}$")
# Claims the policy's own fields check: a condition on them would be a second, weaker check.
CHECKED_BY_FIELDS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti"})


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile("[^:]*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def pattern_matches(pattern: str, value: str) -> bool:
    """Whether ``value`` is ``pattern`` (``*``: any run of characters without a colon)."""
    if "*" not in pattern:
        return pattern == value
    return _compiled(pattern).fullmatch(value) is not None


def claim_value(claims: dict[str, Any], name: str) -> Any:
    """The claim ``name``; a dotted name reaches into objects (``kubernetes.io.namespace``:
    Kubernetes' ``{"kubernetes.io": {"namespace": …}}``), the longest key first. None when
    absent."""
    if name in claims:
        return claims[name]
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        inner = claims.get(head)
        if isinstance(inner, dict):
            found = claim_value(inner, ".".join(parts[cut:]))
            if found is not None:
                return found
    return None


def claim_text(value: Any) -> str | None:
    """A claim as the text a condition compares: strings as they are, booleans as
    ``true``/``false``, integers in decimal; None for anything else (lists, objects)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return None


def _pattern_error(value: Any, what: str) -> str | None:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        return f"{what} is a non-empty string without outer spaces"
    if len(value) > MAX_PATTERN_LENGTH or any(ord(c) < 0x20 for c in value):
        return f"{what} is at most {MAX_PATTERN_LENGTH} printable characters"
    if not value.replace("*", "").replace(":", ""):
        return f"{what} must hold more than wildcards: it would match any workload"
    return None


def url_error(value: str, *, allow_http: bool) -> str | None:
    """Why ``value`` is not an issuer URL we would fetch from; None when it is."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "the issuer is not a valid URL"
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        return "the issuer must be an https:// URL (its discovery document names its keys)"
    if parts.username is not None or parts.query or parts.fragment:
        return "the issuer URL has no credentials, query or fragment"
    return None


def trust_policy_errors(
    *,
    issuer: Any,
    jwks: Any,
    audience: Any,
    subject: Any,
    claim_conditions: Any,
    max_token_age: Any,
    allow_http: bool = False,
) -> dict[str, list[str]]:
    """Field errors of a trust policy (empty when it is acceptable).

    ``issuer`` is always the ``iss`` the token must carry; without a static ``jwks`` it must be
    an ``https://`` URL, whose discovery document gives the keys (``allow_http``: the test-only
    OUTBOUND_ALLOW_INSECURE). A policy without a subject and without a claim condition is
    refused: it would admit every workload of the issuer.
    """
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if not isinstance(issuer, str) or not issuer or issuer != issuer.strip():
        add("issuer", "issuer is required: the iss of the tokens this policy accepts")
    elif len(issuer) > MAX_ISSUER_LENGTH or any(ord(c) < 0x21 for c in issuer):
        add("issuer", f"issuer is at most {MAX_ISSUER_LENGTH} printable characters")
    elif jwks is None:
        problem = url_error(issuer, allow_http=allow_http)
        if problem:
            add("issuer", problem)
    if jwks is not None:
        for field, message in _jwks_errors(jwks):
            add(field, message)
    if not isinstance(audience, str) or not audience or audience != audience.strip():
        add("audience", "audience is a non-empty string without outer spaces")
    elif len(audience) > MAX_ISSUER_LENGTH:
        add("audience", f"audience is at most {MAX_ISSUER_LENGTH} characters")
    if subject not in (None, ""):
        problem = _pattern_error(subject, "subject")
        if problem:
            add("subject", problem)
    if not isinstance(claim_conditions, list):
        add("claim_conditions", "claim_conditions is a list of {claim, value} objects")
        claim_conditions = []
    elif len(claim_conditions) > MAX_CLAIM_CONDITIONS:
        add("claim_conditions", f"at most {MAX_CLAIM_CONDITIONS} claim conditions")
    seen: set[str] = set()
    for i, condition in enumerate(claim_conditions):
        where = f"claim_conditions[{i}]"
        if not isinstance(condition, dict) or set(condition) != {"claim", "value"}:
            add(where, "a claim condition is an object with exactly claim and value")
            continue
        claim = condition["claim"]
        if not isinstance(claim, str) or not CLAIM_NAME_RE.match(claim):
            add(f"{where}.claim", "a claim name: letters, digits, _ . : / -, at most 128")
        elif claim in CHECKED_BY_FIELDS:
            add(f"{where}.claim", f"{claim!r} is checked by the policy's own fields")
        elif claim in seen:
            add(f"{where}.claim", f"duplicate condition on {claim!r}")
        else:
            seen.add(claim)
        problem = _pattern_error(condition["value"], "a condition's value")
        if problem:
            add(f"{where}.value", problem)
    if subject in (None, "") and not claim_conditions and "claim_conditions" not in errors:
        add(
            "subject",
            "give a subject or at least one claim condition: without either the policy "
            "would let every workload of the issuer in",
        )
    if (
        isinstance(max_token_age, bool)
        or not isinstance(max_token_age, int)
        or not 1 <= max_token_age <= MAX_TOKEN_AGE_LIMIT
    ):
        add("max_token_age", f"max_token_age is a number of seconds, 1 to {MAX_TOKEN_AGE_LIMIT}")
    return errors


def _jwks_errors(jwks: Any) -> list[tuple[str, str]]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        return [("jwks", 'jwks is a JWK Set: an object with a "keys" list')]
    keys = jwks["keys"]
    if not 1 <= len(keys) <= MAX_JWKS_KEYS:
        return [("jwks.keys", f"a JWK Set of 1 to {MAX_JWKS_KEYS} keys")]
    problems = []
    for i, key in enumerate(keys):
        try:
            parse_public_jwk(key)
        except JWKError as exc:
            field = f"jwks.keys[{i}]" if exc.field == "jwk" else f"jwks.keys[{i}].{exc.field}"
            problems.append((field, exc.message))
    return problems


def public_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    """A validated static JWKS with only the public members of each key kept."""
    return {"keys": [parse_public_jwk(key).jwk for key in jwks["keys"]]}
