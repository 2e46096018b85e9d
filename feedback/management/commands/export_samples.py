"""Write samples as a dataset: a zip of samples.csv, inputs/<id>.png (28x28) and drawings/<id>.png."""

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db.models import F

from digitsite.files import atomic_file
from feedback.models import Sample
from feedback.selectors import sample_export_zip


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path, help="the zip file to write, e.g. samples.zip")
        parser.add_argument(
            "--status",
            action="append",
            choices=Sample.Status.values,
            help="only samples with this status; repeat for several (default: new and approved, what training uses)",
        )
        parser.add_argument("--corrections-only", action="store_true", help="only samples whose label differs from the guess")

    def handle(self, *args, out: Path, status: list[str] | None, corrections_only: bool, **options):
        samples = Sample.objects.filter(status__in=status or [Sample.Status.NEW, Sample.Status.APPROVED])
        if corrections_only:
            samples = samples.exclude(label=F("guess"))
        count = samples.count()
        if not out.parent.is_dir():
            raise CommandError(f"no such folder: {out.parent}")
        umask = os.umask(0)
        os.umask(umask)
        # Streamed beside the target and renamed into place: a half-written archive is never left
        # under its name. Its mode is what a plain open() would have given it, not a private file's.
        with atomic_file(out, mode=0o666 & ~umask) as file:
            for chunk in sample_export_zip(samples=samples):
                file.write(chunk)
        self.stdout.write(f"wrote {count} sample(s) to {out}")
