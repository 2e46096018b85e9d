from datetime import datetime

from django.conf import settings
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.csrf import ensure_csrf_cookie

from digitsite.clients import client_source, memory_hint_set
from recognizer.memory import memory_on
from recognizer.preprocessing import PAGE_BRUSH
from recognizer.serving import active_model
from recognizer.servingform import ModelUnavailable


def model_summary() -> dict:
    """The serving model in words for the page: its version, when it was trained, and how much
    of MNIST's test set it reads right (the raw metadata is at /api/health/)."""
    try:
        described = active_model().describe()
    except ModelUnavailable as error:
        return {"available": False, "problem": str(error)}
    accuracy = described.get("mnist_test_accuracy")
    trained_at = described.get("trained_at")
    try:
        trained = datetime.fromisoformat(trained_at) if trained_at else None
    except (TypeError, ValueError):
        trained = None
    return {
        "available": True,
        "version": described["version"],
        "trained": trained,
        "accuracy": None if accuracy is None else f"{accuracy * 100:.2f}%",
    }


@ensure_csrf_cookie  # the page posts corrections with the CSRF token from this cookie
def index(request):
    # The pen's width comes from the server, so the page, the drawings kept for review and the
    # benchmarks draw with one brush.
    # How long the page offers to take its last answer back: the server's window, not a copy.
    change_seconds = int(settings.FEEDBACK_CHANGE_MINUTES * 60)
    response = render(request, "recognizer/index.html", {"model": model_summary(), "brush": PAGE_BRUSH, "change_seconds": change_seconds})
    if memory_on() and request.user.is_authenticated:  # a signed-in user's corrections count on every device
        memory_hint_set(response, source=client_source(request))
    return response


def favicon(request):
    # Browsers ask for /favicon.ico on every page, the admin's and the API docs' too, whatever
    # their <link rel=icon> says: sent to the one icon file, it is a 302 instead of a 404 each time.
    return redirect(static("recognizer/favicon.svg"))
