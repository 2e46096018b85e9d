from django.urls import path

from recognizer.api import HealthApi, PredictApi

urlpatterns = [
    path("predict/", PredictApi.as_view(), name="predict"),
    path("health/", HealthApi.as_view(), name="health"),
]
