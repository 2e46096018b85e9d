from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from digitsite.api import CsrfProtected
from digitsite.clients import client_source
from digitsite.storage import disk_full_clear
from feedback.services import SourceOverDailyLimit, sample_create_once
from recognizer.fields import EXAMPLE_IMAGE, EXAMPLE_STROKES, DrawingSerializer

FEEDBACK_EXAMPLES = [
    OpenApiExample(
        "A 7 read wrongly, said to be a 1",
        value={"strokes": EXAMPLE_STROKES, "label": 1, "client_id": "0b5f6f3e-9a47-4c55-8f2e-1d8a6a3c7e21"},
        request_only=True,
    ),
    OpenApiExample("A right guess confirmed, as a PNG", value={"image": EXAMPLE_IMAGE, "label": 7}, request_only=True),
    OpenApiExample(
        "Stored",
        value={
            "id": 42,
            "label": 1,
            "guess": 7,
            "confidence": 0.9996,
            "model": "20261128-085951-5d1e",
            "is_correction": True,
            "status": "new",
            "created_at": "2026-11-28T10:30:00Z",
            "client_id": "0b5f6f3e-9a47-4c55-8f2e-1d8a6a3c7e21",
        },
        response_only=True,
        status_codes=["201", "200"],
    ),
]


class FeedbackApi(APIView):
    # A signed-in user's corrections are theirs (the sample's source and user; reviewers have no
    # daily cap); everyone else is anonymous, as on the rest of the API.
    authentication_classes = [SessionAuthentication]
    permission_classes = [CsrfProtected]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "feedback"

    class InputSerializer(DrawingSerializer):
        label = serializers.IntegerField(min_value=0, max_value=9, help_text="the digit the drawing really is")
        client_id = serializers.UUIDField(
            required=False,
            allow_null=True,
            help_text=(
                "A UUID the client makes for this correction. Send it again with the same "
                "client_id (a retry after no answer) and it is stored once: the answer is the "
                "first copy, with 200 instead of 201."
            ),
        )

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        label = serializers.IntegerField()
        guess = serializers.IntegerField(help_text="what the model said, worked out by the server")
        confidence = serializers.FloatField()
        model = serializers.CharField(source="model_version")
        is_correction = serializers.BooleanField(help_text="true when the guess was wrong")
        status = serializers.CharField(help_text='"new"; "needs_review" while a reviewer checks it before training on it')
        created_at = serializers.DateTimeField()
        client_id = serializers.UUIDField(allow_null=True, help_text="the client_id it was sent with, if any")

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            200: OpenApiResponse(OutputSerializer, description="Already stored: this client_id was sent before; the answer is the first copy."),
            400: OpenApiResponse(description="Bad label; neither or both of strokes and image; bad strokes; no ink or too small; not a PNG/JPEG data URL."),
            403: OpenApiResponse(description="No valid CSRF token."),
            413: OpenApiResponse(description="The request or the image is too large."),
            429: OpenApiResponse(
                description="Too many corrections from this client; try later. Past the daily limit of one sender "
                '(DIGITSITE_FEEDBACK_PER_SOURCE_DAILY in 24 hours) the body also has "detail" naming it, and Retry-After.'
            ),
            507: OpenApiResponse(description="The server's disk is full: nothing was stored."),
        },
        examples=FEEDBACK_EXAMPLES,
        summary="Store a drawing with its right digit",
        description=(
            "Needs the page's CSRF token: the csrftoken cookie, sent back as X-CSRFToken (the docs "
            "page sends it for you). The server works out the guess itself."
        ),
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            sample, created = sample_create_once(
                client_id=data.pop("client_id", None), source=client_source(request), user=request.user, **data
            )
        except SourceOverDailyLimit as limit:
            # The site's error shape ("message", "extra"), with "detail" too: the daily limit promises it.
            body = {"message": str(limit), "detail": str(limit), "extra": {"daily_limit": limit.limit}}
            return Response(body, status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(limit.retry_after_s)})
        disk_full_clear()  # a write succeeded: health need not say the disk is full any more
        answer = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(self.OutputSerializer(sample).data, status=answer)
