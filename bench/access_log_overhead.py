"""Print the per-request cost of AccessLogMiddleware (request id, client IP, one JSON line).

Run: PYTHONPATH=. DJANGO_SETTINGS_MODULE=tests.settings python bench/access_log_overhead.py
Best of several rounds, so other load on the machine skews the figure less.
"""

import io
import logging
import timeit

import django

django.setup()

from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from oauth import metrics  # noqa: E402
from portal.lib.logs import JsonFormatter  # noqa: E402
from portal.serving.middleware import AccessLogMiddleware  # noqa: E402

handler = logging.StreamHandler(io.StringIO())
handler.setFormatter(JsonFormatter())
access = logging.getLogger("portal.access")
access.handlers, access.propagate = [handler], False
access.setLevel(logging.INFO)

factory = RequestFactory()


def view(request):
    return HttpResponse("x")


middleware = AccessLogMiddleware(view)


def bare():
    view(factory.post("/oauth/token", HTTP_X_REQUEST_ID="abc"))


def logged():
    middleware(factory.post("/oauth/token", HTTP_X_REQUEST_ID="abc"))


def counted():
    with metrics.token_timer():
        metrics.record_token_issued("client_secret_basic")


N = 5000
best = {
    name: min(timeit.repeat(fn, number=N, repeat=7)) / N
    for name, fn in [("bare", bare), ("logged", logged), ("counted", counted)]
}
print(f"request + view:                 {best['bare'] * 1e6:7.1f} us")
print(f"same through AccessLogMiddleware: {best['logged'] * 1e6:7.1f} us")
print(f"access-log overhead:            {(best['logged'] - best['bare']) * 1e6:7.1f} us/request")
print(f"token counter + histogram:      {best['counted'] * 1e6:7.1f} us/request")
