from django.contrib import admin, messages
from django.utils.html import format_html

from feedback.models import Sample
from feedback.services import sample_relabel, sample_review
from recognizer.preprocessing import to_data_url, to_png


def _image(data_url: str, size: int, alt: str, pixelated: bool = False) -> str:
    style = f"width:{size}px;height:{size}px;border:1px solid #ccc;background:#fff;"
    if pixelated:
        style += "image-rendering:pixelated;"
    return format_html('<img src="{}" alt="{}" style="{}">', data_url, alt, style)


def relabel_action(label: int):
    """A bulk action "Relabel as <label>": one per digit, so relabelling is one pick in the list."""

    @admin.action(description=f"Relabel as {label} (and approve)")
    def relabel(modeladmin, request, queryset):
        count = sample_relabel(samples=queryset, label=label)
        modeladmin.message_user(request, f"{count} sample(s) relabelled as {label} and approved.", messages.SUCCESS)

    relabel.__name__ = f"relabel_{label}"
    return relabel


@admin.register(Sample)
class SampleAdmin(admin.ModelAdmin):
    list_display = ["thumbnail", "id", "label", "guess", "confidence_percent", "status", "model_version", "created_at"]
    list_display_links = ["thumbnail", "id"]
    list_filter = ["status", "label", "guess", "model_version", "created_at"]
    search_fields = ["=id", "=label", "=guess", "model_version"]
    list_per_page = 50
    date_hierarchy = "created_at"
    actions = ["approve", "approve_and_retrain", "reject", *(relabel_action(label) for label in range(10))]
    fields = [
        "drawing_large", "model_input_large", "strokes_summary", "label", "guess", "confidence_percent",
        "status", "model_version", "created_at", "reviewed_at", "used_by",
    ]  # fmt: skip
    readonly_fields = [
        "drawing_large", "model_input_large", "strokes_summary", "guess", "confidence_percent",
        "model_version", "created_at", "reviewed_at", "used_by",
    ]  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return False  # samples come from people drawing on the site

    def get_queryset(self, request):
        return super().get_queryset(request).defer("model_input", "strokes")

    @admin.display(description="drawing")
    def thumbnail(self, sample):
        return _image(to_data_url(bytes(sample.drawing)), 48, f"drawing {sample.pk}")

    @admin.display(description="drawing")
    def drawing_large(self, sample):
        return _image(to_data_url(bytes(sample.drawing)), 320, "the drawing as submitted")

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

    @admin.display(description="used by training runs")
    def used_by(self, sample):
        runs = sample.training_runs.order_by("-started_at")
        return ", ".join(f"#{run.pk} ({run.model_version or run.status})" for run in runs) or "none yet"

    @admin.action(description="Approve selected samples")
    def approve(self, request, queryset):
        count = sample_review(samples=queryset, status=Sample.Status.APPROVED)
        self.message_user(request, f"{count} sample(s) approved.", messages.SUCCESS)

    @admin.action(description="Approve selected samples and retrain now")
    def approve_and_retrain(self, request, queryset):
        from training.admin import retrain_request
        from training.options import site_options

        count = sample_review(samples=queryset, status=Sample.Status.APPROVED)
        self.message_user(request, f"{count} sample(s) approved.", messages.SUCCESS)
        return retrain_request(self, request, site_options())

    @admin.action(description="Reject selected samples (never trained on)")
    def reject(self, request, queryset):
        count = sample_review(samples=queryset, status=Sample.Status.REJECTED)
        self.message_user(request, f"{count} sample(s) rejected.", messages.SUCCESS)

    def save_model(self, request, obj, form, change):
        # Editing a label or status by hand goes through the same services as the bulk actions.
        if change and "label" in form.changed_data:
            sample_relabel(samples=[obj], label=obj.label)
        if change and "status" in form.changed_data:
            sample_review(samples=[obj], status=obj.status)
        obj.refresh_from_db()
