"""One set of options for every way of asking for a run, checked when made."""

from argparse import ArgumentParser
from dataclasses import fields

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.urls import reverse

from training import options as run_options
from training.models import TrainingRun
from training.nn.augment import Augment
from training.options import PRESETS, InvalidOptions, RunOptions, site_options

pytestmark = pytest.mark.django_db


def parsed(*flags: str) -> RunOptions:
    parser = ArgumentParser()
    run_options.add_arguments(parser)
    return run_options.from_arguments(vars(parser.parse_args(list(flags))))


def test_the_command_the_form_and_the_bulk_action_take_the_site_defaults_over_run_options(settings):
    assert parsed() == RunOptions() == site_options()
    settings.TRAINING_OPTIONS = {"epochs": 3, "holdout": 0.1}
    assert parsed().epochs == 3 and parsed().holdout == 0.1 and parsed("--epochs", "4").epochs == 4
    assert site_options() == RunOptions(epochs=3, holdout=0.1)
    form = run_options.form_class()()
    assert form.fields["epochs"].initial == 3
    assert set(form.fields) == {"epochs", "from_scratch", "approved_only", "force"}
    for f in fields(RunOptions):
        if f.name in form.fields:
            assert form.fields[f.name].help_text == f.metadata["help"]


def test_a_fine_tune_and_a_run_from_scratch_fill_what_was_left_unset_from_their_presets():
    tune, scratch = RunOptions(), RunOptions(from_scratch=True)
    for name, value in PRESETS["fine-tune"].items():
        assert getattr(tune, name) == value, name
    assert scratch.lr == 3e-3 and scratch.distill == 0 and scratch.look_alikes == 0 and scratch.pen_anchors == 0 and not scratch.freeze_bn
    assert RunOptions(lr=1e-3).lr == 1e-3 and RunOptions(from_scratch=True, lr=1e-2).lr == 1e-2
    # Augmentation: the preset's, with what was asked for on top.
    geometric_off = {"slant": 0.0, "scale": (1.0, 1.0), "stretch": 0.0, "elastic": 0.0, "thicken": 0.0, "thin": 0.0, "styles": 0.0}
    assert tune.augment == geometric_off and tune.distill == 1.0  # MNIST follows the active model alone, unbent
    assert RunOptions(augment={"elastic": 0.5}).augment == {**geometric_off, "elastic": 0.5}
    assert RunOptions(augment={"styles": 0.3}).augment == {**geometric_off, "styles": 0.3}
    from_scratch = scratch.augment
    assert from_scratch["elastic"] == from_scratch["slant"] == from_scratch["thicken"] == 0.0
    assert Augment(**scratch.augmentation).rotate > 0 and Augment(**scratch.augmentation).styles > 0  # the classic levers and the styles stay
    # A stored run's options make the same options again.
    assert RunOptions(**tune.as_dict()) == tune and RunOptions(**scratch.as_dict()) == scratch


@pytest.mark.parametrize(
    "values, named",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 101}, "epochs"),
        ({"lr": 0.0}, "lr"),
        ({"holdout": 1.0}, "holdout"),
        ({"corrections_share": -0.1}, "corrections_share"),
        ({"fallback_keep": 1.5}, "fallback_keep"),
        ({"device": "tpu"}, "device"),
        ({"augment": {"wobble": 3.0}}, "wobble"),
        ({"from_scratch": True, "distill": 0.5}, "distill"),
        ({"pen_anchors": -1}, "pen_anchors"),
        ({"twin": True}, "twin"),
    ],
)
def test_an_option_out_of_range_unknown_or_impossible_is_refused_with_its_name(values, named):
    with pytest.raises(InvalidOptions, match=named):
        RunOptions.of(values)


def test_the_processor_chooses_the_arithmetic_and_nothing_else_of_the_recipe():
    for options in (RunOptions(), RunOptions(from_scratch=True)):
        here = options.on_this_machine()
        changed = {f.name for f in fields(RunOptions) if getattr(here, f.name) != getattr(options, f.name)}
        assert changed <= {"device", "precision"} and here.device in ("cpu", "cuda")
        assert here.precision in ("float32", "bfloat16")
    assert RunOptions(from_scratch=True).on_this_machine().precision == "float32"
    assert RunOptions(precision="float32").on_this_machine().precision == "float32"


def test_a_training_options_setting_that_is_not_valid_fails_the_system_check(settings):
    settings.TRAINING_OPTIONS = {"epochs": 0}
    with pytest.raises(SystemCheckError, match="epochs must be 1 to 100"):
        call_command("check")
    settings.TRAINING_OPTIONS = {"epoch": 3}
    with pytest.raises(SystemCheckError, match="no option named epoch"):
        call_command("check")


def test_train_digits_refuses_bad_flags_before_claiming_a_run():
    for flags in (["--epochs", "0"], ["--augment", "wobble=3"], ["--augment", "styles=x"], ["--holdout", "1"]):
        with pytest.raises(CommandError):
            call_command("train_digits", *flags)
    assert not TrainingRun.objects.exists()


def test_the_retrain_form_refuses_what_the_command_refuses(admin_client):
    answer = admin_client.post(reverse("admin:training_trainingrun_retrain"), {"epochs": "101"})
    assert answer.status_code == 200 and "epochs must be 1 to 100" in answer.content.decode()
    assert not TrainingRun.objects.exists()
