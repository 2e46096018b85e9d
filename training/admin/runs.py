"""The training runs' pages: the list, a run's page (its decision, figures and options), and the
buttons: retrain, cancel, activate a run's model or the shipped one."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from recognizer.preprocessing import to_data_url
from recognizer.serving import active_model
from recognizer.servingform import ModelUnavailable
from recognizer.store import model_activate, shipped_version
from training.admin.quality import QualityPages, quality_url
from training.models import TrainingRun
from training.options import form_class, site_options
from training.queue import RunRefused, training_run_cancel, training_run_request
from training.runs.figures import confusion_png, per_digit
from training.runs.presentation import DecisionView, decision_view
from training.runs.report import RunReport
from training.runs.text import change_text, count_text, percent_text, time_left_text

RetrainForm = form_class()
REFRESH_S = 3  # a queued or working run's page reloads itself this often
TRAIN_PERMISSION = "training.train_model"  # TrainingRun.Meta.permissions


def may_train(*, user) -> bool:
    """Whether the user may queue, cancel and activate runs: viewing or changing them is not enough.
    Every ModelAdmin offering one of those answers has_train_permission with this (the actions'
    permissions=["train"]); the views check it too, whatever the page shows."""
    return user.has_perm(TRAIN_PERMISSION)


def _active_version() -> str | None:
    try:
        return active_model().version
    except ModelUnavailable:
        return None


def retrain_request(modeladmin: admin.ModelAdmin, request, options) -> HttpResponseRedirect:
    """Queue a run and go to its page, or say which run is in the way. Shared by the form and
    the samples' bulk action."""
    try:
        run = training_run_request(options=options, requested_by=request.user.get_username())
    except RunRefused as error:
        modeladmin.message_user(request, str(error), messages.ERROR)
        busy = TrainingRun.objects.filter(in_progress=True).first()
        return HttpResponseRedirect(reverse("admin:training_trainingrun_change", args=[busy.pk]) if busy else reverse("admin:training_trainingrun_changelist"))
    modeladmin.message_user(
        request,
        f"Run #{run.pk} is queued. The training worker (manage.py training_worker, or make worker) runs it; this page follows it.",
        messages.SUCCESS,
    )
    return HttpResponseRedirect(reverse("admin:training_trainingrun_change", args=[run.pk]))


@admin.register(TrainingRun)
class TrainingRunAdmin(QualityPages, admin.ModelAdmin):
    # Eight short columns fit beside the sidebar at 1280 px, with no filter panel taking a third
    # of the width (the status column says it all, and runs are few); a run's page has the rest.
    list_display = ["run_number", "asked_for", "status_now", "time_text", "model_link", "mnist_figures", "corrections_figures", "confirmed_figures"]
    list_display_links = ["run_number"]
    search_fields = ["model_version", "base_version", "decision", "error"]
    actions = ["activate", "cancel"]
    change_list_template = "admin/training/trainingrun/change_list.html"
    change_form_template = "admin/training/trainingrun/change_form.html"
    fieldsets = [
        (None, {"fields": ["status_now", "decision_summary", "error", "started_at", "finished_at", "time_taken", "requested_by", "worker"]}),
        ("Figures (the active model when the run started, then the new one)", {"fields": ["figures", "per_digit_table", "confusion_pictures", "epoch_table"]}),
        ("What it trained", {"fields": ["base_version", "model_link", "epochs", "from_scratch", "mnist_samples", "users_samples", "sample_count", "options_table"]}),
    ]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields] + [
            "status_now", "decision_summary", "figures", "per_digit_table", "confusion_pictures", "epoch_table", "sample_count", "time_taken", "options_table", "model_link",
        ]  # fmt: skip

    class Media:
        css = {"all": ["training/admin.css"]}

    def has_add_permission(self, request) -> bool:
        return False  # runs come from "Retrain now" or `manage.py train_digits`

    def has_train_permission(self, request) -> bool:
        return may_train(user=request.user)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("retrain/", view(self.retrain_view), name="training_trainingrun_retrain"),
            path("activate-shipped/", view(self.activate_shipped_view), name="training_trainingrun_activate_shipped"),
            path("quality/", view(self.quality_list_view), name="training_trainingrun_quality_list"),
            path("quality/<str:version>/", view(self.quality_view), name="training_trainingrun_quality"),
            path("<int:pk>/cancel/", view(self.cancel_view), name="training_trainingrun_cancel"),
            path("<int:pk>/activate/", view(self.activate_view), name="training_trainingrun_activate"),
            *super().get_urls(),
        ]

    # -- the list ---------------------------------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        shipped = shipped_version()
        extra = {
            "shipped_version": shipped,
            "shipped_is_active": _active_version() == shipped,
            "can_train": self.has_train_permission(request),
            "holdout_share": f"{site_options().holdout:.0%}",  # the site's, not a number written here
        }
        return super().changelist_view(request, extra_context={**(extra_context or {}), **extra})

    @admin.display(description="status", ordering="status")
    def status_now(self, run):
        """The status that holds now: a promoted model that was replaced says so."""
        active = _active_version()
        if run.status == TrainingRun.Status.RUNNING and run.progress:
            return f"running: {run.progress}"
        if run.model_version and run.model_version == active:
            return "active: serving now" + ("" if run.status == TrainingRun.Status.PROMOTED else " (activated by hand)")
        if run.status == TrainingRun.Status.PROMOTED:
            return "was active, replaced since"
        if run.cancel_requested and run.is_unfinished:
            return f"{run.status}: cancelling"
        return run.get_status_display()

    @admin.display(description="run", ordering="id")
    def run_number(self, run):
        return run.pk

    @admin.display(description="asked for", ordering="started_at")
    def asked_for(self, run):
        return f"{timezone.localtime(run.started_at):%-d %b %H:%M}"

    @admin.display(description="time")
    def time_text(self, run):
        """Whole seconds once finished; while it works, the time it expects to take still."""
        if run.is_unfinished:
            return _time_left(run)
        return "–" if run.seconds is None else f"{run.seconds:,.0f} s"

    @admin.display(description="model", ordering="model_version")
    def model_link(self, run):
        if not run.model_version:
            return "–"
        return format_html('<a href="{}" title="its quality page: how the users answered its guesses">{}</a>', quality_url(run.model_version), run.model_version)

    @admin.display(description="MNIST test")
    def mnist_figures(self, run):
        return change_text(run.mnist_accuracy_before, run.mnist_accuracy)

    @admin.display(description="corrections")
    def corrections_figures(self, run):
        """As counts: a handful of drawings reads better as "0 → 3 of 4" than as 75%."""
        if not run.corrections_held_out:
            return "none held out"
        count = run.corrections_held_out

        def right(share: float | None) -> str:
            return "–" if share is None else f"{round(share * count):,}"

        return f"{right(run.corrections_accuracy_before)} → {right(run.corrections_accuracy)} of {count:,}"

    @admin.display(description="confirmed")
    def confirmed_figures(self, run):
        if not run.confirmed_held_out:
            return "none held out"
        return f"{change_text(run.confirmed_accuracy_before, run.confirmed_accuracy)} of {run.confirmed_held_out:,}"

    # -- a run's page -------------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        can_train = self.has_train_permission(request)
        extra = {
            "title": f"Training run {run.pk}" if run else "Training run",  # a record to read, nothing to change
            "refresh_s": REFRESH_S if run and run.is_unfinished else None,
            "can_cancel": bool(can_train and run and run.is_unfinished and not run.cancel_requested),
            "can_activate": bool(can_train and run and _can_activate(run) and run.model_version != _active_version()),
            "asks_first": bool(run and _refused(run)),
        }
        return super().change_view(request, object_id, form_url, extra_context={**(extra_context or {}), **extra})

    @admin.display(description="decision")
    def decision_summary(self, run):
        """The verdict, a row per clause of the gate and the nets it tried; the record's words
        while there is no report (a working, failed or cancelled run)."""
        view = _decision_view(run)
        if view is None:
            return run.decision or "–"
        return render_to_string("admin/training/trainingrun/decision.html", {"view": view})

    @admin.display(description="held-out figures")
    def figures(self, run):
        rows = [
            ("MNIST test", run.mnist_accuracy_before, run.mnist_accuracy, _mnist_count(run)),
            ("users' held-out corrections", run.corrections_accuracy_before, run.corrections_accuracy, run.corrections_held_out),
            ("users' held-out confirmed right guesses", run.confirmed_accuracy_before, run.confirmed_accuracy, run.confirmed_held_out),
        ]
        report = RunReport.of(run)
        if report and (pen := report.decision.pen).count:
            before = None if pen.right_before is None else pen.right_before / pen.count
            rows.insert(1, ("pen guard set (shipped with the code)", before, pen.right_after / pen.count, pen.count))

        body = format_html_join(
            "", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            ((name, count_text(before, n if before is not None else 0), count_text(after, n if after is not None else 0)) for name, before, after, n in rows),
        )  # fmt: skip
        table = format_html("<table><tr><th></th><th>before</th><th>after</th></tr>{}</table>", body)
        if report and report.held_out_taught:
            table = format_html(
                "{}<p>Trained on instead of held out: the {} corrections chosen by id to judge with, too few to change "
                "the gate's decision (a sign test on fewer than 5 cannot show them better or worse).</p>", table, report.held_out_taught,
            )  # fmt: skip
        if report and report.set_aside:
            cap = run.options.get("per_source_cap")
            return format_html("{}<p>Set aside, neither trained on nor judged with: {} unreviewed drawings past their source's cap of {} a run.</p>", table, report.set_aside, cap)
        return table

    @admin.display(description="per digit, read wrong")
    def per_digit_table(self, run):
        report = RunReport.of(run)
        if report is None:
            return "–"
        # A digit a row: six columns fit beside the admin's sidebar on a 1280 px screen.
        sets = (("mnist", "MNIST test"), ("pen", "pen guard set"), ("corrections", "held-out corrections"))
        columns = [(title, when, per_digit(report.confusion.get(name, {}).get(when))) for name, title in sets for when in ("before", "after")]
        header = format_html_join("", "<th>{}<br>{}</th>", ((title, when) for title, when, _ in columns))
        cell = '<td style="white-space:nowrap">{}</td>'
        rows = ((digit, format_html_join("", cell, ((_cell(*cells[digit]),) for _, _, cells in columns))) for digit in range(10))
        body = format_html_join("", "<tr><th>{}</th>{}</tr>", rows)
        # On a phone the table scrolls sideways within its box instead of running off the page.
        return format_html('<div style="overflow-x:auto"><table><tr><th>digit</th>{}</tr>{}</table></div>', header, body)

    @admin.display(description="confusion (rows: true digit, columns: guess)")
    def confusion_pictures(self, run):
        report = RunReport.of(run)
        confusion = report.confusion if report else {}
        pictures = []
        for name, title in (("mnist", "MNIST test"), ("corrections", "held-out corrections")):
            for when in ("before", "after"):
                matrix = confusion.get(name, {}).get(when)
                if matrix and sum(map(sum, matrix)):
                    url = to_data_url(confusion_png(matrix))
                    pictures.append((f"{title}, {when}", url, f"confusion matrix, {title}, {when}"))
        if not pictures:
            return "–"
        return format_html_join(
            "", '<figure style="display:inline-block;margin:0 12px 8px 0"><figcaption>{}</figcaption><img src="{}" alt="{}"></figure>', pictures
        )

    @admin.display(description="epochs")
    def epoch_table(self, run):
        report = RunReport.of(run)
        if report is None:
            return "–"
        rows = ((e.epoch, f"{e.loss:.4f}", percent_text(e.mnist_val), percent_text(e.corrections), f"{e.seconds:.0f} s") for e in report.epochs)
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows)
        best = report.best_epoch
        return format_html(
            "<table><tr><th>epoch</th><th>loss</th><th>MNIST validation</th><th>held-out corrections</th><th>time</th></tr>{}</table>"
            "<p>kept: epoch {} (best on MNIST validation)</p>", body, best,
        )  # fmt: skip

    @admin.display(description="time")
    def time_taken(self, run):
        if run.is_unfinished:
            return _time_left(run)
        return "–" if run.seconds is None else f"{run.seconds:,.0f} s"

    @admin.display(description="options (as the run resolved them)")
    def options_table(self, run):
        rows = ((name, _option_text(value)) for name, value in sorted(run.options.items()))
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))

    @admin.display(description="users' drawings trained on")
    def sample_count(self, run):
        return run.samples.count()

    # -- buttons and actions ------------------------------------------------------------------

    def retrain_view(self, request):
        if not self.has_train_permission(request):
            raise PermissionDenied
        form = RetrainForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            return retrain_request(self, request, form.options())
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form, "title": "Retrain now"}
        return TemplateResponse(request, "admin/training/trainingrun/retrain.html", context)

    def cancel_view(self, request, pk: int):
        if request.method != "POST" or not self.has_train_permission(request):
            raise PermissionDenied
        run = get_object_or_404(TrainingRun, pk=pk)
        self.message_user(request, training_run_cancel(run=run), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:training_trainingrun_change", args=[pk]))

    def activate_view(self, request, pk: int):
        """Activate the run's model; one the gate refused only once the question was answered yes."""
        if request.method != "POST" or not self.has_train_permission(request):
            raise PermissionDenied
        run = get_object_or_404(TrainingRun, pk=pk)
        if _refused(run) and request.POST.get("confirm") != "yes":
            return self._activate_question(request, run)
        self._activate(request, run)
        return HttpResponseRedirect(reverse("admin:training_trainingrun_change", args=[pk]))

    def activate_shipped_view(self, request):
        if request.method != "POST" or not self.has_train_permission(request):
            raise PermissionDenied
        shipped = shipped_version()
        model_activate(version=shipped)
        self.message_user(request, f"The shipped model {shipped} is active again.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:training_trainingrun_changelist"))

    @admin.action(description="Make the selected run's model the active one", permissions=["train"])
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one run.", messages.ERROR)
            return None
        run = queryset.get()
        if _refused(run):
            return self._activate_question(request, run)
        self._activate(request, run)
        return None

    @admin.action(description="Cancel the selected queued or running runs", permissions=["train"])
    def cancel(self, request, queryset):
        for run in queryset:
            self.message_user(request, training_run_cancel(run=run), messages.INFO)

    def _activate_question(self, request, run: TrainingRun) -> TemplateResponse:
        """Asked before a model the gate refused goes into service: what it failed, and what serves now.
        A form posting back, no script: it works under the Content-Security-Policy and without JavaScript."""
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": f"Make model {run.model_version} active, although the gate refused it?",
            "run": run, "view": _decision_view(run), "active_version": _active_version(),
        }  # fmt: skip
        return TemplateResponse(request, "admin/training/trainingrun/activate_confirm.html", context)

    def _activate(self, request, run: TrainingRun) -> None:
        if not _can_activate(run):
            self.message_user(request, f"Run #{run.pk} is {run.status} and made no model to activate.", messages.ERROR)
            return
        try:
            served = model_activate(version=run.model_version)
        except ModelUnavailable as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        if served is None:  # a version from before serving forms: the worker builds one, never this request
            self.message_user(
                request, f"Model {run.model_version} is now active; it serves once the training worker has built its serving form "
                "(queued). The last good model serves meanwhile.", messages.WARNING,
            )  # fmt: skip
            return
        self.message_user(request, f"Model {run.model_version} is now active.", messages.SUCCESS)


def _time_left(run: TrainingRun) -> str:
    if run.status == TrainingRun.Status.QUEUED:
        return "waiting for the worker"
    if run.finish_expected_at is None:
        return "no estimate yet"
    return time_left_text((run.finish_expected_at - timezone.now()).total_seconds())


def _decision_view(run: TrainingRun) -> DecisionView | None:
    report = RunReport.of(run)
    if report is None:
        return None
    return decision_view(decision=report.decision, version=run.model_version, base_version=run.base_version, active_version=_active_version())


def _refused(run: TrainingRun) -> bool:
    """A model the gate kept as a candidate: activating it asks first. A promoted one, active before
    and replaced since, goes back without a question, as a rollback should."""
    return run.status == TrainingRun.Status.CANDIDATE and bool(run.model_version)


def _can_activate(run: TrainingRun) -> bool:
    return bool(run.model_version) and run.status in (TrainingRun.Status.PROMOTED, TrainingRun.Status.CANDIDATE)


def _mnist_count(run: TrainingRun) -> int:
    if report := RunReport.of(run):
        return report.mnist_test
    return run.options.get("test_limit") or 10_000


def _cell(right: int, of: int) -> str:
    """Errors, not a share: 99.6% and 99.8% look alike, 4 and 2 wrong do not."""
    return f"{of - right:,} of {of:,}" if of else "–"


def _option_text(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"  # 0.0005, not 0.0 or 0.0005000000000000001
    if isinstance(value, dict):
        return ", ".join(f"{k}={_option_text(v)}" for k, v in sorted(value.items())) or "–"
    if isinstance(value, (list, tuple)):
        return " to ".join(_option_text(v) for v in value)
    return str(value) if value not in ("", None) else "–"
