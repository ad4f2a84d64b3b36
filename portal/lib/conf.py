"""A namespaced settings dict read with defaults: ``settings.OAUTH["X"]`` becomes
``oauth_settings.X``, with the default declared next to the code that owns the knob.

Values are read once and kept as attributes (the token path reads some per request); a change
of the setting (``override_settings``, pytest-django's ``settings`` fixture) forgets them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

REQUIRED = object()


class AppSettings:
    """The knobs ``defaults`` names, read from ``settings.<namespace>`` (a dict).

    A default may be a callable, called with this object, for a value derived from another knob;
    ``REQUIRED`` makes a missing value a configuration error. ``fallback`` answers for the names
    this object does not declare (a layer above reading a lower layer's knobs through its own).
    """

    def __init__(
        self,
        namespace: str,
        defaults: Mapping[str, Any],
        fallback: AppSettings | None = None,
    ) -> None:
        self._namespace = namespace
        self._defaults = dict(defaults)
        self._fallback = fallback
        setting_changed.connect(self._changed, weak=False)

    @property
    def declared(self) -> frozenset[str]:
        """The names this object owns (the fallback's not included)."""
        return frozenset(self._defaults)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._defaults:
            if self._fallback is not None and not name.startswith("_"):
                return getattr(self._fallback, name)
            raise AttributeError(f"{self._namespace} has no setting {name!r}")
        configured = getattr(settings, self._namespace, {})
        if name in configured:
            value = configured[name]
        else:
            default = self._defaults[name]
            if default is REQUIRED:
                raise ImproperlyConfigured(f'{self._namespace}["{name}"] must be set')
            value = default(self) if isinstance(default, Callable) else default
        self.__dict__[name] = value
        return value

    def _changed(self, *, setting: str, **kwargs: Any) -> None:
        if setting == self._namespace or (setting == "SECRET_KEY"):
            for name in self._defaults:
                self.__dict__.pop(name, None)
