from django.urls import path

from oauth import views, views_tokens

app_name = "oauth"

urlpatterns = [
    path("oauth/token", views.token, name="token"),
    path("oauth/introspect", views_tokens.introspect, name="introspect"),
    path("oauth/revoke", views_tokens.revoke, name="revoke"),
    path(".well-known/jwks.json", views.jwks, name="jwks"),
    path("keys", views.jwks, name="keys"),
    path(".well-known/oauth-authorization-server", views.discovery, name="discovery"),
]
