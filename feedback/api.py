from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from digitsite.api import CsrfProtected
from feedback.services import sample_create
from recognizer.fields import DrawingSerializer


class FeedbackApi(APIView):
    permission_classes = [CsrfProtected]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "feedback"

    class InputSerializer(DrawingSerializer):
        label = serializers.IntegerField(min_value=0, max_value=9, help_text="the digit the drawing really is")

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        label = serializers.IntegerField()
        guess = serializers.IntegerField(help_text="what the model said, worked out by the server")
        confidence = serializers.FloatField()
        model = serializers.CharField(source="model_version")
        is_correction = serializers.BooleanField(help_text="true when the guess was wrong")
        status = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: OpenApiResponse(description="Bad label; neither or both of strokes and image; bad strokes; no ink or too small; not a PNG/JPEG data URL."),
            403: OpenApiResponse(description="No valid CSRF token."),
            413: OpenApiResponse(description="The request or the image is too large."),
            429: OpenApiResponse(description="Too many corrections from this client; try later."),
        },
        summary="Store a drawing with its right digit",
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        sample = sample_create(**serializer.validated_data)
        return Response(self.OutputSerializer(sample).data, status=status.HTTP_201_CREATED)
