from django.apps import AppConfig
from django.core import checks


@checks.register()
def training_options_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """DIGITSITE_TRAINING_OPTIONS is checked when the site starts, not when a run is first asked for."""
    from training.options import InvalidOptions, site_options

    try:
        site_options()
    except InvalidOptions as error:
        return [checks.Error(str(error), hint="Fix DIGITSITE_TRAINING_OPTIONS (names as in training/options.py).", id="training.E001")]
    return []


class TrainingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "training"

