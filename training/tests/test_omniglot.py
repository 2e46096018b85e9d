"""Real handwritten negatives (training.nn.omniglot): read from the published zip beside the checkout,
kept with the code unchanged, split by writer and alphabet, never a digit's look-alike."""

import numpy as np
import pytest

from recognizer.labels import NOT_A_DIGIT
from recognizer.preprocessing import strokes_simplify, strokes_to_input
from tools.omniglot_pack import DEFAULT_ZIP, OmniglotMissing, omniglot_read, omniglot_zip_path
from training.nn.omniglot import (
    ALPHABETS, CANVAS, HELD_OUT_ALPHABET, HELD_OUT_DRAWERS, LOOKS_LIKE_A_DIGIT, layout, negatives_of,
    omniglot_drawings, omniglot_held_out, omniglot_train,
)  # fmt: skip


@pytest.fixture(scope="module")
def from_zip():
    return omniglot_read(DEFAULT_ZIP)


def test_the_loader_reads_the_published_zip_from_shared_beside_the_checkout(from_zip):
    assert DEFAULT_ZIP.parts[-3:] == ("shared", "omniglot", "strokes_background_small1.zip")
    assert len(from_zip) == 2720
    assert {d.alphabet for d in from_zip} == set(ALPHABETS)
    assert {d.drawer for d in from_zip} == set(range(1, 21))
    latin = [d for d in from_zip if d.alphabet == "Latin"]
    assert len(latin) == 520 and {d.character for d in latin} == set(range(1, 27))


def test_the_loader_turns_omniglots_upward_y_down_as_on_a_canvas(from_zip):
    # Latin character 12 is an "l": drawn top to bottom, so on a canvas its y grows along the stroke.
    ells = [d for d in from_zip if d.alphabet == "Latin" and d.character == 12]
    downward = [d.strokes[0][-1, 1] > d.strokes[0][0, 1] for d in ells]
    assert sum(downward) >= 15, downward


def test_the_drawings_kept_with_the_code_are_the_zips_own(from_zip):
    kept = omniglot_drawings()
    assert [(d.alphabet, d.character, d.drawer) for d in kept] == [(d.alphabet, d.character, d.drawer) for d in from_zip]
    for a, b in zip(kept, from_zip):
        assert len(a.strokes) == len(b.strokes)
        assert max(np.abs(s - t).max() for s, t in zip(a.strokes, b.strokes)) <= 0.05 + 1e-9  # a tenth of a pixel, rounded


def test_a_missing_zip_fails_with_a_message_naming_where_it_was_looked_for(tmp_path, settings):
    missing = tmp_path / "nowhere" / "strokes.zip"
    with pytest.raises(OmniglotMissing, match=str(missing)):
        omniglot_read(missing)
    settings.OMNIGLOT_STROKES = missing
    assert omniglot_zip_path() == missing
    with pytest.raises(OmniglotMissing, match="DIGITSITE_OMNIGLOT_STROKES"):
        omniglot_read()


def test_letters_read_as_digits_are_never_negatives():
    for character in (2, 7, 9, 12, 15, 17, 19, 26):  # b g i l o q s z
        assert ("Latin", character) in LOOKS_LIKE_A_DIGIT
    kept = {(d.alphabet, d.character) for d in negatives_of(omniglot_drawings())}
    assert not kept & set(LOOKS_LIKE_A_DIGIT)
    assert {("Latin", 1), ("Latin", 11), ("Latin", 8), ("Latin", 23)} <= kept  # a, k, h, w


def test_no_held_out_writer_and_nothing_of_the_held_out_alphabet_is_trained_on():
    negatives = negatives_of(omniglot_drawings())
    training = [d for d in negatives if not d.held_out]
    assert all(d.alphabet != HELD_OUT_ALPHABET and d.drawer not in HELD_OUT_DRAWERS for d in training)
    assert len(omniglot_train(copies=1)) == len(training)
    _, sources = omniglot_held_out()
    assert {d.alphabet for d in sources} == set(ALPHABETS)
    assert {d.drawer for d in sources if d.alphabet != HELD_OUT_ALPHABET} == set(HELD_OUT_DRAWERS)
    assert {d.drawer for d in sources if d.alphabet == HELD_OUT_ALPHABET} == set(range(1, 21))


def test_held_out_characters_are_the_serving_codes_inputs_of_their_strokes_on_the_canvas():
    digits, sources = omniglot_held_out()
    assert (digits.labels == NOT_A_DIGIT).all() and len(digits) == len(sources)
    placed = layout(sources[0], seed=1_000_003)
    points = np.concatenate(placed)
    assert points.min() >= 0 and points.max() <= CANVAS
    assert 0.25 * CANVAS - 1 <= np.ptp(points, axis=0).max() <= 0.8 * CANVAS + 1
    assert np.array_equal(digits.images[0].numpy(), strokes_to_input(strokes_simplify(placed)).image)
