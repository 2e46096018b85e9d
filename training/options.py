"""Every choice a training run makes, with its default, in one dataclass.

`manage.py train_digits` makes its flags from `RunOptions` (`add_arguments`, `from_arguments`)
and the admin's "Retrain now" form makes its fields from the same dataclass (`form_class`), so
the command, the button and the benchmarks share one set of defaults and cannot disagree.
Each field's metadata holds its help text; `form=True` puts it on the admin's form.
"""

import argparse
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

from django.conf import settings


# From scratch, the classic levers (rotation, translation) and the writing styles only: with the
# geometric levers (slant, scale, stretch, elastic, stroke width) 8 runs left 152 pen digits
# wrong on average, without them 12 runs left 130 (README, "The shipped model").
FROM_SCRATCH_AUGMENT = {"slant": 0.0, "scale": (1.0, 1.0), "stretch": 0.0, "elastic": 0.0, "thicken": 0.0, "thin": 0.0}
# A fine-tune learns the users' own styles from their drawings; the synthetic lead-ins drawn on
# MNIST's 1s there moved the 1/7 line into MNIST's 7s, and without the geometric levers it
# fixed fewer of the users' other drawings (README, recipe table).
FINE_TUNE_AUGMENT = {"styles": 0.0}
FINE_TUNE_LR = 5e-4  # a fine-tune from a converged model: 1e-3 cost 0.2-0.4 MNIST points, 1e-4 learnt less (README)


def _option(default: Any, help: str, *, form: bool = False, flag: str | None = None, **argparse_extra) -> Any:
    return field(default=default, metadata={"help": help, "form": form, "flag": flag, "argparse": argparse_extra})


@dataclass(frozen=True)
class RunOptions:
    # What to train. The default fine-tunes the active model briefly (2 epochs: one halved the
    # error on the users' other drawings in 1 offline case of 5, two in 3): a fresh random part of
    # MNIST each epoch beside the oversampled corrections and the MNIST images most like them,
    # at a low peak rate, distilled from the active model, without the synthetic writing styles,
    # so it forgets little of what it knew (see the README's recipe table).
    epochs: int = _option(2, "passes over the training data", form=True)
    mnist_per_epoch: int = _option(
        40_000, "MNIST images drawn afresh at random for each epoch when fine-tuning (0, and always from scratch: all of them)"
    )
    from_scratch: bool = _option(False, "start from random weights instead of fine-tuning the active model", form=True)
    width: int = _option(32, "net width, with --from-scratch")
    lr: float = _option(0.0, "peak learning rate of the one-cycle schedule (0: 3e-3 from scratch, 5e-4 fine-tuning)")
    distill: float = _option(
        0.9, "weight of distillation from the active model on MNIST images when fine-tuning, 0 to 1 (0: plain labels only)"
    )
    keep: float = _option(
        1.0, "when fine-tuning, share of the way from the active model's weights to the fine-tuned ones that the new model keeps, 0 to 1"
    )
    freeze_bn: bool = _option(True, "keep batch norm's statistics as they are while fine-tuning")
    batch_size: int = _option(128, "images per optimiser step")
    augment: dict | None = _option(
        None,
        "augmentation overrides, e.g. styles=0,elastic=0.5 (default: none, except styles=0 when fine-tuning; see training/augment.py)",
    )
    # The users' drawings.
    use_feedback: bool = _option(True, "train on the users' drawings too, not only MNIST", flag="feedback")
    approved_only: bool = _option(False, "only approved samples (default: every one not rejected)", form=True)
    # 5%: up to 21 new corrections are each seen the most times allowed (100), as with 10%; with
    # 51 new ones, 10% cost 0.20 MNIST points offline and 5% 0.10, and 5% left 18 pen digits wrong, not 19 (README).
    feedback_share: float = _option(0.05, "share of each epoch made of the users' corrections, each seen at most 100 times")
    confirmed_share: float = _option(
        0.05, "share of each epoch made of the right guesses the users confirmed, each seen at most 100 times"
    )
    redraws: int = _option(
        0, "variants of each user's drawing drawn again from its strokes, each stroke moved a little (training/redraw.py); they share the drawing's repeats"
    )
    users_augment: float = _option(
        1.0, "strength of the augmentation of the users' drawings (turn, slant, scale, wobble, stroke width), MNIST's being 1 (0: none)"
    )
    look_alikes: int = _option(
        10, "when fine-tuning, MNIST images of other digits most like each correction, replayed as often in all as the corrections (0: none)"
    )
    relearn: bool = _option(
        False, "when fine-tuning, train again on the drawings the active model has already learnt (default: only new ones teach; learning the others again overfits them)"
    )
    holdout: float = _option(0.2, "share of the users' drawings held out to judge models with")
    twin: bool | None = _option(
        None,
        "when fine-tuning, train a twin without the held-out drawings on the same batches for the gate to judge, "
        "so the published model learns from them too (default: on where the processor computes bfloat16 natively "
        "or on a GPU; elsewhere the twin makes the default run about twice as long, over 3 minutes; "
        "off, and from scratch: the published model is judged and never trains on them)",
    )
    # The gate.
    mnist_tolerance: float = _option(0.1, "MNIST test points the new model may lose and still be promoted")
    users_tolerance: float = _option(
        1.0, "points the new model may lose on held-out confirmed drawings (right guesses) and still be promoted"
    )
    fallback_keep: float = _option(
        0.7,
        "when fine-tuning and the new model loses MNIST test beyond the tolerance, blends of the active model's weights and "
        "the new one's are judged by the same gate, keeping less of the new each time down to this share (0.9, 0.8, 0.7 for 0.7), "
        "and the first that passes is published instead (0: no second try)",
    )
    force: bool = _option(False, "promote the new model whatever the gate says", form=True)
    # Where and how.
    data_dir: str = _option("", "MNIST in torchvision's layout, downloaded there if missing (default: DIGITSITE_MNIST_DIR)")
    device: str = _option("auto", "auto takes cuda when there is one", choices=["auto", "cpu", "cuda"])
    precision: str = _option(
        "auto", "arithmetic of the training steps (auto: bfloat16 when fine-tuning where the processor computes it natively; "
        "float32 from scratch, as the shipped model was trained)",
        choices=["auto", "float32", "bfloat16"],
    )  # fmt: skip
    seed: int = _option(0, "seed for data order, augmentation and init")
    limit: int = _option(0, "train on only N MNIST images, for quick runs (0: all)")
    test_limit: int = _option(0, "judge on only the first N MNIST test images, for quick runs (0: all 10,000)")
    val_size: int = _option(5000, "MNIST training images held out to pick the best epoch")
    progress: bool = _option(True, "progress bars on the console")

    def resolved(self) -> "RunOptions":
        """Fill the defaults that depend on the machine or on other options."""
        import torch

        device = self.device if self.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        bf16 = native_bf16(device)
        return replace(
            self,
            precision=self.precision if self.precision != "auto" else ("bfloat16" if bf16 and not self.from_scratch else "float32"),
            twin=(bf16 if self.twin is None else self.twin) and not self.from_scratch and self.holdout > 0,
            lr=self.lr or (3e-3 if self.from_scratch else FINE_TUNE_LR),
            data_dir=self.data_dir or str(settings.MNIST_DIR),
            device=device,
            augment={**(FROM_SCRATCH_AUGMENT if self.from_scratch else FINE_TUNE_AUGMENT), **(self.augment or {})},
            distill=0.0 if self.from_scratch else self.distill,
            keep=1.0 if self.from_scratch else self.keep,
            fallback_keep=0.0 if self.from_scratch else self.fallback_keep,
            look_alikes=0 if self.from_scratch else self.look_alikes,
            relearn=self.relearn or self.from_scratch,
            freeze_bn=self.freeze_bn and not self.from_scratch,
            mnist_per_epoch=0 if self.from_scratch else self.mnist_per_epoch,
        )

    def mnist_epoch_size(self, available: int) -> int:
        """MNIST images an epoch draws from the `available` ones (`mnist_per_epoch`; 0: all)."""
        return min(self.mnist_per_epoch or available, available)

    def as_dict(self) -> dict:
        return asdict(self)


def native_bf16(device: str) -> bool:
    """Whether `device` computes bfloat16 in hardware; where it is emulated it is slower than float32."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    cpu = torch.cpu
    return any(getattr(cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def option_fields(*, form_only: bool = False):
    return [f for f in fields(RunOptions) if f.metadata["form"] or not form_only]


def default_of(f) -> Any:
    return f.default if f.default is not MISSING else f.default_factory()


# -- the command's flags --------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, *, parsers: dict[str, Any]) -> None:
    """One flag per option: `--name` from the field, bools as on/off switches. `parsers` maps
    a field name to a function that checks and converts its text (argparse's `type`)."""
    for f in option_fields():
        name = f.metadata["flag"] or f.name.replace("_", "-")
        default = default_of(f)
        help_text = f.metadata["help"] + (" (default: %(default)s)" if "default:" not in f.metadata["help"] else "")
        if f.type == bool | None:  # on, off, or None: chosen by resolved()
            parser.add_argument(f"--{name}", dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=f.metadata["help"])
            continue
        if f.type in (bool, "bool"):
            if default:
                parser.add_argument(f"--{name}", dest=f.name, action=argparse.BooleanOptionalAction, default=True, help=f.metadata["help"] + " (default: on)")
            else:
                off = "" if "default:" in f.metadata["help"] else " (default: off)"
                parser.add_argument(f"--{name}", dest=f.name, action="store_true", help=f.metadata["help"] + off)
            continue
        kind = parsers.get(f.name) or (f.type if f.type in (int, float, str) else str)
        parser.add_argument(f"--{name}", dest=f.name, type=kind, default=default, help=help_text, **f.metadata["argparse"])


def from_arguments(values: dict[str, Any]) -> RunOptions:
    return RunOptions(**{f.name: values[f.name] for f in option_fields() if f.name in values})


def site_options(**chosen) -> RunOptions:
    """Options for a run asked for in the admin: the defaults, then settings.TRAINING_OPTIONS
    (DIGITSITE_TRAINING_OPTIONS), then what the person chose."""
    return RunOptions(**{**settings.TRAINING_OPTIONS, **chosen})


# -- the admin's form -----------------------------------------------------------------------


def form_class():
    """A Django form with one field per option marked `form=True`, same defaults and help."""
    from django import forms

    form_fields = {}
    for f in option_fields(form_only=True):
        label = f.name.replace("_", " ").capitalize()
        if f.type in (bool, "bool"):
            form_fields[f.name] = forms.BooleanField(label=label, required=False, initial=f.default, help_text=f.metadata["help"])
        else:
            form_fields[f.name] = forms.IntegerField(label=label, min_value=1, max_value=100, initial=f.default, help_text=f.metadata["help"])

    def options(self) -> RunOptions:
        return site_options(**self.cleaned_data)

    return type("RetrainForm", (forms.Form,), {**form_fields, "options": options})
