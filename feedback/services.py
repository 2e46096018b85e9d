from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from feedback.models import Sample
from recognizer.labels import NOT_A_DIGIT, NOT_A_DIGIT_LABEL
from recognizer.memory import memory_forget, memory_relabel, memory_remember
from recognizer.preprocessing import Strokes, drawing_png, drawing_to_png, strokes_compact, strokes_to_drawing
from recognizer.services import SURE_THRESHOLD, Prediction, digit_predict

# Reviewers correct samples in bulk on purpose: the daily cap is not for them.
DAILY_CAP_EXEMPT_PERMISSION = "feedback.change_sample"
DAILY_WINDOW = timedelta(hours=24)
RequestUser = AbstractBaseUser | AnonymousUser | None  # the request's user: signed in, or not

NOTHING_TO_LEARN = {
    "no_ink": "the drawing has no ink: draw a digit first",
    "too_small": "the drawing is too small to read: draw the digit bigger",
}


class AnswerUnknown(Exception):
    """No stored answer has this client_id (never stored, or taken back)."""


class AnswerFixed(Exception):
    """The answer can no longer be changed or taken back: too late, or a reviewer decided on it."""


class SourceOverDailyLimit(Exception):
    """The source stored its day's share of samples; `retry_after_s` until its oldest leaves the day."""

    def __init__(self, *, limit: int, retry_after_s: int):
        self.limit, self.retry_after_s = limit, retry_after_s
        super().__init__(
            f"Daily limit reached: at most {limit} corrections from one sender in 24 hours. Try again later."
        )


def sample_create(
    *,
    label: int,
    image: bytes | None = None,
    strokes: Strokes | None = None,
    client_id: UUID | None = None,
    source: str = "",
    user: RequestUser = None,
) -> Sample:
    """Store a drawing (strokes or an image) with its true label. The guess, its confidence and
    the model version are worked out here, by the server, not taken from the client. A guess
    the model was not sure of is stored all the same: those teach it the most.

    `source` and `user` say who sent it (digitsite.clients.client_source). Raises
    SourceOverDailyLimit past FEEDBACK_PER_SOURCE_DAILY; a burst's samples wait as needs_review."""
    sample, prediction = _sample_build(label=label, image=image, strokes=strokes, client_id=client_id, source=source, user=user)
    with transaction.atomic():
        _sample_save(sample=sample, prediction=prediction)
    return sample


def sample_source_check_daily_limit(*, source: str, user: RequestUser = None) -> None:
    """Raise SourceOverDailyLimit when `source` stored FEEDBACK_PER_SOURCE_DAILY samples in the
    last 24 hours. An unknown source (a command's) and reviewers are not limited."""
    limit = settings.FEEDBACK_PER_SOURCE_DAILY
    if limit <= 0 or not source or (user is not None and user.has_perm(DAILY_CAP_EXEMPT_PERMISSION)):
        return
    since = timezone.now() - DAILY_WINDOW
    # One indexed range read that stops at the limit, however many samples the source has.
    recent = list(
        Sample.objects.filter(source=source, created_at__gte=since)
        .order_by("created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(recent) >= limit:
        raise SourceOverDailyLimit(limit=limit, retry_after_s=_seconds_until(recent[0] + DAILY_WINDOW))


def _seconds_until(moment: datetime) -> int:
    return max(1, int((moment - timezone.now()).total_seconds()) + 1)


def sample_burst_check(*, sample: Sample) -> bool:
    """Quarantine a burst as `sample` arrives; True when `sample` belongs to one (it is then set
    to needs_review, not saved: the caller saves it).

    A burst is many corrections of one guess -> label pair that the model was sure of, within
    BURST_WINDOW_MINUTES, counting `sample`: BURST_PER_SOURCE from its source, or
    BURST_ALL_SOURCES from all sources together (a script that drops its cookies is a new
    source each time). Honest users rarely all correct one sure guess the same way at once;
    a poisoning script must. The burst's other samples still new wait for review too.

    Samples of unknown source are made by the site's operators (commands, benchmarks), not sent
    through the site: they are neither held nor counted."""
    if not sample.source or not sample.is_correction or sample.confidence < SURE_THRESHOLD:
        return False
    since = timezone.now() - timedelta(minutes=settings.BURST_WINDOW_MINUTES)
    pair = Sample.objects.filter(
        guess=sample.guess, label=sample.label, confidence__gte=SURE_THRESHOLD, created_at__gte=since
    ).exclude(source="")
    if sample.pk is not None:  # a changed answer: counted once, as `sample`
        pair = pair.exclude(pk=sample.pk)
    burst = None
    all_sources, per_source = settings.BURST_ALL_SOURCES, settings.BURST_PER_SOURCE
    # Counted only up to the threshold, so each check costs the same however big a burst grows.
    if all_sources > 0 and _count_up_to(pair, all_sources - 1) + 1 >= all_sources:
        burst = pair
    elif per_source > 0:
        from_source = pair.filter(source=sample.source)
        if _count_up_to(from_source, per_source - 1) + 1 >= per_source:
            burst = from_source
    if burst is None:
        return False
    burst.filter(status=Sample.Status.NEW).update(status=Sample.Status.NEEDS_REVIEW)
    if sample.status == Sample.Status.NEW:
        sample.status = Sample.Status.NEEDS_REVIEW
    return True


def _count_up_to(samples, most: int) -> int:
    return len(samples.order_by().values_list("pk", flat=True)[:most]) if most > 0 else 0


def _sample_save(*, sample: Sample, prediction: Prediction) -> None:
    """Check the daily cap and bursts, then save: inside the caller's transaction, so that a
    sample and the burst it completes are quarantined together. A correction is remembered for
    its sender's next guesses at once (recognizer.memory; a burst's too: it changes only the
    sender's own answers)."""
    sample_source_check_daily_limit(source=sample.source, user=sample.user)
    sample_burst_check(sample=sample)
    sample.save()
    memory_remember(
        source=sample.source,
        sample_id=sample.pk,
        label=sample.label,
        guess=sample.guess,
        model_input=prediction.model_input,
        features=prediction.features,
        made_by=prediction.features_of,
    )


def _sample_build(
    *,
    label: int,
    image: bytes | None,
    strokes: Strokes | None,
    client_id: UUID | None,
    source: str = "",
    user: RequestUser = None,
) -> tuple[Sample, Prediction]:
    """The sample to store, checked but not saved, and the net's answer it records: reading and
    guessing the drawing takes a millisecond or two, which must not happen while a transaction
    holds the database's write lock."""
    _label_check(label=label)
    prediction = digit_predict(image=image, strokes=strokes)  # also rejects anything that is not an image
    if prediction.digit is not None:
        guess = prediction.digit
    elif prediction.reason == NOT_A_DIGIT_LABEL:  # the model read it, and it is no digit
        guess = NOT_A_DIGIT
    else:
        field = "strokes" if strokes is not None else "image"
        raise ValidationError({field: NOTHING_TO_LEARN[prediction.reason]})
    if strokes is not None:
        drawing = drawing_to_png(strokes_to_drawing(strokes))
    else:
        drawing = drawing_png(image)  # what the drawing is, never the client's bytes
    sample = Sample(
        drawing=drawing,
        strokes=None if strokes is None else strokes_compact(strokes),
        model_input=prediction.model_input.tobytes(),
        label=label,
        guess=guess,
        confidence=prediction.confidence,
        model_version=prediction.model,
        client_id=client_id,
        source=source,
        user=user if user is not None and user.is_authenticated else None,
    )
    sample.full_clean(validate_unique=False)  # client_id's uniqueness is the database's to keep
    return sample, prediction


def _label_check(*, label: int) -> None:
    if not 0 <= label <= NOT_A_DIGIT:
        raise ValidationError({"label": f'label must be a digit from 0 to 9, or "{NOT_A_DIGIT_LABEL}"'})


def sample_answer_changeable_until(*, sample: Sample) -> datetime:
    """Until when the sender may change or take back this answer (FEEDBACK_CHANGE_MINUTES)."""
    return sample.created_at + timedelta(minutes=settings.FEEDBACK_CHANGE_MINUTES)


def _sample_answer_locked(*, client_id: UUID) -> Sample:
    """The sample sent with `client_id`, inside the caller's transaction, if its sender may still
    change it: within FEEDBACK_CHANGE_MINUTES of storing it, and before any reviewer decided."""
    sample = Sample.objects.select_for_update().filter(client_id=client_id).first()
    if sample is None:
        raise AnswerUnknown("No answer was stored with this client_id (or it was taken back).")
    if sample.status in (Sample.Status.APPROVED, Sample.Status.REJECTED):
        raise AnswerFixed("A reviewer has already checked this answer: it can no longer be changed.")
    if timezone.now() > sample_answer_changeable_until(sample=sample):
        minutes = settings.FEEDBACK_CHANGE_MINUTES
        raise AnswerFixed(f"Too late: an answer can be changed for {minutes:g} minutes after it is saved.")
    return sample


def sample_answer_change(*, client_id: UUID, label: int) -> Sample:
    """The sender changes its answer: the drawing is the same, the label is `label`. The first
    label is kept for the reviewer. Raises AnswerUnknown, or AnswerFixed when too late.

    No new sample is stored, so the daily cap is not asked again; the burst check is, for the
    new guess -> label pair (confirmations changed into sure corrections, many at once, are a
    burst like any other). A sample held for review stays held: a change never lets one out."""
    _label_check(label=label)
    with transaction.atomic():
        sample = _sample_answer_locked(client_id=client_id)
        if label == sample.label:
            return sample
        if sample.first_label is None:
            sample.first_label = sample.label
        sample.label = label
        sample.changed_at = timezone.now()
        sample_burst_check(sample=sample)
        sample.save(update_fields=["label", "first_label", "changed_at", "status"])
        memory_relabel(source=sample.source, sample_id=sample.pk, label=label, guess=sample.guess, model_input=sample.stored_input())
    return sample


def sample_answer_withdraw(*, client_id: UUID) -> None:
    """The sender takes its answer back: the sample is deleted, as if never sent, so it counts
    toward neither the sender's daily cap nor any burst from now on (samples a burst it was part
    of put on hold stay on hold). Raises AnswerUnknown, or AnswerFixed when too late."""
    with transaction.atomic():
        sample = _sample_answer_locked(client_id=client_id)
        memory_forget(sample_ids=[sample.pk])
        sample.delete()


def sample_create_once(
    *,
    client_id: UUID | None,
    label: int,
    image: bytes | None = None,
    strokes: Strokes | None = None,
    source: str = "",
    user: RequestUser = None,
) -> tuple[Sample, bool]:
    """Store a correction once however often it is sent: a client that did not hear the answer
    sends it again with the same client_id, and gets the sample stored the first time.
    Returns (sample, created). Without a client_id every call stores a new sample.
    `source`, `user`, the daily cap and bursts as for sample_create; a retry of a stored
    sample is answered even past the cap (nothing new is stored)."""
    if client_id is not None:
        existing = Sample.objects.filter(client_id=client_id).first()
        if existing is not None:
            return existing, False
    sample, prediction = _sample_build(label=label, image=image, strokes=strokes, client_id=client_id, source=source, user=user)
    try:
        with transaction.atomic():  # a savepoint: a duplicate leaves any outer transaction usable
            _sample_save(sample=sample, prediction=prediction)
        return sample, True
    except IntegrityError:
        if client_id is None:
            raise
        # The same correction arrived twice at once, and the other request stored it first.
        return Sample.objects.get(client_id=client_id), False


@transaction.atomic
def sample_review(*, samples: Iterable[Sample], status: str) -> int:
    """Approve or reject samples (or set them back to new or needs review). Returns how many changed.
    An approved sample is trained on whatever it was before, a burst's too."""
    if status not in Sample.Status.values:
        raise ValidationError({"status": f"status must be one of {', '.join(Sample.Status.values)}"})
    ids = [sample.pk for sample in samples]
    reviewed_at = None if status in (Sample.Status.NEW, Sample.Status.NEEDS_REVIEW) else timezone.now()
    if status == Sample.Status.REJECTED:
        memory_forget(sample_ids=ids)  # a rejected answer no longer answers its sender's guesses either
    return Sample.objects.filter(pk__in=ids).exclude(status=status).update(status=status, reviewed_at=reviewed_at)


@transaction.atomic
def sample_review_undo(*, sample_id: int, status: str, label: int) -> Sample:
    """Put a sample back as it was before a reviewer decided on it (the review queue's Back):
    its label and its unreviewed status, new or needs_review; anything else is refused."""
    if status not in (Sample.Status.NEW, Sample.Status.NEEDS_REVIEW):
        raise ValidationError({"status": "a sample goes back to new or needs_review only"})
    Sample._meta.get_field("label").run_validators(label)  # the model's own rule, whatever labels it allows
    sample = Sample.objects.select_for_update().get(pk=sample_id)
    sample.label, sample.status, sample.reviewed_at = label, status, None
    sample.save(update_fields=["label", "status", "reviewed_at"])
    return sample


@transaction.atomic
def sample_reject_sources(*, sources: Iterable[str]) -> int:
    """Reject every sample these sources sent: a sender caught poisoning is distrusted whole,
    not only in the samples a reviewer happened to see. The unknown source "" (samples made by
    commands) is never rejected this way. Returns how many changed."""
    sources = set(sources) - {""}
    memory_forget(sources=sources)
    return (
        Sample.objects.filter(source__in=sources)
        .exclude(status=Sample.Status.REJECTED)
        .update(status=Sample.Status.REJECTED, reviewed_at=timezone.now())
    )


@transaction.atomic
def sample_relabel(*, samples: Iterable[Sample], label: int) -> int:
    """Correct the label of samples; a relabelled sample counts as reviewed and approved."""
    _label_check(label=label)
    ids = [sample.pk for sample in samples]
    return Sample.objects.filter(pk__in=ids).update(
        label=label, status=Sample.Status.APPROVED, reviewed_at=timezone.now()
    )


PRUNE_REJECTED_DAYS = 30
PRUNE_UNREVIEWED_DAYS = 180


def samples_prune(*, rejected_days: int, unreviewed_days: int, dry_run: bool) -> dict[str, int]:
    """Delete rejected samples older than `rejected_days` and unreviewed ones (every status but
    approved and rejected: new, and any other a later version adds) older than
    `unreviewed_days`. Approved samples are never deleted. Returns how many, by status; with
    `dry_run` only counts.

    A sample a training run used is deleted all the same: the run's record keeps its counts and
    report, and only its link to that sample goes. Samples still unreviewed or rejected after
    this long are not what training should lean on, and keeping them for a run's sake would let
    the table grow without end."""
    if rejected_days < 0 or unreviewed_days < 0:
        raise ValidationError("days must be 0 or more")
    now = timezone.now()
    unreviewed = [s for s in Sample.Status.values if s not in (Sample.Status.APPROVED, Sample.Status.REJECTED)]
    stale = Sample.objects.filter(
        Q(status=Sample.Status.REJECTED, created_at__lt=now - timedelta(days=rejected_days))
        | Q(status__in=unreviewed, created_at__lt=now - timedelta(days=unreviewed_days))
    )
    counts = {row["status"]: row["n"] for row in stale.order_by().values("status").annotate(n=Count("id"))}
    if not dry_run and counts:
        with transaction.atomic():
            stale.delete()
    return counts
