from django.contrib import admin, messages

from recognizer.registry import ModelUnavailable, active_model, model_activate
from training.models import TrainingRun
from training.services import percent_text


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = [
        "id", "started_at", "status", "model_version", "epochs", "feedback_samples",
        "mnist_before", "mnist_after", "feedback_before", "feedback_after", "is_active",
    ]  # fmt: skip
    list_filter = ["status", "from_scratch"]
    search_fields = ["model_version", "base_version", "decision", "error"]
    actions = ["activate"]
    exclude = ["samples"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields] + ["sample_count"]

    def has_add_permission(self, request) -> bool:
        return False  # runs come from `manage.py train_digits`

    @admin.display(description="MNIST before")
    def mnist_before(self, run):
        return percent_text(run.mnist_accuracy_before)

    @admin.display(description="MNIST after")
    def mnist_after(self, run):
        return percent_text(run.mnist_accuracy)

    @admin.display(description="feedback before")
    def feedback_before(self, run):
        return percent_text(run.feedback_accuracy_before)

    @admin.display(description="feedback after")
    def feedback_after(self, run):
        return percent_text(run.feedback_accuracy)

    @admin.display(description="corrections trained on")
    def sample_count(self, run):
        return run.samples.count()

    @admin.display(boolean=True, description="active")
    def is_active(self, run):
        try:
            return bool(run.model_version) and active_model().version == run.model_version
        except ModelUnavailable:
            return False

    @admin.action(description="Make the selected run's model the active one")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one run.", messages.ERROR)
            return
        run = queryset.get()
        try:
            model_activate(version=run.model_version)
        except ModelUnavailable as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(request, f"Model {run.model_version} is now active.", messages.SUCCESS)
