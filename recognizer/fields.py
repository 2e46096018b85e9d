import numpy as np
from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from recognizer.preprocessing import (
    ImageTooLarge,
    PreprocessingError,
    decode_data_url,
    input_image_decode,
    strokes_simplify,
    to_data_url,
    to_png,
)


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


# For the API docs' examples ("Try it out" sends them): a 7 in strokes, and a 7 as a 28x28 PNG.
EXAMPLE_STROKES = [[[120, 80], [200, 70], [150, 300]], [[110, 190], [190, 190]]]
EXAMPLE_IMAGE = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAAAAABXZoBIAAABI0lEQVQoFXXBO0tCcRjA"
    "4d8L4pJEEVJgQ61CLeEQtHSBhqCgCKIghPoCQQ1dtqCG+giFDYEY5OAoXZagQSIoiDZp6IZDYA4hB9/OUc/xf4TzPK"
    "IEEyWYKMFECSZK3edHDU+tP4ZDFEdmCZ9UEpsotvw0bc5XAFFsVnoVn9hrBBDFYb2/hWjKnJU7UovYRGlTGv4icRfG"
    "Jkqbwx0iuXEcovh9D5WYvKJOFL+tYyI3CepE8SmO/DB/SYMoPuundN7HaRDF9DJaZu2EJlFMC1m6HwZpEsVQmKiweY"
    "RLFMPUNdHnXlyitNzOVjjYxiOKpzpWoO8pikcUTzb527O7QYsorr94kYHHLlpEcaWXYX8PgyguKz8zdxHGIIrHClXD"
    "mEQJJkqwf7LYWQF7O2JDAAAAAElFTkSuQmCC"
)

# Limits that fit real digits with room to spare (python -m bench.simplify; docs/results.md): the
# 7,494 pen digits have at most 3 strokes and 185 points as recorded, which the page sends as they
# are (draw.js thins nothing: one point per pointer event); a pointer 8 times as fast sends up to
# 1,473. Simplified to within half a pixel on arrival, the most any keeps is 93, however fast the
# pointer. What is kept is what a guess draws and a sample stores, so its limit bounds both
# (bench/worst_drawing.py); the limit on what is sent bounds only reading the request.
MAX_STROKES = 30  # 10x the most a pen digit has
MAX_POINTS = 2_000  # sent, all strokes together: 11x the largest pen digit as recorded
MAX_KEPT_POINTS = 500  # after simplification: 5x the largest pen digit's 93
MAX_COORDINATE = 10_000.0  # canvas pixels, either sign: a pointer may leave the canvas

STROKES_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "maxItems": MAX_STROKES,
    "description": (
        "The pen's path: a list of strokes (pen down to pen up), each a list of [x, y] points in "
        f"canvas pixels (y down), finite numbers from -{MAX_COORDINATE:,.0f} to {MAX_COORDINATE:,.0f}; "
        f"at most {MAX_STROKES} strokes and {MAX_POINTS:,} points in all, of which at most {MAX_KEPT_POINTS} "
        "are left once points within half a pixel of the path are dropped. The page's canvas is 400x400; "
        "a mark under 12 px across is too small to read."
    ),
    "items": {
        "type": "array",
        "minItems": 1,
        "items": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
    },
    "example": EXAMPLE_STROKES,
}


@extend_schema_field(STROKES_SCHEMA)
class StrokesField(serializers.Field):
    """`[[[x, y], ...], ...]` in, a list of (n, 2) float arrays out, checked strictly (a
    hostile body must cost little and fail with a message naming what is wrong) and simplified
    to within half a pixel (recognizer.preprocessing.strokes_simplify)."""

    default_error_messages = {
        "invalid": "strokes must be a list of strokes, each a list of [x, y] points",
        "count": f"strokes must hold 1 to {MAX_STROKES} strokes",
        "empty": "stroke {i} has no points",
        "points": f"strokes hold more than {MAX_POINTS:,} points in all",
        "kept": (
            f"strokes hold more than {MAX_KEPT_POINTS} points in all once points within half a pixel of the "
            "path are dropped: a digit needs far fewer"
        ),
        "point": "stroke {i}, point {j}: a point is [x, y], two numbers",
        "range": f"stroke {{i}}: coordinates must be finite numbers from -{MAX_COORDINATE:,.0f} to {MAX_COORDINATE:,.0f}",
    }

    def to_internal_value(self, data) -> list[np.ndarray]:
        if not isinstance(data, list) or not all(isinstance(stroke, list) for stroke in data):
            self.fail("invalid")
        if not 1 <= len(data) <= MAX_STROKES:
            self.fail("count")
        if sum(len(stroke) for stroke in data) > MAX_POINTS:
            self.fail("points")
        strokes = []
        for i, stroke in enumerate(data):
            if not stroke:
                self.fail("empty", i=i)
            for j, point in enumerate(stroke):
                # bool is an int to Python, and a string would be parsed by numpy: both refused.
                if type(point) is not list or len(point) != 2 or not all(type(v) in (int, float) for v in point):
                    self.fail("point", i=i, j=j)
            try:
                array = np.array(stroke, dtype=np.float64)
            except OverflowError:  # an integer too large for a float
                self.fail("range", i=i)
            if not (np.isfinite(array).all() and (np.abs(array) <= MAX_COORDINATE).all()):
                self.fail("range", i=i)
            strokes.append(array)
        # Simplified here, on arrival, so that the guess, the stored sample and their costs all
        # follow the kept points, not however many the pointer sent.
        strokes = strokes_simplify(strokes)
        if sum(len(stroke) for stroke in strokes) > MAX_KEPT_POINTS:
            self.fail("kept")
        return strokes

    def to_representation(self, value):
        return [np.asarray(stroke).tolist() for stroke in value]


# The page keeps at most this many drawings that stood until it sends them; one's data URL is
# a 28x28 PNG, which the page's are (under 1,500 characters; decoded only once its header says so).
MAX_STOOD = 100
MAX_STOOD_URL = 4_000

STOOD_SCHEMA = {
    "type": "array",
    "maxItems": MAX_STOOD,
    "description": (
        f"Up to {MAX_STOOD} of your earlier drawings whose answer you let stand, not sent before (the page sends them "
        "once you have a correction remembered). Your own later guesses compare with them: a drawing like one of them "
        "is answered with its digit (reason your_drawing). Ignored for anyone without a correction remembered."
    ),
    "items": {
        "type": "object",
        "required": ["image", "digit"],
        "properties": {
            "image": {"type": "string", "maxLength": MAX_STOOD_URL, "description": "the input_image that answer came with: a 28x28 PNG data URL"},
            "digit": {"type": "integer", "minimum": 0, "maximum": 9, "description": "the digit it was answered, and left with"},
        },
    },
}


@extend_schema_field(STOOD_SCHEMA)
class StoodField(serializers.Field):
    """`[{"image": <an answer's input_image>, "digit": 0-9}, ...]` in, a list of (28x28 uint8
    image, digit) out: checked by hand, as StrokesField is (a nested serializer cost a
    millisecond a guess)."""

    default_error_messages = {
        "invalid": 'stood must be a list of {{"image": <an answer\'s input_image>, "digit": 0-9}}',
        "count": f"stood holds at most {MAX_STOOD} drawings",
        "digit": "stood {i}: digit must be a whole number from 0 to 9",
        "image": "stood {i}: image must be an answer's input_image, a 28x28 PNG data URL: {why}",
    }

    def to_internal_value(self, data) -> list[tuple[np.ndarray, int]]:
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            self.fail("invalid")
        if len(data) > MAX_STOOD:
            self.fail("count")
        drawings = []
        for i, item in enumerate(data):
            digit, image = item.get("digit"), item.get("image")
            if type(digit) is not int or not 0 <= digit <= 9:  # bool is an int to Python: refused
                self.fail("digit", i=i)
            if not isinstance(image, str) or len(image) > MAX_STOOD_URL:
                self.fail("image", i=i, why=f"a string of at most {MAX_STOOD_URL:,} characters")
            try:
                drawings.append((input_image_decode(image), digit))
            except PreprocessingError as error:
                self.fail("image", i=i, why=str(error))
        return drawings

    def to_representation(self, value):
        return [{"image": to_data_url(to_png(image)), "digit": digit} for image, digit in value]


class DrawingSerializer(serializers.Serializer):
    """A drawing as the page sends it (strokes) or as a picture (image): exactly one of them;
    and, optionally, earlier drawings the sender let stand (stood)."""

    image = DataUrlImageField(required=False)
    strokes = StrokesField(required=False)
    stood = StoodField(required=False)

    def validate(self, attrs: dict) -> dict:
        if ("image" in attrs) == ("strokes" in attrs):
            raise serializers.ValidationError("send the drawing as strokes or as image: exactly one of them")
        return attrs
