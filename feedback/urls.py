from django.urls import path

from feedback.api import FeedbackAnswerApi, FeedbackApi

urlpatterns = [
    path("feedback/", FeedbackApi.as_view(), name="feedback"),
    path("feedback/<uuid:client_id>/", FeedbackAnswerApi.as_view(), name="feedback-answer"),
]
