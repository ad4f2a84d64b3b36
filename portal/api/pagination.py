"""Opaque page tokens: a signed offset, so a forged or stale token is a clean 400."""

from __future__ import annotations

from typing import Any

from django.core import signing
from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError

SALT = "api.page_token"
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 10


def _token(offset: int, scope: str) -> str:
    return signing.dumps({"o": offset, "s": scope}, salt=SALT, compress=True)


def page(queryset: QuerySet, query_params: Any, scope: str) -> tuple[list, dict[str, Any]]:
    """One page of ``queryset`` and its paging fields (next/prev tokens, total size)."""
    raw_size = query_params.get("page_size")
    if raw_size in (None, ""):
        size = DEFAULT_PAGE_SIZE
    else:
        try:
            size = int(raw_size)
        except ValueError:
            size = -1
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValidationError({"page_size": [f"page_size must be 1 to {MAX_PAGE_SIZE}"]})
    offset = 0
    raw_token = query_params.get("page_token")
    if raw_token:
        try:
            data = signing.loads(raw_token, salt=SALT)
            offset = int(data["o"])
            if data["s"] != scope or offset < 0:
                raise ValueError
        except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
            raise ValidationError({"page_token": ["page_token is invalid"]}) from exc
    total = queryset.count()
    items = list(queryset[offset : offset + size])
    return items, {
        "next_page_token": _token(offset + size, scope) if offset + size < total else "",
        "prev_page_token": _token(max(offset - size, 0), scope) if offset > 0 else "",
        "total_size": total,
    }
