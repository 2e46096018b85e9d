"""The quality pages: how the site's users answered each model version's guesses, the versions
side by side (reached from the runs' list and each run's model link)."""

from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse

from recognizer.labels import CLASSES, NOT_A_DIGIT, label_text
from recognizer.preprocessing import to_data_url
from recognizer.services import SURE_THRESHOLD
from training.models import TrainingRun
from training.runs.figures import confusion_png
from training.runs.selectors import VersionQuality, model_version_before, model_versions_quality


def quality_url(version: str) -> str:
    return reverse("admin:training_trainingrun_quality", args=[version])


class QualityPages:
    """The pages of TrainingRunAdmin (training.admin.runs) under quality/: the list, a version's page."""

    def quality_list_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        qualities = model_versions_quality()
        served = [q.version for q in qualities]
        by_version = {q.version: q for q in qualities}
        rows = []
        for q in reversed(qualities):  # newest first
            before = by_version.get(model_version_before(version=q.version, served=served) or "")
            rows.append({"quality": q, "url": quality_url(q.version), **_quality_figures(q, before)})
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": "Model quality", "rows": rows, "sure": f"{SURE_THRESHOLD:.0%}"}
        return TemplateResponse(request, "admin/training/trainingrun/quality_list.html", context)

    def quality_view(self, request, version: str):
        if not self.has_view_permission(request):
            raise PermissionDenied
        qualities = model_versions_quality()
        by_version = {q.version: q for q in qualities}
        quality = by_version.get(version)
        if quality is None:  # a new model, say, that no one has answered yet
            context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": f"Model {version}: how the users answered", "quality": None}
            return TemplateResponse(request, "admin/training/trainingrun/quality.html", context)
        before = by_version.get(model_version_before(version=version, served=[q.version for q in qualities]) or "")
        made_by = TrainingRun.objects.filter(model_version=version).first()
        shown = [q for q in (before, quality) if q]  # before, then after, as on a run's page
        digits = [
            {"name": label_text(c), "cells": [_guess_cells(q, c) for q in shown]}
            for c in range(CLASSES)
            if c != NOT_A_DIGIT or any(sum(q.counts[NOT_A_DIGIT]) or sum(row[NOT_A_DIGIT] for row in q.counts) for q in shown)
        ]
        pictures = [(_role(q, quality), q.version, to_data_url(confusion_png(q.corrections()))) for q in shown if q.corrected]
        context = {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": f"Model {version}: how the users answered",
            "quality": quality, "before": before, "shown": [(_role(q, quality), q) for q in shown], "digits": digits, "pictures": pictures, "made_by": made_by,
            "before_is_base": bool(before and made_by and made_by.base_version == before.version),
            "figures": _quality_figures(quality, before), "sure": f"{SURE_THRESHOLD:.0%}",
            "before_url": quality_url(before.version) if before else None,
        }  # fmt: skip
        return TemplateResponse(request, "admin/training/trainingrun/quality.html", context)


def _share_text(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "–"


def _quality_figures(q: VersionQuality, before: VersionQuality | None) -> dict:
    """The shares that compare versions whatever their traffic: corrected and "not sure"."""
    return {
        "before": before,
        "corrected": _share_text(q.corrected, q.answered), "not_sure": _share_text(q.not_sure, q.answered),
        "corrected_before": _share_text(before.corrected, before.answered) if before else None,
        "not_sure_before": _share_text(before.not_sure, before.answered) if before else None,
    }  # fmt: skip


def _role(q: VersionQuality, this: VersionQuality) -> str:
    return "this model" if q is this else "before"


def _guess_cells(q: VersionQuality, c: int) -> tuple[str, str]:
    _, confirmed, corrected = q.by_guess()[c]
    return f"{confirmed:,}", f"{corrected:,} of {confirmed + corrected:,}" if confirmed + corrected else "–"
