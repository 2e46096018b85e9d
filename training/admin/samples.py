"""The samples' list as the training app shows it: feedback's own samples admin (which knows
nothing of training), subclassed and registered in its place, with what training adds: the
"Approve and retrain" action and its permission, and on a sample's page which runs trained on it
or that it is held out to judge them with."""

from django.contrib import admin, messages

from feedback.admin import SampleAdmin
from feedback.models import Sample
from feedback.selectors import sample_is_held_out
from feedback.services import sample_review
from training.admin.runs import may_train, retrain_request
from training.models import TrainingRun
from training.options import site_options
from training.runs.chance import corrections_fewest_telling


class TrainingSampleAdmin(SampleAdmin):
    actions = ["approve", "approve_and_retrain", *(action for action in SampleAdmin.actions if action != "approve")]
    fields = [*SampleAdmin.fields, "used_by"]
    readonly_fields = [*SampleAdmin.readonly_fields, "used_by"]

    def has_approve_and_train_permission(self, request) -> bool:
        """Django offers an action to a user holding any one of its allowed permissions, not all of
        them: approving and retraining needs both change_sample and train_model."""
        return self.has_change_permission(request) and may_train(user=request.user)

    @admin.action(description="Approve selected samples and retrain now", permissions=["approve_and_train"])
    def approve_and_retrain(self, request, queryset):
        count = sample_review(samples=queryset, status=Sample.Status.APPROVED)
        self.message_user(request, f"{count} sample(s) approved.", messages.SUCCESS)
        return retrain_request(self, request, site_options())

    @admin.display(description="used by training runs")
    def used_by(self, sample):
        """The runs that trained on it; or, when it is in the share of drawings held out to judge
        with (the site's `holdout` option), that it judges: otherwise "none yet" for ever, and a
        reviewer would wait for it to teach. A run with too few such corrections to judge by
        trains on them (training.steps.data), and then lists it."""
        runs = ", ".join(f"#{run.pk} ({run.model_version or run.status})" for run in TrainingRun.objects.filter(samples=sample).order_by("-started_at"))
        options = site_options()
        if not runs and sample_is_held_out(sample_id=sample.pk, holdout_share=options.holdout):
            return (
                f"held out to judge new models with (the {options.holdout:.0%} of drawings chosen by id): not trained on "
                f"while a run has at least {corrections_fewest_telling(min_held_out=options.min_held_out)} such corrections to judge by"
            )
        return runs or "none yet"


admin.site.unregister(Sample)
admin.site.register(Sample, TrainingSampleAdmin)
