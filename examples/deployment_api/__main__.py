"""``python -m examples.deployment_api [ADDRESS:PORT]``: Django's development server."""

import os
import sys

from django.core.management import execute_from_command_line

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.deployment_api.settings")
address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:8001"
execute_from_command_line(["deployment_api", "runserver", "--noreload", address])
