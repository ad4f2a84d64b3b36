from django.urls import path

from oauth import views

app_name = "oauth"

urlpatterns = [
    path("oauth/token", views.token, name="token"),
    path("oauth/introspect", views.introspect, name="introspect"),
    path("oauth/revoke", views.revoke, name="revoke"),
    path(
        "oauth/secret-scanning/github",
        views.github_secret_scanning,
        name="secret-scanning-github",
    ),
    path(".well-known/jwks.json", views.jwks, name="jwks"),
    path("keys", views.jwks, name="keys"),
    path(".well-known/oauth-authorization-server", views.discovery, name="discovery"),
]
