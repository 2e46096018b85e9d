"""The API's one parser. Its own module: DRF's views import it through the settings, so it
must not import them (digitsite.api does)."""

from rest_framework import exceptions
from rest_framework.parsers import JSONParser


class SafeJSONParser(JSONParser):
    """JSON, with nesting too deep for Python's parser (`[[[[...` 100,000 deep) answered 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deep.") from None
