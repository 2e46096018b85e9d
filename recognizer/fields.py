from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from recognizer.preprocessing import ImageTooLarge, PreprocessingError, decode_data_url


@extend_schema_field(OpenApiTypes.STR)
class DataUrlImageField(serializers.CharField):
    """A `data:image/png;base64,...` (or JPEG) URL in, the image file's bytes out."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", True)
        kwargs.setdefault("help_text", "A data URL: data:image/png;base64,... or data:image/jpeg;base64,...")
        super().__init__(**kwargs)
        # CharField's null and surrogate checks walk every character in Python (about 1 ms of a
        # 7 ms request); decode_data_url accepts only ASCII base64, which excludes both.
        self.validators = [
            v
            for v in self.validators
            if not isinstance(v, (ProhibitNullCharactersValidator, ProhibitSurrogateCharactersValidator))
        ]

    def to_internal_value(self, data) -> bytes:
        text = super().to_internal_value(data)
        try:
            return decode_data_url(text)
        except ImageTooLarge:
            raise  # answered with 413, not as a field error
        except PreprocessingError as error:
            raise serializers.ValidationError(str(error)) from None
