"""What every API endpoint shares: one error format and the CSRF check (digitsite.parsers
reads the JSON; digitsite.middleware keeps errors made outside DRF in the same format).

Errors follow the HackSoft Django Styleguide's shape, so a client reads every failure the same
way: `{"message": "...", "extra": {...}}`, with `extra.fields` naming each invalid field.
Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE from its Content-Length, before reading
it (RequestDataTooBig, answered 413 here).
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from rest_framework import exceptions, status
from rest_framework.authentication import CSRFCheck, SessionAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from digitsite.clients import MEMORY_HINT_COOKIE
from digitsite.storage import DISK_FULL_ANSWER, disk_full_caught
from recognizer.preprocessing import PreprocessingError
from recognizer.servingform import ModelUnavailable

logger = logging.getLogger("recognizer")


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "too_large"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The model is not available."
    default_code = "model_unavailable"


class DatabaseBusy(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is busy; try again in a few seconds."
    default_code = "database_busy"
    retry_after_s = 5


FORM_TYPES = {"multipart/form-data", "application/x-www-form-urlencoded"}


class CsrfProtected(BasePermission):
    """Django's CSRF check for every caller. DRF checks it only for signed-in users, but the
    page's anonymous corrections write to the database too."""

    def has_permission(self, request, view) -> bool:
        if not hasattr(view, request.method.lower()):
            return True  # answered 405 next; nothing is written
        # Django's check reads request.POST when there is no token header, which would parse
        # (and spool to disk) a form body that this JSON API then refuses anyway.
        if request.content_type.split(";")[0].strip().lower() in FORM_TYPES:
            raise exceptions.UnsupportedMediaType(request.content_type)
        check = CSRFCheck(lambda _: None)
        check.process_request(request._request)
        if reason := check.process_view(request._request, None, (), {}):
            # Raised here: returning False would read "not authenticated" to an anonymous user.
            raise exceptions.PermissionDenied(
                f"CSRF check failed ({reason}): load the page first and send its csrftoken cookie as X-CSRFToken."
            )
        return True


class SessionUser(SessionAuthentication):
    """Who is signed in, from the session, without DRF's CSRF check: for a guess, which stores
    nothing, so a forged cross-site request gains nothing it could read. Asked only of a
    browser whose memory hint says a signed-in user's corrections are to be read
    (digitsite.clients.client_source_to_read); any other request reads no session."""

    def authenticate(self, request):
        if request._request.COOKIES.get(MEMORY_HINT_COOKIE) != "user":
            return None
        return super().authenticate(request)

    def enforce_csrf(self, request) -> None:
        return None


class JsonOnly(DefaultContentNegotiation):
    """For views whose one renderer is JSON: every client gets JSON, without weighing its Accept
    header against the renderers (DRF's "IgnoreClientContentNegotiation"; a twentieth of a
    guess's time outside the model). Bodies are still parsed by their Content-Type."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        # Services raise Django's ValidationError; the client sees it as DRF's.
        exc = exceptions.ValidationError(getattr(exc, "message_dict", None) or {"non_field_errors": exc.messages})
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, (SuspiciousOperation, MultiPartParserError, UnreadablePostError)):
        # Django's upload limits (TooManyFieldsSent, TooManyFilesSent) and broken bodies.
        exc = exceptions.ParseError(f"The request body was refused: {exc}")
    elif disk_full_caught(exc):
        # Not "busy": retrying in a few seconds will not help, and an operator must free space.
        # The write's transaction is rolled back whole, so nothing stored before is touched.
        return _error(status.HTTP_507_INSUFFICIENT_STORAGE, DISK_FULL_ANSWER, {})
    elif isinstance(exc, (OperationalError, InterfaceError)):
        # SQLite answers "database is locked" once its busy timeout has passed; PostgreSQL that it
        # cannot be reached, or a lock_timeout; either way nothing was written.
        logger.warning("database unavailable: %s", exc)
        response = _error(DatabaseBusy.status_code, str(DatabaseBusy.default_detail), {})
        response["Retry-After"] = str(DatabaseBusy.retry_after_s)
        return response
    elif isinstance(exc, PreprocessingError):
        # Every preprocessing error is about the submitted image.
        return _error(exc.status, str(exc), {"fields": {"image": [str(exc)]}})
    elif isinstance(exc, ModelUnavailable):
        logger.error("%s", exc)
        exc = ServiceUnavailable(str(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unexpected error in %s", context.get("view"), exc_info=exc)
        return _error(status.HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error.", {})
    if isinstance(exc, exceptions.ValidationError):
        data = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        response.data = {"message": _first_message(data), "extra": {"fields": data}}
    else:
        response.data = {"message": str(response.data.get("detail", exc)), "extra": {}}
    return response


def _error(code: int, message: str, extra: dict) -> Response:
    return Response({"message": message, "extra": extra}, status=code)


def _first_message(fields: dict) -> str:
    # "image: This field is required." reads better in a client's log than "Invalid input."
    for name, errors in fields.items():
        first = errors[0] if isinstance(errors, list) and errors else errors
        if isinstance(first, str):
            return first if name == "non_field_errors" else f"{name}: {first}"
    return "Invalid input."

