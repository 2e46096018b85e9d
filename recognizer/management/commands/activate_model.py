from django.core.management.base import BaseCommand, CommandError

from recognizer.publishing import serving_form_ensure
from recognizer.serving import active_model
from recognizer.servingform import ModelUnavailable
from recognizer.store import model_activate, model_versions


class Command(BaseCommand):
    help = "List the kept model versions, or make one of them the active model (every server picks it up)."

    def add_arguments(self, parser):
        parser.add_argument("version", nargs="?", help="the version to activate; leave out to list them")

    def handle(self, *args, version=None, **opts):
        if version:
            try:
                # An old version gets its serving form here, before it is active, so no web
                # process ever waits for one.
                if serving_form_ensure_if_kept(version):
                    self.stdout.write(f"Built the serving form of model {version}.")
                model_activate(version=version)
            except ModelUnavailable as error:
                raise CommandError(str(error)) from error
            self.stdout.write(self.style.SUCCESS(f"Model {version} is now active."))
            return
        try:
            active = active_model().version
        except ModelUnavailable as error:
            active = None
            self.stderr.write(str(error))
        for model in model_versions():
            meta = model.describe()
            accuracy = meta.get("mnist_test_accuracy")
            self.stdout.write(
                f"{'*' if model.version == active else ' '} {model.version:<24} "
                f"trained {meta.get('trained_at', '?'):<26} "
                f"MNIST test {accuracy * 100 if isinstance(accuracy, float) else float('nan'):.2f}%"
            )


def serving_form_ensure_if_kept(version: str) -> bool:
    """Build `version`'s serving form if it has a row without one (the shipped model has no row until first activated)."""
    from recognizer.models import ModelVersion

    return ModelVersion.objects.filter(version=version).exists() and serving_form_ensure(version=version)
