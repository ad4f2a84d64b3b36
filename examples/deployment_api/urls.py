"""One resource, ``/deployments``: POST and GET go to two differently built views."""

from django.urls import path

from examples.deployment_api import views

urlpatterns = [path("deployments", views.deployments, name="deployments")]
