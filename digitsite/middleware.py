"""The site's own middleware: under /api/ every error is JSON in the API's format, whoever made
it; Content-Security-Policy on pages; static files served by WhiteNoise.

Kept apart from digitsite.api, which imports DRF: DRF's settings import that module's parser,
and a middleware is imported before them.
"""

import json
import logging
import os
from http import HTTPStatus

from csp.middleware import CSPMiddleware
from django.db import InterfaceError, OperationalError
from django.http import HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from whitenoise.middleware import WhiteNoiseMiddleware

from digitsite.storage import DISK_FULL_ANSWER, disk_full_caught

logger = logging.getLogger("recognizer")


class JsonErrorsMiddleware:
    """Under /api/ every error is JSON in the API's format, whoever made it: Django's 404 for an
    unknown URL, a 500 from outside DRF (a response that fails to render), a chunked body.

    `/api/predict` (no slash) answers 308 to `/api/predict/`: unlike Django's APPEND_SLASH
    redirect (301), a 308 keeps the method and the body, so a client that follows it succeeds.
    """

    PREFIX = "/api/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(self.PREFIX):
            return self.get_response(request)
        if "HTTP_TRANSFER_ENCODING" in request.META and not request.META.get("CONTENT_LENGTH"):
            # A WSGI server hands Django a chunked body as an empty one: say so, not "image required".
            return _json(411, "A request body needs a Content-Length header; chunked bodies are not read.")
        if not request.path_info.endswith("/") and not _resolves(request.path_info) and _resolves(request.path_info + "/"):
            location = request.path + "/"  # the API reads no query string
            body = json.dumps({"message": f"This endpoint's URL ends with a slash: {location}", "extra": {}})
            return HttpResponsePermanentRedirect(location, preserve_request=True, content=body, content_type="application/json")
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            if response.status_code == 404:
                return _json(404, f"No API endpoint at {request.path}.")
            try:
                message = f"{HTTPStatus(response.status_code).phrase}."
            except ValueError:
                message = "Error."
            converted = _json(response.status_code, message)
            for header in ("Allow", "Retry-After"):
                if header in response:
                    converted[header] = response[header]
            return converted
        return response

    def process_exception(self, request, exception):
        if not request.path_info.startswith(self.PREFIX):
            return None
        if disk_full_caught(exception):
            return _json(507, DISK_FULL_ANSWER)
        if isinstance(exception, (OperationalError, InterfaceError)):
            # The database went away outside a view's own handler: still a 503 to retry, not a 500.
            logger.warning("database unavailable: %s", exception)
            response = _json(503, "The database is busy; try again in a few seconds.")
            response["Retry-After"] = "5"
            return response
        logger.exception("unexpected error in %s %s", request.method, request.path, exc_info=exception)
        return _json(500, "Internal server error.")


def _json(code: int, message: str) -> JsonResponse:
    return JsonResponse({"message": message, "extra": {}}, status=code)


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


class DocumentCSPMiddleware(CSPMiddleware):
    """django-csp's Content-Security-Policy, on the answers a browser renders as a page (HTML).

    A policy governs what a document may load and run; a JSON answer loads nothing, and
    django-csp builds the header afresh for every answer (about 0.1 ms, a twentieth of a guess)."""

    def process_response(self, request, response):
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        return super().process_response(request, response)


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, quiet about a STATIC_ROOT that does not exist yet.

    Importing settings makes no folder, so STATIC_ROOT exists only after collectstatic; with
    WHITENOISE_USE_FINDERS the files are served from the apps' static folders until then, and
    WhiteNoise's "No directory at" warning says nothing new. Only that case is skipped: any
    other missing folder still warns, and no warning is filtered for the rest of the process."""

    def add_files(self, root, prefix=None):
        if self.use_finders and not self.autorefresh and root == self.static_root and not os.path.isdir(root):
            return
        super().add_files(root, prefix)
