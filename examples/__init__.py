"""Runnable examples of the resource-server kit (not part of the installed package)."""
