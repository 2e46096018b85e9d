"""Who a request comes from, by one rule for the API's rate limits, the admin's login lockout
(django-axes) and /metrics' allowed addresses.

The rule is DRF's own (the throttles call it): with DIGITSITE_NUM_PROXIES=0 (the default) the
client is the socket's address and X-Forwarded-For is ignored, so a forged header buys nothing;
with N trusted proxies in front, the client is the address the outermost of them saw, N places
from the right of X-Forwarded-For. Calling DRF here, not copying it, keeps the three in step.
"""

import functools

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.crypto import salted_hmac
from rest_framework.throttling import BaseThrottle

_RULE = BaseThrottle()
SOURCE_KEY_SALT = "digitsite.feedback.source"


def client_address(request: HttpRequest) -> str:
    """The client's address as the rate limits count it (REST_FRAMEWORK["NUM_PROXIES"])."""
    return _RULE.get_ident(request)


def client_source(request: HttpRequest, *, create: bool = True) -> str | None:
    """Who sent a request, as feedback.models.Sample.source records it: "user:<id>" for a
    signed-in user, else "anon:<32 hex>", a keyed hash (SECRET_KEY) of the client's address, by
    the rate limits' rule, and of its session. The address itself is never stored, and without
    the key the hash cannot be tied back to one.

    A request without a session gets one here, so a browser keeps one source from correction to
    correction; a client that drops its cookies gets a new source each time, which is why the
    limits on sources also count across all of them. With `create` False (a guess, which stores
    nothing) a request without a session makes none and has no source: None."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    session = request.session
    session.keys()  # loads it: a stale or forged cookie's key is dropped, not hashed
    if session.session_key is None:
        if not create:
            return None
        session.save()  # a new, empty session: the session middleware sends its cookie back
    return _anonymous_source(request, session_key=session.session_key)


def _anonymous_source(request: HttpRequest, *, session_key: str) -> str:
    return "anon:" + _keyed_hash(f"{client_address(request)}|{session_key}", settings.SECRET_KEY)


@functools.lru_cache(maxsize=4096)
def _keyed_hash(value: str, secret: str) -> str:
    # Kept per process: every guess of a browser with a memory asks for its source again.
    return salted_hmac(SOURCE_KEY_SALT, value, secret=secret, algorithm="sha256").hexdigest()[:32]


# A hint the browser keeps that it has corrections to remember (recognizer.memory): "anon", or
# "user" for a signed-in user. Not a credential: it only tells a guess where to look, and a
# forged one finds nothing. Without it a guess reads no session and no memory: it costs nothing.
MEMORY_HINT_COOKIE = "digitsite_memory"


def client_source_to_read(request: HttpRequest) -> str | None:
    """Whose corrections a request that stores nothing (a guess) may read: client_source's rule,
    asked only of a browser whose hint says it has some. For an anonymous one the source is
    made from its session cookie as sent, without reading the session: a key that is stale or
    forged names a source with nothing stored (sources are written only with keys the session
    store vouched for, by client_source), and one that is not is that browser's own session.
    A signed-in user's is read from the session (request.user), as client_source does."""
    hint = request.COOKIES.get(MEMORY_HINT_COOKIE)
    if hint == "user":
        return client_source(request, create=False)
    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if hint != "anon" or not key:
        return None
    return _anonymous_source(request, session_key=key)


def memory_hint_set(response: HttpResponse, *, source: str) -> None:
    """Tell the browser of `source` (client_source's) that it has corrections to remember, for
    as long as they count (MEMORY_HOURS)."""
    response.set_cookie(
        MEMORY_HINT_COOKIE,
        "user" if source.startswith("user:") else "anon",
        max_age=int(settings.MEMORY_HOURS * 3600),
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


def login_lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """What an address locked out of the admin's login sees (AXES_LOCKOUT_CALLABLE): a page
    saying when to try again, 429 with Retry-After."""
    from axes.helpers import get_cool_off
    from django.contrib import admin

    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else None
    minutes = max(1, round(seconds / 60)) if seconds else None
    context = {**admin.site.each_context(request), "title": "Too many failed logins", "minutes": minutes}
    body = render_to_string("digitsite/login_locked.html", context, request=request)
    response = HttpResponse(body, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
