"""Delete stale samples: rejected ones after --rejected-days, unreviewed ones after
--unreviewed-days. Approved samples are never deleted. Run it daily (cron, a systemd timer)."""

from django.core.management.base import BaseCommand

from feedback.services import PRUNE_REJECTED_DAYS, PRUNE_UNREVIEWED_DAYS, samples_prune


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument(
            "--rejected-days", type=int, default=PRUNE_REJECTED_DAYS, metavar="N",
            help=f"delete rejected samples older than N days (default: {PRUNE_REJECTED_DAYS})",
        )  # fmt: skip
        parser.add_argument(
            "--unreviewed-days", type=int, default=PRUNE_UNREVIEWED_DAYS, metavar="M",
            help=f"delete samples nobody reviewed (new, or any status but approved and rejected) older than M days (default: {PRUNE_UNREVIEWED_DAYS})",
        )  # fmt: skip
        parser.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing (default: delete)")

    def handle(self, *args, rejected_days: int, unreviewed_days: int, dry_run: bool, **options):
        counts = samples_prune(rejected_days=rejected_days, unreviewed_days=unreviewed_days, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        detail = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing"
        self.stdout.write(f"{verb} {sum(counts.values())} samples: {detail}")
