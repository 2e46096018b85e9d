from django.core.management.base import BaseCommand

from recognizer.publishing import serving_forms_build_missing, shipped_serving_form_write


class Command(BaseCommand):
    help = (
        "Build the serving form (ONNX graphs, float32 and 8-bit, checked against the net) of every kept "
        "model version that has none; --shipped rebuilds the shipped model's, beside its weights."
    )

    def add_arguments(self, parser):
        parser.add_argument("--shipped", action="store_true", help="rebuild recognizer/weights/digitnet.serving.zip from the shipped weights")

    def handle(self, *args, shipped=False, **opts):
        if shipped:
            self.stdout.write(f"wrote {shipped_serving_form_write()}")
            return
        built = serving_forms_build_missing(say=self.stdout.write)
        self.stdout.write(self.style.SUCCESS(f"{len(built)} serving form(s) built"))
