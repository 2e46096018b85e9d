"""The OpenAPI schema's generator, with unique names for the views' nested serializers."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    def get_serializer_name(self, serializer, direction) -> str:
        # Each view nests its own InputSerializer and OutputSerializer (HackSoft's style); named
        # "Input" and "Output" alone, the predict and feedback bodies would share one component,
        # and the schema would describe predict's body with feedback's fields (or the reverse).
        outer, _, inner = type(serializer).__qualname__.rpartition(".")
        if outer.endswith("Api"):
            return outer.removesuffix("Api") + inner
        return super().get_serializer_name(serializer, direction)


class SessionUserScheme(SessionScheme):
    """digitsite.api.SessionUser is the session cookie, as SessionAuthentication's (the guess
    reads it to know whose corrections count; defined here, where the schema's code is loaded)."""

    target_class = "digitsite.api.SessionUser"
    name = "sessionCookie"
