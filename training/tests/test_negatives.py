"""Drawings that are not digits: made from strokes by the serving code, never a digit's look-alike,
held out by font and seed; training, evaluation and the gate take their class."""

import numpy as np
import torch

from recognizer.labels import CLASSES, NOT_A_DIGIT
from recognizer.net import DigitNet
from recognizer.preprocessing import strokes_to_input
from training.nn.augment import Augment
from training.nn.data import Digits
from training.nn.negatives import (
    CHARACTERS, HELD_OUT_FONTS, LOOKS_LIKE_A_DIGIT, SCRIBBLES, SHAPES, TRAIN_FONTS, letter_strokes, negatives_make, strokes_bend,
)  # fmt: skip
from training.nn.trainer import fit
from training.options import AUGMENT, RunOptions
from training.runs.decision import Failure, decision_text
from training.runs.figures import confusion_png
from training.steps.evaluate import Readings, confusion
from training.steps.gate import decide
from training.tests.test_gate import NONE, run_data
from training.tests.test_trainer import config


def test_glyphs_that_look_like_digits_are_never_negatives():
    for character in "OoDIlZzSsbGBgq":
        assert character in LOOKS_LIKE_A_DIGIT and character not in CHARACTERS
    assert set("AkMxEHKLTWY#*") <= set(CHARACTERS)


def test_held_out_fonts_are_never_trained_on_and_each_draws_letters():
    assert not set(TRAIN_FONTS) & set(HELD_OUT_FONTS)
    for font in (*TRAIN_FONTS, *HELD_OUT_FONTS):
        assert letter_strokes(font=font, character="A"), font


def test_negatives_are_the_serving_codes_inputs_labelled_not_a_digit():
    made = negatives_make(fonts=("futural",), letter_copies=1, scribbles=len(SCRIBBLES), shapes=len(SHAPES), seed=0)
    assert len(made) == len(CHARACTERS) + len(SCRIBBLES) + len(SHAPES)
    assert made.digits.images.shape[1:] == (28, 28) and made.digits.images.dtype == torch.uint8
    assert (made.digits.labels == NOT_A_DIGIT).all()
    assert {kind.split(":")[0] for kind in made.kinds} == {"letter", "scribble", "shape"}
    # Exactly what the page's strokes become: the same strokes, bent by the same hand, drawn again.
    letters = negatives_make(fonts=("futural",), letter_copies=1, scribbles=0, shapes=0, seed=0)
    hand = np.random.default_rng(0)
    again = strokes_to_input(strokes_bend(letter_strokes(font="futural", character=CHARACTERS[0]), rng=hand, rotate=15.0)).image
    assert np.array_equal(letters.digits.images[0].numpy(), again)


def test_the_same_seed_makes_the_same_negatives_and_another_seed_others():
    one, two, other = (negatives_make(fonts=(), letter_copies=0, scribbles=6, shapes=6, seed=s).digits.images for s in (1, 1, 2))
    assert torch.equal(one, two) and not torch.equal(one, other)


def test_training_with_a_sample_labelled_not_a_digit_works():
    torch.manual_seed(0)
    digits = Digits(torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8), torch.arange(64) % 10)
    refused = Digits(torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8), torch.full((8,), NOT_A_DIGIT))
    net = DigitNet(width=4)
    result = fit(net, mnist=digits, extra=refused, extra_repeats=2, val=digits, augment=Augment(**AUGMENT), config=config())
    assert np.isfinite(result.epochs[0].loss)
    assert result.best(torch.zeros(2, 1, 28, 28)).shape == (2, CLASSES)


def test_confusion_grows_to_every_class_when_a_label_or_a_guess_is_not_a_digit():
    digits = Digits(torch.zeros(3, 28, 28, dtype=torch.uint8), torch.tensor([0, 1, NOT_A_DIGIT]))
    matrix = confusion(np.array([0, NOT_A_DIGIT, NOT_A_DIGIT]), digits)
    assert len(matrix) == CLASSES and matrix[1][NOT_A_DIGIT] == 1 and matrix[NOT_A_DIGIT][NOT_A_DIGIT] == 1
    assert len(confusion(np.array([0, 1]), digits.take(slice(0, 2)))) == 10  # as reports made before it
    assert confusion_png(matrix).startswith(b"\x89PNG")


def test_a_model_that_refuses_fewer_held_out_negatives_beyond_the_tolerance_and_beyond_chance_is_not_promoted():
    negatives = Digits(torch.zeros(100, 28, 28, dtype=torch.uint8), torch.full((100,), NOT_A_DIGIT))
    data = run_data(mnist_test=NONE)
    data = type(data)(**{**data.__dict__, "negatives_test": negatives})
    empty = np.zeros(0, np.int64)

    def reading(refused: int) -> Readings:
        return Readings(mnist=empty, corrections=empty, confirmed=empty, pen=empty, negatives=np.array([NOT_A_DIGIT] * refused + [4] * (100 - refused)))

    options = RunOptions(refusal_tolerance=2.0)
    lost = decide(data=data, before=reading(90), after=reading(80), options=options)
    assert not lost.promote and Failure.REFUSAL_WORSE in lost.failures  # 10 of 10 changed lost: 1 in 1,024 by chance
    assert "held-out not digits answered so 90% -> 80% (-10.00 points: 10 lost, 0 gained, by chance 0.098%" in decision_text(lost)
    by_chance = decide(data=data, before=reading(90), after=reading(87), options=options)
    assert by_chance.negatives.change == -3 and by_chance.promote  # beyond the tolerance, but 3 of 3 one way is 1 in 8
    held = decide(data=data, before=reading(90), after=reading(88), options=options)
    assert held.promote


def test_a_model_that_refuses_digits_has_its_not_a_digit_bias_lowered_until_at_most_the_allowed_share_is_refused():
    from training.steps.refusal import refusal_bias_limit, refusal_margins

    torch.manual_seed(0)
    net = DigitNet(width=4).eval()
    with torch.no_grad():
        net.head[3].bias[NOT_A_DIGIT] = 50.0  # refuses everything
    digits = Digits(torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8), torch.arange(40) % 10)
    assert (refusal_margins(net, digits.images) > 0).all()
    limited, lowered = refusal_bias_limit(net=net, digits=digits, max_refused=0.1)
    assert lowered > 0 and (refusal_margins(limited, digits.images) > 0).sum() <= 4
    assert torch.equal(limited.head[3].weight, net.head[3].weight) and net.head[3].bias[NOT_A_DIGIT] == 50.0  # a copy
    again, moved = refusal_bias_limit(net=limited, digits=digits, max_refused=0.1)
    assert abs(moved) < 2e-3  # set where it is already


def test_a_model_that_refuses_fewer_digits_than_allowed_has_its_not_a_digit_bias_raised_until_that_share_is_refused():
    from training.steps.refusal import refusal_bias_limit, refusal_margins

    torch.manual_seed(0)
    net = DigitNet(width=4).eval()
    with torch.no_grad():
        net.head[3].bias[NOT_A_DIGIT] = -50.0  # refuses nothing
        net.head[3].weight[NOT_A_DIGIT] *= 1000  # and the drawings' margins lie apart
    digits = Digits(torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8), torch.arange(40) % 10)
    assert (refusal_margins(net, digits.images) > 0).sum() == 0
    raised, lowered = refusal_bias_limit(net=net, digits=digits, max_refused=0.1)
    assert lowered < 0 and (refusal_margins(raised, digits.images) > 0).sum() == 4
