import functools
import logging

from django.db import DatabaseError
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from digitsite.api import JsonOnly, SessionUser
from digitsite.clients import client_source_to_read
from digitsite.storage import disk_full_problem
from recognizer import memory
from recognizer.fields import EXAMPLE_IMAGE, EXAMPLE_STROKES, DrawingSerializer
from recognizer.labels import NOT_A_DIGIT_LABEL
from recognizer.preprocessing import to_data_url, to_png
from recognizer.services import digit_predict, digit_stood_remember
from recognizer.serving import active_model, active_model_problem
from recognizer.servingform import ModelUnavailable

logger = logging.getLogger(__name__)

ERRORS = {
    400: OpenApiResponse(description="Not JSON; neither or both of strokes and image; bad strokes; bad base64, or not a PNG/JPEG image."),
    413: OpenApiResponse(description="The request or the image is too large."),
    503: OpenApiResponse(description="No usable model file."),
}


PREDICT_EXAMPLES = [
    OpenApiExample("A 7 as strokes", value={"strokes": EXAMPLE_STROKES}, request_only=True),
    OpenApiExample("A 7 as a PNG", value={"image": EXAMPLE_IMAGE}, request_only=True),
    OpenApiExample(
        "A guess",
        value={
            "digit": 7,
            "confidence": 0.9996,
            "probabilities": [0.0, 0.0002, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9996, 0.0, 0.0001],
            "sure": True,
            "top_two": [7, 1],
            "reason": None,
            "hint": None,
            "not_a_digit": 0.0001,
            "model": "20261128-085951-5d1e",
            "correction": None,
            "input_image": "data:image/png;base64,iVBORw0KGgo...",
        },
        response_only=True,
        status_codes=["200"],
    ),
    OpenApiExample(
        "Like one you corrected",
        value={
            "digit": 4, "confidence": 0.9902,
            "probabilities": [0.0, 0.0, 0.0, 0.0, 0.9902, 0.0098, 0.0, 0.0, 0.0, 0.0],
            "sure": True, "top_two": [4, 5], "reason": "your_correction", "hint": "Like the one you corrected.",
            "not_a_digit": 0.0, "model": "20261206-050000-0000", "correction": 42, "input_image": "data:image/png;base64,iVBORw0KGgo...",
        },  # fmt: skip
        response_only=True,
        status_codes=["200"],
    ),
    OpenApiExample(
        "Not a digit",
        value={
            "digit": None, "confidence": 0.9931,
            "probabilities": [0.0, 0.0002, 0.0, 0.0, 0.0051, 0.0, 0.0, 0.0, 0.0011, 0.0003],
            "sure": True, "top_two": [4, 8], "reason": "not_a_digit", "hint": "That doesn't look like a digit.",
            "not_a_digit": 0.9931, "model": "20261206-050000-0000", "correction": None, "input_image": "data:image/png;base64,iVBORw0KGgo...",
        },  # fmt: skip
        response_only=True,
        status_codes=["200"],
    ),
    OpenApiExample(
        "Nothing to read",
        value={
            "digit": None, "confidence": None, "probabilities": None, "sure": None, "top_two": None,
            "reason": "too_small", "hint": "Too small to read: draw bigger.", "not_a_digit": None, "model": "20261128-085951-5d1e",
            "correction": None, "input_image": None,
        },  # fmt: skip
        response_only=True,
        status_codes=["200"],
    ),
]


class PredictApi(APIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "predict"
    content_negotiation_class = JsonOnly

    class InputSerializer(DrawingSerializer):
        pass

    def get_authenticators(self):
        # The signed-in user's corrections are theirs on every device (recognizer.memory): read
        # from the session, only while the memory is on, and only for a client with a session.
        return [SessionUser()] if memory.memory_on() else []

    class OutputSerializer(serializers.Serializer):
        digit = serializers.IntegerField(allow_null=True, help_text="the likeliest digit; null when there is nothing to read or it is not a digit (see reason)")
        confidence = serializers.FloatField(allow_null=True, help_text="calibrated probability of digit; of not_a_digit when reason is not_a_digit")
        probabilities = serializers.ListField(
            child=serializers.FloatField(), allow_null=True, help_text="calibrated, for 0 to 9; with not_a_digit they sum to 1"
        )
        sure = serializers.BooleanField(allow_null=True, help_text="false when confidence is below the threshold: show top_two, not a guess")
        top_two = serializers.ListField(child=serializers.IntegerField(), allow_null=True, help_text="the two likeliest digits, also when it is not a digit")
        reason = serializers.ChoiceField(
            choices=["no_ink", "too_small", NOT_A_DIGIT_LABEL, memory.REASON, memory.REASON_STOOD],
            allow_null=True,
            help_text=f"why digit is null; or {memory.REASON}: the digit is the one you gave a drawing this resembles, "
            f"one of your own recent corrections (see correction), not the net's; or {memory.REASON_STOOD}: the digit "
            "one of your own earlier drawings like it was answered and you let stand (see stood)",
        )
        hint = serializers.CharField(allow_null=True, help_text="what to tell the person drawing, when digit is null or comes from a correction")
        not_a_digit = serializers.FloatField(allow_null=True, help_text="calibrated probability that the drawing is not a digit; null when there is nothing to read")
        model = serializers.CharField(help_text="version of the model that guessed")
        correction = serializers.IntegerField(
            allow_null=True, help_text=f"reason {memory.REASON}: the id of your correction it resembles (the id /api/feedback/ answered you)"
        )
        input_image = serializers.SerializerMethodField(help_text="the 28x28 image the model read, as a PNG data URL")

        def get_input_image(self, prediction) -> str | None:
            return None if prediction.model_input is None else to_data_url(to_png(prediction.model_input))

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer, **ERRORS},
        examples=PREDICT_EXAMPLES,
        summary="Guess a drawn digit",
        description=(
            "Send the drawing as strokes (what the page sends) or as a PNG or JPEG data URL: exactly one. The drawing is "
            "not stored. A drawing close to one you corrected lately (your session's, or your account's when signed in) "
            f"is answered with the digit you gave (reason {memory.REASON}), or close to one of your earlier drawings whose "
            f"answer you let stand, with its digit (reason {memory.REASON_STOOD}); anyone else gets the net's answer. "
            "Once you have a correction remembered, `stood` (optional) sends those earlier drawings: they are kept for "
            "your own guesses, at most 100 for 24 hours."
        ),
    )
    def post(self, request):
        validate, render = _serializers()
        # Whose corrections count: the feedback API's rule (digitsite.clients). A browser without
        # the memory hint (or with the memory off) is a stranger: nothing is read for it.
        source = client_source_to_read(request) if memory.memory_on() else None
        data = validate.run_validation(request.data)
        stood = data.pop("stood", None)
        prediction = digit_predict(**data, source=source)
        if stood and source:
            try:
                digit_stood_remember(source=source, inputs=[image for image, _ in stood], digits=[digit for _, digit in stood])
            except DatabaseError:  # a busy or failing database costs this memory, never the guess
                logger.warning("could not remember the drawings that stood", exc_info=True)
        return Response(render.to_representation(prediction))


@functools.cache
def _serializers() -> tuple[PredictApi.InputSerializer, PredictApi.OutputSerializer]:
    # Built once: a serializer deep-copies its declared fields on each instantiation, about a
    # third of a guess's time outside the model. Validating (run_validation returns the data or
    # raises) and rendering only read their fields, so one instance serves every request.
    return PredictApi.InputSerializer(), PredictApi.OutputSerializer()


class HealthApi(APIView):
    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=["ok", "degraded", "unavailable"])
        problem = serializers.CharField(allow_null=True)
        model = serializers.DictField(
            allow_null=True,
            help_text="the active model's metadata, and how this process runs it: precision (int8 or float32), "
            "variant (the serving form's graph) and precision_note (why 32-bit floats serve, when no 8-bit variant agrees on this processor); "
            "memory (whether a sender's own corrections answer their similar drawings) and memory_note (why not)",
        )

    @extend_schema(responses={200: OutputSerializer, 503: OutputSerializer}, summary="Is a model serving, and which")
    def get(self, request):
        problem = active_model_problem()
        try:
            model = active_model()
        except ModelUnavailable:
            return Response({"status": "unavailable", "problem": problem, "model": None}, status=503)
        try:
            net = model.serving_net()  # made once per model (a worker makes it before its first request)
        except ModelUnavailable as error:  # it loaded, but its serving net could not be made: no guesses
            return Response({"status": "unavailable", "problem": problem or str(error), "model": model.describe()}, status=503)
        problem = problem or disk_full_problem()  # guesses still work; corrections cannot be stored
        described = {
            **model.describe(), "precision": net.precision, "variant": net.variant, "precision_note": net.why,
            "memory": memory.memory_on() and net.has_features, "memory_note": memory.memory_note(has_features=net.has_features),
        }  # fmt: skip
        return Response({"status": "degraded" if problem else "ok", "problem": problem, "model": described})
