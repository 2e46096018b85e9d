"""The review queue in the admin: a page that walks the unreviewed corrections one at a time or
as a grid, driven by keys, and the small JSON endpoints it calls. The order is
feedback.selectors.review_queue's; every write goes through feedback.services.

Views here, not in admin.py, so the sample admin stays a list and a form; SampleAdmin.get_urls
mounts them under /admin/feedback/sample/review/."""

import io
import json

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from feedback.models import Sample
from feedback.selectors import UNREVIEWED, ReviewGroup, review_queue, samples_for_review
from feedback.services import sample_relabel, sample_review, sample_review_undo
from recognizer.labels import NOT_A_DIGIT, label_text
from recognizer.preprocessing import to_data_url, to_png
from recognizer.services import SURE_THRESHOLD

SAMPLES_PER_REQUEST = 50  # the page asks for the next few dozen drawings ahead of the reviewer
GROUP_MOST = 5000  # ids one group decision may name
DECISIONS = {"approve": Sample.Status.APPROVED, "reject": Sample.Status.REJECTED}


def short_source(source: str) -> str:
    # "anon:" and 8 of its 32 hex digits tell senders apart on one screen.
    if not source:
        return "unknown (made by a command)"
    return source if len(source) <= 13 else f"{source[:13]}…"


def drawing_size(png: bytes) -> tuple[int, int]:
    """A stored drawing's width and height (cropped to its ink, so any aspect), from its header alone."""
    with Image.open(io.BytesIO(png)) as header:
        return header.size


def _refusal(message: str, status: int) -> JsonResponse:
    return JsonResponse({"message": message}, status=status)


def _reviewer_refusal(modeladmin, request: HttpRequest) -> JsonResponse | None:
    """A JSON 403 unless a signed-in staff member who may change samples asks: the endpoints
    answer the page's fetches, which a login page's redirect would only confuse."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return _refusal("Sign in to the admin as staff to review samples.", 403)
    if not modeladmin.has_change_permission(request):
        return _refusal("Reviewing needs the permission to change samples (feedback.change_sample).", 403)
    return None


def _csrf_refused(request: HttpRequest) -> bool:
    # Django's own check, run here so that a refusal is answered in JSON like every other error.
    check = CsrfViewMiddleware(lambda _: None)
    check.process_request(request)
    return check.process_view(request, None, (), {}) is not None


def group_reasons(group: ReviewGroup) -> list[str]:
    """Why a group comes where it does in the queue, in a reviewer's words."""
    size = len(group.sample_ids)
    reasons = []
    if group.held:
        reasons.append(f"{group.held} held as a burst")
    if group.sure:
        reasons.append(f"the model was sure of {group.sure} of {size}")
    if size > 1 and group.source:
        reasons.append(f"{size} alike from one source")
    if group.pair_sources > 1:
        reasons.append(f"{group.pair_sources} sources sent this pair ({group.pair_count} in all)")
    return reasons or ["nothing unusual"]


def _group_json(group: ReviewGroup) -> dict:
    return {
        "guess": group.guess, "label": group.label, "source": group.source, "source_short": short_source(group.source),
        "ids": list(group.sample_ids), "held": group.held, "sure": group.sure,
        "pair_sources": group.pair_sources, "pair_count": group.pair_count, "reasons": group_reasons(group),
    }  # fmt: skip


def _sample_json(sample: Sample) -> dict:
    drawing = bytes(sample.drawing)
    width, height = drawing_size(drawing)
    return {
        "id": sample.pk, "guess": sample.guess, "label": sample.label, "confidence": sample.confidence,
        "sure": sample.confidence >= SURE_THRESHOLD, "status": sample.status, "source": sample.source,
        "source_short": short_source(sample.source), "model_version": sample.model_version,
        "created": timezone.localtime(sample.created_at).strftime("%Y-%m-%d %H:%M"),
        "drawing": to_data_url(drawing), "drawing_width": width, "drawing_height": height,
        # What training reads: the strokes drawn again with today's preprocessing.
        "input": to_data_url(to_png(sample.input_array())),
    }  # fmt: skip


def review_page(modeladmin, request: HttpRequest):
    """The queue's page. Its data comes from the endpoints below, a few drawings ahead."""
    if not modeladmin.has_change_permission(request):
        raise PermissionDenied
    name = f"{modeladmin.admin_site.name}:feedback_sample"
    config = {
        "queue_url": reverse(f"{name}_review_queue"),
        "samples_url": reverse(f"{name}_review_samples"),
        "decide_url": reverse(f"{name}_review_decide"),
        "change_url": reverse(f"{name}_change", args=[0]).replace("/0/", "/{id}/"),
        "not_a_digit": NOT_A_DIGIT,
        "labels": {label: label_text(label) for label in [*range(10), NOT_A_DIGIT]},
    }
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.opts,
        "title": "Review queue",
        "config": config,
        "digits": range(10),
        "is_nav_sidebar_enabled": False,  # the queue needs the width on a laptop
    }
    return TemplateResponse(request, "admin/feedback/sample/review.html", context)


def review_queue_data(modeladmin, request: HttpRequest) -> JsonResponse:
    """GET: the waiting corrections' ids, grouped and ordered, with why each group is where it is."""
    if refusal := _reviewer_refusal(modeladmin, request):
        return refusal
    if request.method != "GET":
        return _refusal("Use GET.", 405)
    groups = review_queue()
    return JsonResponse({"groups": [_group_json(group) for group in groups], "count": sum(len(g.sample_ids) for g in groups)})


def review_samples_data(modeladmin, request: HttpRequest) -> JsonResponse:
    """GET ?ids=1,2,3: those samples' drawings (at their own size) and 28x28 inputs."""
    if refusal := _reviewer_refusal(modeladmin, request):
        return refusal
    if request.method != "GET":
        return _refusal("Use GET.", 405)
    raw = [part for part in request.GET.get("ids", "").split(",") if part]
    if not raw or not all(part.isdigit() for part in raw):
        return _refusal("ids must be sample ids separated by commas, e.g. ?ids=4,8,15", 400)
    if len(raw) > SAMPLES_PER_REQUEST:
        return _refusal(f"at most {SAMPLES_PER_REQUEST} ids at a time", 400)
    samples = samples_for_review(ids=[int(part) for part in raw])
    return JsonResponse({"samples": [_sample_json(sample) for sample in samples]})


def _body(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise ValidationError('the body must be a JSON object, e.g. {"id": 12, "decision": "approve"}')
    return body


def _whole(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be a whole number")
    return value


def review_decide(modeladmin, request: HttpRequest) -> JsonResponse:
    """POST one decision, as JSON:

    - `{"id": 12, "decision": "approve" | "reject"}`;
    - `{"id": 12, "decision": "relabel", "label": 7}` (relabelled samples are approved);
    - `{"id": 12, "decision": "undo", "label": 1, "status": "new"}`: back as it was;
    - `{"ids": [12, 13], "decision": "approve" | "reject"}`: a group, those of them still waiting.

    Answers the sample's `id`, `label` and `status`, or a group's `count`; bad input is a 4xx
    with `{"message": ...}`."""
    if refusal := _reviewer_refusal(modeladmin, request):
        return refusal
    if request.method != "POST":
        return _refusal("Use POST.", 405)
    if _csrf_refused(request):
        return _refusal("CSRF check failed: reload the page and try again.", 403)
    try:
        body = _body(request)
        decision = body.get("decision")
        if "ids" in body:
            return _decide_group(body["ids"], decision)
        sample_id = _whole(body.get("id"), "id")
        if not Sample.objects.filter(pk=sample_id).exists():
            return _refusal(f"there is no sample {sample_id}", 404)
        if decision in DECISIONS:
            sample_review(samples=Sample.objects.filter(pk=sample_id).only("id"), status=DECISIONS[decision])
        elif decision == "relabel":
            sample_relabel(samples=Sample.objects.filter(pk=sample_id).only("id"), label=_whole(body.get("label"), "label"))
        elif decision == "undo":
            sample_review_undo(sample_id=sample_id, status=body.get("status"), label=_whole(body.get("label"), "label"))
        else:
            raise ValidationError("decision must be approve, reject, relabel or undo")
    except ValidationError as error:
        return _refusal(" ".join(error.messages), 400)
    sample = Sample.objects.only("id", "label", "status").get(pk=sample_id)
    return JsonResponse({"id": sample.pk, "label": sample.label, "status": sample.status})


def _decide_group(ids, decision) -> JsonResponse:
    if decision not in DECISIONS:
        raise ValidationError("a group's decision must be approve or reject")
    if not isinstance(ids, list) or not ids or len(ids) > GROUP_MOST:
        raise ValidationError(f"ids must be a list of 1 to {GROUP_MOST} sample ids")
    ids = [_whole(value, "each id") for value in ids]
    # Only the ones still waiting: a sample decided on its own keeps that decision.
    waiting = Sample.objects.filter(pk__in=ids, status__in=UNREVIEWED).only("id")
    count = sample_review(samples=waiting, status=DECISIONS[decision])
    return JsonResponse({"count": count, "status": DECISIONS[decision]})
