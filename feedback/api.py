from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from digitsite.api import CsrfProtected
from digitsite.clients import client_source, memory_hint_set
from digitsite.storage import disk_full_clear
from feedback.services import (
    AnswerFixed,
    AnswerUnknown,
    SourceOverDailyLimit,
    sample_answer_change,
    sample_answer_changeable_until,
    sample_answer_withdraw,
    sample_create_once,
)
from recognizer.fields import EXAMPLE_IMAGE, EXAMPLE_STROKES, DrawingSerializer
from recognizer.labels import DIGITS, NOT_A_DIGIT, NOT_A_DIGIT_LABEL
from recognizer.memory import remembers
from recognizer.services import digit_stood_remember


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 0, "maximum": 9}, {"type": "string", "enum": [NOT_A_DIGIT_LABEL]}]})
class LabelField(serializers.Field):
    """A digit 0-9, or "not_a_digit" (stored as recognizer.labels.NOT_A_DIGIT)."""

    default_error_messages = {"invalid": f'A label is a digit from 0 to 9, or "{NOT_A_DIGIT_LABEL}".'}

    def to_internal_value(self, data) -> int:
        if data == NOT_A_DIGIT_LABEL:
            return NOT_A_DIGIT
        # Whole numbers only: not 3.5, "seven" or true (a bool is an int to Python).
        if isinstance(data, int) and not isinstance(data, bool) and data in DIGITS:
            return data
        if isinstance(data, str) and data.isdigit() and int(data) in DIGITS:
            return int(data)
        self.fail("invalid")

    def to_representation(self, value: int) -> int:
        return value


LABEL_HELP = f'the digit the drawing really is, or "{NOT_A_DIGIT_LABEL}" (stored and answered as {NOT_A_DIGIT})'

FEEDBACK_EXAMPLES = [
    OpenApiExample(
        "A 7 read wrongly, said to be a 1",
        value={"strokes": EXAMPLE_STROKES, "label": 1, "client_id": "0b5f6f3e-9a47-4c55-8f2e-1d8a6a3c7e21"},
        request_only=True,
    ),
    OpenApiExample("A right guess confirmed, as a PNG", value={"image": EXAMPLE_IMAGE, "label": 7}, request_only=True),
    OpenApiExample("Not a digit", value={"strokes": EXAMPLE_STROKES, "label": "not_a_digit"}, request_only=True),
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
            "first_label": None,
            "changeable_until": "2026-11-28T10:35:00Z",
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
        label = LabelField(help_text=LABEL_HELP)
        client_id = serializers.UUIDField(
            required=False,
            allow_null=True,
            help_text=(
                "A UUID the client makes for this correction. Send it again with the same "
                "client_id (a retry after no answer) and it is stored once: the answer is the "
                "first copy, with 200 instead of 201. With it the sender may change or take back "
                "the answer for a few minutes (PATCH or DELETE /api/feedback/<client_id>/)."
            ),
        )

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        label = serializers.IntegerField(help_text=f"the digit, or {NOT_A_DIGIT} for not a digit")
        guess = serializers.IntegerField(help_text=f"what the model said, worked out by the server ({NOT_A_DIGIT}: not a digit)")
        confidence = serializers.FloatField()
        model = serializers.CharField(source="model_version")
        is_correction = serializers.BooleanField(help_text="true when the guess was wrong")
        status = serializers.CharField(help_text='"new"; "needs_review" while a reviewer checks it before training on it')
        created_at = serializers.DateTimeField()
        client_id = serializers.UUIDField(allow_null=True, help_text="the client_id it was sent with, if any")
        first_label = serializers.IntegerField(allow_null=True, help_text="the label first sent, when the sender changed it")
        changeable_until = serializers.SerializerMethodField(
            help_text="until when the sender may change or take back this answer by its client_id"
        )

        @extend_schema_field(OpenApiTypes.DATETIME)
        def get_changeable_until(self, sample) -> str | None:
            if sample.client_id is None:
                return None
            return serializers.DateTimeField().to_representation(sample_answer_changeable_until(sample=sample))

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
        stood = data.pop("stood", None)
        try:
            sample, created = sample_create_once(
                client_id=data.pop("client_id", None), source=client_source(request), user=request.user, **data
            )
        except SourceOverDailyLimit as limit:
            # The site's error shape ("message", "extra"), with "detail" too: the daily limit promises it.
            body = {"message": str(limit), "detail": str(limit), "extra": {"daily_limit": limit.limit}}
            return Response(body, status=status.HTTP_429_TOO_MANY_REQUESTS, headers={"Retry-After": str(limit.retry_after_s)})
        disk_full_clear()  # a write succeeded: health need not say the disk is full any more
        if created and stood:  # remembered only beside a correction remembered (recognizer.memory)
            digit_stood_remember(source=sample.source, inputs=[image for image, _ in stood], digits=[digit for _, digit in stood])
        answer = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return _with_memory_hint(Response(self.OutputSerializer(sample).data, status=answer), sample=sample)


class FeedbackAnswerApi(APIView):
    """The sender's own answer, by the client_id it was stored with: changed or taken back for a
    few minutes (FEEDBACK_CHANGE_MINUTES). The client_id is a random UUID only the sender knows."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [CsrfProtected]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "feedback"

    class InputSerializer(serializers.Serializer):
        label = LabelField(help_text=LABEL_HELP)

    ERRORS = {
        400: OpenApiResponse(description="Bad label."),
        403: OpenApiResponse(description="No valid CSRF token."),
        404: OpenApiResponse(description="No answer was stored with this client_id, or it was taken back."),
        409: OpenApiResponse(description="Too late (FEEDBACK_CHANGE_MINUTES after it was saved), or a reviewer has checked it."),
        429: OpenApiResponse(description="Too many requests from this client; try later."),
    }

    @extend_schema(
        request=InputSerializer,
        responses={200: FeedbackApi.OutputSerializer, **ERRORS},
        summary="Change your answer",
        description="The drawing stays; its label becomes the one sent. The first label is kept for the reviewers.",
    )
    def patch(self, request, client_id):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            sample = sample_answer_change(client_id=client_id, label=serializer.validated_data["label"])
        except (AnswerUnknown, AnswerFixed) as refused:
            return _refused(refused)
        return _with_memory_hint(Response(FeedbackApi.OutputSerializer(sample).data), sample=sample)

    @extend_schema(request=None, responses={204: None, **ERRORS}, summary="Take your answer back")
    def delete(self, request, client_id):
        try:
            sample_answer_withdraw(client_id=client_id)
        except (AnswerUnknown, AnswerFixed) as refused:
            return _refused(refused)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _with_memory_hint(response: Response, *, sample) -> Response:
    # A correction the sender's next guesses remember (recognizer.memory): the page's guesses
    # look for it from now on; other browsers' guesses read nothing.
    if sample.source and remembers(label=sample.label, guess=sample.guess):
        memory_hint_set(response, source=sample.source)
    return response


def _refused(refused: AnswerUnknown | AnswerFixed) -> Response:
    code = status.HTTP_404_NOT_FOUND if isinstance(refused, AnswerUnknown) else status.HTTP_409_CONFLICT
    return Response({"message": str(refused), "extra": {}}, status=code)
