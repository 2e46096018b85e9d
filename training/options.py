"""Every choice a training run makes, with its default, in one dataclass.

`manage.py train_digits` makes its flags from `RunOptions`, and the admin's "Retrain now" form
and "Approve and retrain" action build the same dataclass, on top of DIGITSITE_TRAINING_OPTIONS
(`site_defaults`): the command, the button and the benchmarks share one set of defaults. Options
are checked when they are made (`InvalidOptions` names the one that is wrong), and a run stores
them complete, so its page says exactly what it did.

Two presets fill the options left unset (None): fine-tuning the active model (the default) and
training from scratch. The processor never changes the recipe: on a machine without native
bfloat16 a run computes in float32, and otherwise the same steps happen.
"""

import argparse
import json
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from django.conf import settings

# How much a training batch is augmented (training.nn.augment applies it): every run's starting
# point, which the presets and a run's own `augment` override. Plain numbers, no torch, so web
# processes (the admin's "Retrain now" form, the system checks) check them.
AUGMENT: dict[str, Any] = {
    "rotate": 15.0,  # degrees, either way
    "slant": 0.3,  # horizontal shear, either way
    "scale": (0.85, 1.1),
    "stretch": 0.1,  # independent change of width against height
    "translate": 0.1,  # share of the image, either way
    "elastic": 1.0,  # pixels of smooth random displacement
    "elastic_sigma": 4.0,  # pixels; how smooth that displacement is
    "thicken": 0.5,  # chance to thicken the strokes by up to one pixel ...
    "thin": 0.25,  # ... or to thin them
    "styles": 0.5,  # chance that a 1 gets a lead-in stroke, a 7 a crossbar
}

# Fine-tuning: a brief, gentle update of a converged model (docs/design.md, "The fine-tuning recipe"): two
# epochs of a fresh random part of MNIST beside the oversampled corrections, at a low peak rate,
# batch norm frozen. MNIST images follow the active model alone, with the classic levers only
# (rotation, translation): MNIST's own labels on slanted, stretched and wobbled images moved the
# line between 1 and 7, and a no-op retrain lost real pen 1s (to 7s) on every seed
# (docs/results.md, "The pen-1 drift: its cause"). No synthetic writing styles either (their
# lead-ins on MNIST's 1s moved the 1/7 line into MNIST's 7s).
# From scratch: every MNIST image each epoch, plain labels, the classic augmentation levers and
# the writing styles (the geometric ones left 152 pen digits wrong against 130 without).
PRESETS: dict[str, dict[str, Any]] = {
    "fine-tune": {
        "lr": 5e-4,  # 1e-3 cost 0.2-0.4 MNIST points, 1e-4 learnt less
        "mnist_per_epoch": 40_000,
        "distill": 1.0,
        "freeze_bn": True,
        # Off since 7 December 2026: with MNIST following the active model alone (distill 1.0), the
        # MNIST images most like each correction, also following it, held the line back where the
        # corrections moved it: the honest loop, seeds 0-4, left 37 errors of 71 with 10 a
        # correction and 33 without, MNIST -0.05 to +0.05 points, every poisoning scenario kept out
        # (docs/results.md, "Look-alikes off").
        "look_alikes": 0,
        # Off: on 5 no-op seeds 50 halved the pen 1s' drift, but they keep the pen guard's own
        # pen-style digits as they were while other hands' change, and two 4-to-9 poisonings then
        # passed the gate (docs/results.md, "Pen-style anchors against the drift").
        "pen_anchors": 0,
        "pen_mnist": 0,
        "fallback_keep": 0.7,
        "augment": {"slant": 0.0, "scale": (1.0, 1.0), "stretch": 0.0, "elastic": 0.0, "thicken": 0.0, "thin": 0.0, "styles": 0.0},
    },
    "from-scratch": {
        "lr": 3e-3,
        "mnist_per_epoch": 0,
        "distill": 0.0,
        "freeze_bn": False,
        "look_alikes": 0,
        "pen_anchors": 0,
        "pen_mnist": 0,
        "fallback_keep": 0.0,
        "augment": {"slant": 0.0, "scale": (1.0, 1.0), "stretch": 0.0, "elastic": 0.0, "thicken": 0.0, "thin": 0.0},
    },
}
MAX_EPOCHS = 100


def _preset(name: str) -> str:
    """"preset: 0.0005 fine-tuning, 0.003 from scratch": the presets' values of `name`, read from PRESETS."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, dict):
            return ",".join(f"{k}={text(v)}" for k, v in value.items())
        if isinstance(value, tuple):
            return ":".join(map(text, value))
        return f"{value:g}"

    return f"preset: {text(PRESETS['fine-tune'][name])} fine-tuning, {text(PRESETS['from-scratch'][name])} from scratch"


class InvalidOptions(ValueError):
    """An option out of its range, unknown, or impossible with the others; the message names it."""


def _option(default: Any, help: str, *, form: bool = False, flag: str | None = None, choices: list[str] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "form": form, "flag": flag, "choices": choices})


@dataclass(frozen=True)
class RunOptions:
    # What to train.
    epochs: int = _option(2, f"passes over the training data, 1 to {MAX_EPOCHS}", form=True)
    from_scratch: bool = _option(False, "start from random weights instead of fine-tuning the active model", form=True)
    width: int = _option(32, "net width, from scratch")
    lr: float | None = _option(None, f"peak learning rate of the one-cycle schedule ({_preset('lr')})")
    mnist_per_epoch: int | None = _option(
        None, f"MNIST images drawn afresh at random for each epoch, 0 for all of them ({_preset('mnist_per_epoch')})"
    )
    distill: float | None = _option(
        None, f"weight of distillation from the active model on MNIST images, 0 to 1 ({_preset('distill')})"
    )
    freeze_bn: bool | None = _option(None, f"keep batch norm's statistics as they are ({_preset('freeze_bn')})")
    frozen_stages: int = _option(0, "the first N of the net's three stages keep their weights, 0 to 2: the digits' early features stay as they were")
    batch_size: int = _option(128, "images per optimiser step")
    weight_decay: float = _option(5e-4, "AdamW's weight decay")
    label_smoothing: float = _option(0.05, "share of each label's weight spread over the other classes")
    softening: float = _option(2.0, "divides the teacher's logits before its softmax, so distillation sees its second guesses")
    # Warm up for this share of the steps (OneCycleLR's pct_start, ending half a step off a whole one).
    warmup_share: float = _option(0.2, "share of the steps the learning rate warms up for, 0 to 1")
    augment: dict | None = _option(
        None,
        "augmentation overrides on top of training.options.AUGMENT and the preset's, e.g. styles=0,elastic=0.5 "
        f"({_preset('augment')})",
    )
    # The users' drawings.
    use_users: bool = _option(True, "train on the users' drawings too, not only MNIST", flag="users")
    approved_only: bool = _option(False, "only approved samples (default: every one not rejected)", form=True)
    # 5%: up to 21 new corrections are each seen the most times allowed (100); with 51 new ones,
    # 10% cost 0.20 MNIST points and 5% 0.10 (docs/notebook.md).
    corrections_share: float = _option(0.05, "share of each epoch made of the users' corrections, each seen at most max_repeats times")
    confirmed_share: float = _option(0.05, "share of each epoch made of the right guesses the users confirmed, each seen at most max_repeats times")
    max_repeats: int = _option(100, "times a user's drawing is seen at most an epoch, so that none is memorised")
    # "Not a digit": letters, scribbles and shapes made by training.nn.negatives. About 9,600 of
    # them beside 40,000 MNIST images an epoch is 0.16; each is seen once an epoch.
    negatives_share: float = _option(0.15, "share of each epoch made of drawings that are not digits (letters, scribbles, shapes; training.nn.negatives), 0 for none")
    max_refused: float = _option(0.0004, "share of MNIST validation digits the new model may answer \"not a digit\"; its not-a-digit bias is set so (lowered or raised; training.steps.refusal)")
    look_alikes: int | None = _option(
        None, f"MNIST images of other digits most like each correction, replayed as often in all as the corrections ({_preset('look_alikes')})"
    )
    pen_anchors: int | None = _option(
        None, f"bent copies of each pen font's digits (training.nn.pen_anchors), read as the active model reads them (from scratch: labelled with their digits), each once an epoch ({_preset('pen_anchors')})"
    )
    pen_mnist: int | None = _option(
        None, f"MNIST training images drawn again with the page's pen (training.nn.pen_mnist), read as the active model reads them (from scratch: labelled with their digits), each once an epoch ({_preset('pen_mnist')})"
    )
    holdout: float = _option(
        0.2, "share of the users' drawings held out (chosen by id) to judge new models with, never trained on; "
        "corrections too few in a run to change the gate's decision (under 5) are trained on instead",
    )  # fmt: skip
    # An honest writer corrects a few guesses (61 corrections from 30 pen writers in the whole
    # feedback benchmark); a poisoner sends hundreds.
    per_source_cap: int = _option(
        50, "unreviewed corrections used from each source in a run, its earliest, and as many confirmed right guesses; "
        "the rest are set aside until approved (approved drawings and those made by commands are not capped; 0: no cap)",
    )  # fmt: skip
    # The gate.
    mnist_tolerance: float = _option(0.1, "MNIST test points the new model may lose and still be promoted")
    mnist_digit_tolerance: float = _option(0.5, "MNIST test points any one digit may lose (about 1,000 images each)")
    pen_tolerance: float = _option(0.2, "points the new model may lose on the pen guard set (2,498 real pen drawings shipped with the code)")
    pen_digit_tolerance: float = _option(1.0, "points any one digit of the pen guard set may lose (about 250 drawings each)")
    users_tolerance: float = _option(1.0, "points the new model may lose on held-out confirmed drawings (right guesses) and still be promoted")
    refusal_tolerance: float = _option(2.0, "points the new model may lose in answering \"not a digit\" to held-out letters, scribbles and shapes")
    fallback_keep: float | None = _option(
        None,
        "when the new model loses MNIST test beyond the tolerance, blends from the active model toward it are judged by "
        "the same gate, keeping less of the new each time down to this share (blend_steps of them: 0.9, 0.8, 0.7 for 0.7), and the first that "
        f"passes is published (0: no blends; {_preset('fallback_keep')})",
    )
    # The fewest held-out corrections that may carry a promotion, by a sign test: k of k going the
    # new model's way happens by chance with probability 2^-k, 1/16 for 4, 1/32 (3.1%) for 5.
    min_held_out: int = _option(5, "held-out corrections needed to carry a promotion; fewer can only hold a model back")
    blend_steps: int = _option(3, "blends tried at most when the new model fails (each costs one more reading of MNIST test, about 5 s)")
    force: bool = _option(False, "promote the new model whatever the gate says", form=True)
    # Where and how.
    data_dir: str = _option("", "MNIST in torchvision's layout, downloaded there if missing (default: DIGITSITE_MNIST_DIR)")
    device: str = _option("auto", "where to train: auto takes cuda when there is one", choices=["auto", "cpu", "cuda"])
    precision: str = _option(
        "auto", "arithmetic of the training steps; the recipe is the same either way (auto: bfloat16 when fine-tuning "
        "where the processor computes it natively, else float32)", choices=["auto", "float32", "bfloat16"],
    )  # fmt: skip
    seed: int = _option(0, "seed for data order, augmentation and init")
    limit: int = _option(0, "train on only N MNIST images, for quick runs (0: all)")
    test_limit: int = _option(0, "judge on only the first N MNIST test images, for quick runs (0: all 10,000)")
    val_size: int = _option(5000, "MNIST training images held out to pick the best epoch")
    # The same validation images whatever the run's seed, so that no model in a line of fine-tunes
    # has trained on the images that judge the next one; the shipped model held out the same ones.
    validation_seed: int = _option(0, "seed of the MNIST validation split")
    progress: bool = _option(True, "progress bars on the console")

    def __post_init__(self) -> None:
        preset = PRESETS["from-scratch" if self.from_scratch else "fine-tune"]
        for name, value in preset.items():
            if name == "augment":
                # A stored run's options come back from JSON with lists where ranges were tuples.
                value = {k: tuple(v) if isinstance(v, list) else v for k, v in {**value, **(self.augment or {})}.items()}
            elif getattr(self, name) is not None:
                continue
            object.__setattr__(self, name, value)
        if not self.data_dir:
            object.__setattr__(self, "data_dir", str(settings.MNIST_DIR))
        self._check()

    def _check(self) -> None:
        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise InvalidOptions(f"{name} must be {what}, not {getattr(self, name)!r}")

        need(1 <= self.epochs <= MAX_EPOCHS, "epochs", f"1 to {MAX_EPOCHS}")
        for name in ("width", "batch_size", "val_size", "max_repeats", "blend_steps"):
            need(getattr(self, name) >= 1, name, "a positive whole number")
        for name in ("mnist_per_epoch", "look_alikes", "pen_anchors", "pen_mnist", "limit", "test_limit", "seed", "per_source_cap", "min_held_out", "validation_seed", "weight_decay"):
            need(getattr(self, name) >= 0, name, "0 or more")
        need(0 <= self.frozen_stages <= 2, "frozen_stages", "0, 1 or 2")
        need(self.lr > 0, "lr", "above 0")
        need(self.softening > 0, "softening", "above 0")
        for name in ("corrections_share", "confirmed_share", "negatives_share", "max_refused", "holdout", "label_smoothing", "warmup_share"):
            need(0 <= getattr(self, name) < 1, name, "at least 0 and below 1")
        for name in ("distill", "fallback_keep"):
            need(0 <= getattr(self, name) <= 1, name, "between 0 and 1")
        for name in ("mnist_tolerance", "mnist_digit_tolerance", "pen_tolerance", "pen_digit_tolerance", "users_tolerance", "refusal_tolerance"):
            need(getattr(self, name) >= 0, name, "0 or more points")
        for f in fields(self):
            if f.metadata["choices"]:
                need(getattr(self, f.name) in f.metadata["choices"], f.name, f"one of {', '.join(f.metadata['choices'])}")
        known = set(AUGMENT)
        if unknown := set(self.augment) - known:
            raise InvalidOptions(f"augment has no {', '.join(sorted(unknown))}; it knows {', '.join(sorted(known))}")
        if self.from_scratch:
            # The active model is what these learn from or fall back to; from scratch there is none.
            for name in ("distill", "look_alikes", "fallback_keep"):
                need(not getattr(self, name), name, "0 from scratch (it needs an active model)")

    @classmethod
    def of(cls, values: dict[str, Any], *, source: str = "options") -> "RunOptions":
        """Options from a dict (the settings, a form, a stored run), unknown names refused."""
        known = {f.name for f in fields(cls)}
        if unknown := set(values) - known:
            raise InvalidOptions(f"{source}: no option named {', '.join(sorted(unknown))}")
        try:
            return cls(**values)
        except InvalidOptions as error:
            raise InvalidOptions(f"{source}: {error}") from None
        except TypeError as error:
            raise InvalidOptions(f"{source}: {error}") from None

    def on_this_machine(self) -> "RunOptions":
        """The device and the arithmetic chosen where the run trains (the worker, not the web
        machine that queued it): cuda when there is one, bfloat16 where it is native. The recipe
        stays as it is."""
        import torch

        device = self.device if self.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        if device == "cuda" and not torch.cuda.is_available():
            raise InvalidOptions("device is cuda, but no CUDA device is available here")
        precision = self.precision
        if precision == "auto":
            precision = "bfloat16" if native_bf16(device) and not self.from_scratch else "float32"
        return replace(self, device=device, precision=precision)

    def mnist_epoch_size(self, available: int) -> int:
        """MNIST images an epoch draws from the `available` ones (`mnist_per_epoch`; 0: all)."""
        return min(self.mnist_per_epoch or available, available)

    @property
    def augmentation(self) -> dict[str, Any]:
        """Every augmentation setting of the run: AUGMENT, then the preset's and the run's own (`augment`)."""
        return {**AUGMENT, **self.augment}

    def as_dict(self) -> dict:
        """The options as a run stores them (JSON: a range is a list)."""
        return json.loads(json.dumps(asdict(self)))


def native_bf16(device: str) -> bool:
    """Whether `device` computes bfloat16 in hardware; where it is emulated it is slower than float32."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    cpu = torch.cpu
    return any(getattr(cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def site_defaults() -> dict[str, Any]:
    """The site's own defaults for every option: RunOptions' own, overridden by
    DIGITSITE_TRAINING_OPTIONS (checked by `manage.py check`, see training.apps)."""
    return {**{f.name: f.default for f in option_fields()}, **settings.TRAINING_OPTIONS}


def site_options(**chosen) -> RunOptions:
    """Options for a run on this site: its defaults (`site_defaults`), then what was chosen."""
    return RunOptions.of({**site_defaults(), **chosen}, source="DIGITSITE_TRAINING_OPTIONS and the chosen options")


def option_fields(*, form_only: bool = False):
    return [f for f in fields(RunOptions) if f.metadata["form"] or not form_only]


# -- the command's flags --------------------------------------------------------------------


def augment_overrides(text: str) -> dict[str, object]:
    """"styles=0,elastic=0.5" -> {"styles": 0.0, "elastic": 0.5}; names are checked by RunOptions."""
    overrides: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            overrides[name] = tuple(map(float, value.split(":"))) if ":" in value else float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected name=number (or name=low:high), not {item!r}") from None
    return overrides


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per option, `--name` from the field, its default the site's; bools as on/off
    switches. Values are checked by RunOptions itself (`from_arguments`)."""
    defaults = site_defaults()
    for f in option_fields():
        name = f.metadata["flag"] or f.name.replace("_", "-")
        default = defaults[f.name]
        value = ("on" if default else "off") if isinstance(default, bool) else default
        shown = "" if "preset:" in f.metadata["help"] or "default:" in f.metadata["help"] else f" (default: {value})"
        help_text = (f.metadata["help"] + shown).replace("%", "%%")
        if _plain_type(f.name) is bool:
            parser.add_argument(f"--{name}", dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=help_text)
            continue
        kind = augment_overrides if f.name == "augment" else _plain_type(f.name)
        parser.add_argument(f"--{name}", dest=f.name, type=kind, default=default, help=help_text, choices=f.metadata["choices"])


def _plain_type(name: str) -> type:
    """int for `int | None`: what argparse converts a flag's text with."""
    hint = typing.get_type_hints(RunOptions)[name]
    return next((t for t in typing.get_args(hint) if t is not type(None)), hint)


def from_arguments(values: dict[str, Any]) -> RunOptions:
    return RunOptions.of({f.name: values[f.name] for f in option_fields() if f.name in values}, source="flags")


# -- the admin's form -----------------------------------------------------------------------


def form_class():
    """A Django form with one field per option marked `form=True`, the site's defaults as
    initial values, checked by RunOptions itself."""
    from django import forms

    defaults = site_defaults()
    form_fields = {}
    for f in option_fields(form_only=True):
        label = f.name.replace("_", " ").capitalize()
        if _plain_type(f.name) is bool:
            form_fields[f.name] = forms.BooleanField(label=label, required=False, initial=defaults[f.name], help_text=f.metadata["help"])
        else:
            form_fields[f.name] = forms.IntegerField(label=label, initial=defaults[f.name], help_text=f.metadata["help"])

    def clean(self):
        cleaned = forms.Form.clean(self)
        try:
            self.run_options = site_options(**cleaned)
        except InvalidOptions as error:
            raise forms.ValidationError(str(error)) from None
        return cleaned

    def options(self) -> RunOptions:
        return self.run_options

    return type("RetrainForm", (forms.Form,), {**form_fields, "clean": clean, "options": options})
