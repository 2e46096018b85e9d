"""The samples' pages in the admin: the list (filters, search, bulk actions), a sample's page, and
the review queue's URLs (feedback.review). Read top to bottom: what the list's class needs when
it is defined (the relabel actions, the filters), the class, then the pictures it draws.
Nothing here knows of training: the training app registers its own subclass (training.admin.samples)."""

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import F, Q
from django.http import StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from feedback.models import Sample
from feedback.review import drawing_size, review_decide, review_page, review_queue_data, review_samples_data, short_source
from feedback.selectors import sample_export_zip, samples_from_source, sources_busiest
from feedback.services import sample_reject_sources, sample_relabel, sample_review
from recognizer.labels import label_text
from recognizer.preprocessing import to_data_url, to_png

SOURCE_PREFIXES = ("user:", "anon:")
SOURCE_SAMPLES_LISTED = 20


def relabel_action(label: int):
    """A bulk action "Relabel as <label>": one per digit, so relabelling is one pick in the list."""

    @admin.action(description=f"Relabel as {label} (and approve)", permissions=["change"])
    def relabel(modeladmin, request, queryset):
        count = sample_relabel(samples=queryset, label=label)
        modeladmin.message_user(request, f"{count} sample(s) relabelled as {label} and approved.", messages.SUCCESS)

    relabel.__name__ = f"relabel_{label}"
    return relabel


class GuessFilter(admin.SimpleListFilter):
    """Corrections (the person said another digit than the model) are what a reviewer checks first."""

    title = "the model's guess"
    parameter_name = "guess_was"

    def lookups(self, request, model_admin):
        return [("wrong", "wrong: corrections only"), ("right", "right: confirmed guesses")]

    def queryset(self, request, queryset):
        if self.value() == "wrong":
            return queryset.exclude(label=F("guess"))
        if self.value() == "right":
            return queryset.filter(label=F("guess"))
        return queryset


class SourceFilter(admin.SimpleListFilter):
    """One sender's samples. Sources are many, so the list offers the busiest few; any other is
    reached from a sample's source column or page (?source=...)."""

    title = "source"
    parameter_name = "source"
    UNKNOWN = "unknown"  # the "" source: samples made by a command

    def lookups(self, request, model_admin):
        busiest = [(source, f"{short_source(source)} ({count})") for source, count in sources_busiest(limit=10)]
        chosen = self.value()
        if chosen and chosen != self.UNKNOWN and chosen not in dict(busiest):
            busiest.insert(0, (chosen, short_source(chosen)))
        return [*busiest, (self.UNKNOWN, "unknown (made by a command)")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(source="" if self.value() == self.UNKNOWN else self.value())


@admin.register(Sample)
class SampleAdmin(admin.ModelAdmin):
    # Narrow enough for a 1280 px screen beside the filters: the guess shares the label's column.
    list_display = [
        "thumbnail", "input_thumbnail", "id", "label_and_guess", "confidence_percent", "status", "source_link",
        "model_version", "created",
    ]  # fmt: skip
    list_display_links = ["thumbnail", "id"]
    list_filter = [GuessFilter, "status", SourceFilter, "label", "guess", "model_version", "created_at"]
    # What a reviewer types is a sample's number or a digit: "3" finds sample 3 and the samples
    # labelled 3, not every sample whose model version has a 3 in it (filter by version instead).
    # A source is found by its start, as the source column shows it.
    search_fields = ["=id", "=label"]
    search_help_text = (
        "A sample's id, a label (one digit), or a source's start (user:<id>, anon:1a2b...). "
        "Filter by guess, status (needs review: a burst), source or model version on the right."
    )
    list_per_page = 50
    date_hierarchy = "created_at"
    # Every action names the permissions it needs (a view-only user is offered none of them).
    actions = ["approve", "reject", "reject_sources", "export", *(relabel_action(label) for label in range(10))]
    fields = [
        "drawing_large", "model_input_large", "strokes_summary", "label", "answer_changed", "guess", "confidence_percent",
        "status", "model_version", "created_at", "reviewed_at", "client_id", "source", "user", "source_samples",
    ]  # fmt: skip
    readonly_fields = [
        "drawing_large", "model_input_large", "strokes_summary", "answer_changed", "guess", "confidence_percent",
        "model_version", "created_at", "reviewed_at", "client_id", "source", "user", "source_samples",
    ]  # fmt: skip

    class Media:
        css = {"all": ["feedback/admin.css"]}

    def has_add_permission(self, request) -> bool:
        return False  # samples come from people drawing on the site

    def has_export_permission(self, request) -> bool:
        """Exporting takes every selected drawing away: feedback.export_sample, beyond viewing."""
        return request.user.has_perm(f"{self.opts.app_label}.export_sample")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("strokes")

    def get_urls(self):
        view = self.admin_site.admin_view

        def json_view(handler):
            # The JSON endpoints check the reviewer and CSRF themselves, to answer in JSON, not
            # with a login page or an HTML 403.
            return csrf_exempt(never_cache(lambda request: handler(self, request)))

        return [
            path("review/", view(lambda request: review_page(self, request)), name="feedback_sample_review"),
            path("review/queue/", json_view(review_queue_data), name="feedback_sample_review_queue"),
            path("review/samples/", json_view(review_samples_data), name="feedback_sample_review_samples"),
            path("review/decide/", json_view(review_decide), name="feedback_sample_review_decide"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        # The site's navigation column would leave the list too little room at 1280 px; the
        # breadcrumbs lead back.
        extra = {"is_nav_sidebar_enabled": False, "can_review": self.has_change_permission(request)}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def get_search_results(self, request, queryset, search_term):
        terms = search_term.split()
        sources = [term for term in terms if term.startswith(SOURCE_PREFIXES)]
        if sources and len(sources) == len(terms):
            return queryset.filter(Q(*(Q(source__startswith=term) for term in sources), _connector=Q.OR)), False
        # Only whole numbers can be an id or a label; anything else matches nothing (not everything).
        if terms and not all(term.isdigit() for term in terms):
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="drawing")
    def thumbnail(self, sample):
        return _drawing(sample, 48, f"drawing {sample.pk}")

    @admin.display(description="28x28")
    def input_thumbnail(self, sample):
        # The input the model read when it guessed (a small drawing looks blank at 48 px; this does not).
        return _image(to_data_url(to_png(sample.stored_input())), 42, f"input {sample.pk}", pixelated=True)

    @admin.display(description="label (guess)", ordering="label")
    def label_and_guess(self, sample):
        label, guess = label_text(sample.label), label_text(sample.guess)
        if sample.is_correction:
            shown = format_html('<span class="sample-correction">{} ✗ guessed {}</span>', label, guess)
        else:
            shown = format_html('<span class="sample-confirmed">{} ✓ guessed right</span>', label)
        if sample.first_label is None:
            return shown
        # The sender changed its answer after saving it: a reviewer weighs a second thought.
        return format_html('{} <span class="sample-changed">(changed from {})</span>', shown, label_text(sample.first_label))

    @admin.display(description="answer changed")
    def answer_changed(self, sample):
        if sample.first_label is None:
            return "no"
        when = timezone.localtime(sample.changed_at).strftime("%Y-%m-%d %H:%M:%S") if sample.changed_at else "?"
        return f"by its sender, from {label_text(sample.first_label)} to {label_text(sample.label)} (last change {when})"

    @admin.display(description="created", ordering="created_at")
    def created(self, sample):
        return timezone.localtime(sample.created_at).strftime("%Y-%m-%d %H:%M")

    def _changelist_url(self, **query) -> str:
        url = reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist")
        return f"{url}?{urlencode(query)}" if query else url

    @admin.display(description="source", ordering="source")
    def source_link(self, sample):
        if not sample.source:
            return "unknown"
        return format_html(
            '<a href="{}" title="{}">{}</a>', self._changelist_url(source=sample.source), sample.source, short_source(sample.source)
        )

    @admin.display(description="the source's other samples")
    def source_samples(self, sample):
        if not sample.source:
            return "unknown source (made by a command, not sent through the site)"
        others = samples_from_source(source=sample.source).exclude(pk=sample.pk)
        count = others.count()
        if not count:
            return "none"
        change = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change"
        listed = format_html_join(
            ", ",
            '<a href="{}">#{} ({} guessed {}, {})</a>',
            (
                (reverse(change, args=[other.pk]), other.pk, other.label, other.guess, other.get_status_display())
                for other in others.only("id", "label", "guess", "status")[:SOURCE_SAMPLES_LISTED]
            ),
        )
        more = " …" if count > SOURCE_SAMPLES_LISTED else ""
        return format_html(
            '{} other sample(s): {}{} <a href="{}">all of this source\'s samples</a>',
            count, listed, more, self._changelist_url(source=sample.source),
        )  # fmt: skip

    @admin.display(description="drawing")
    def drawing_large(self, sample):
        return _drawing(sample, 320, "the drawing as submitted")

    @admin.display(description="sent as")
    def strokes_summary(self, sample):
        if not sample.strokes:
            return "an image"
        points = sum(len(stroke) for stroke in sample.strokes)
        return f"strokes: {len(sample.strokes)} stroke(s), {points} points (the input above is drawn from them)"

    @admin.display(description="what the model saw (28x28)")
    def model_input_large(self, sample):
        return _image(to_data_url(to_png(sample.input_array())), 224, "the 28x28 model input", pixelated=True)

    @admin.display(description="confidence", ordering="confidence")
    def confidence_percent(self, sample):
        return f"{sample.confidence * 100:.1f}%"

    @admin.action(description="Approve selected samples", permissions=["change"])
    def approve(self, request, queryset):
        count = sample_review(samples=queryset, status=Sample.Status.APPROVED)
        self.message_user(request, f"{count} sample(s) approved.", messages.SUCCESS)

    @admin.action(description="Reject selected samples (never trained on)", permissions=["change"])
    def reject(self, request, queryset):
        count = sample_review(samples=queryset, status=Sample.Status.REJECTED)
        self.message_user(request, f"{count} sample(s) rejected.", messages.SUCCESS)

    @admin.action(description="Reject every sample from the selected samples' sources", permissions=["change"])
    def reject_sources(self, request, queryset):
        sources = set(queryset.values_list("source", flat=True))
        count = sample_reject_sources(sources=sources)
        unknown = " Samples of unknown source were left alone." if "" in sources else ""
        self.message_user(
            request, f"{count} sample(s) rejected from {len(sources - {''})} source(s).{unknown}", messages.SUCCESS
        )

    @admin.action(description="Export selected samples as a dataset (zip: CSV and PNGs)", permissions=["export"])
    def export(self, request, queryset):
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(sample_export_zip(samples=queryset), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="digitsite-samples-{stamp}.zip"'
        return response

    def save_model(self, request, obj, form, change):
        # Editing a label or status by hand goes through the same services as the bulk actions.
        if change and "label" in form.changed_data:
            sample_relabel(samples=[obj], label=obj.label)
        if change and "status" in form.changed_data:
            sample_review(samples=[obj], status=obj.status)
        obj.refresh_from_db()


# -- the pictures in the list and on a sample's page -------------------------------------------


def _image(data_url: str, size: int, alt: str, pixelated: bool = False, aspect: tuple[int, int] = (1, 1)) -> str:
    # Sizes as attributes and looks in feedback/admin.css: no inline style, which a
    # Content-Security-Policy may forbid. A drawing keeps its own aspect, scaled to fit the
    # size-by-size box: forced square, a tall thin 1 became a black block.
    width, height = _fit(aspect, size)
    classes = "sample-image pixelated" if pixelated else "sample-image"
    return format_html('<img src="{}" alt="{}" width="{}" height="{}" class="{}">', data_url, alt, width, height, classes)


def _fit(aspect: tuple[int, int], size: int) -> tuple[int, int]:
    width, height = aspect
    scale = size / max(width, height, 1)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _drawing(sample: Sample, size: int, alt: str) -> str:
    png = bytes(sample.drawing)
    return _image(to_data_url(png), size, alt, aspect=drawing_size(png))
