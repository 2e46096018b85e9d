from django.urls import path

from feedback.api import FeedbackApi

urlpatterns = [
    path("feedback/", FeedbackApi.as_view(), name="feedback"),
]
