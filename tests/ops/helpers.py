"""The old path of ``tests.serving.helpers``, for tests/clients/test_api.py alone.

That module is being changed on another branch; when it moves to tests/api/ and imports
``tests.serving.helpers``, this package goes.
"""

from tests.serving.helpers import captured_json  # noqa: F401
