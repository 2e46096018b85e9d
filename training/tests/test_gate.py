"""The gate's rule, its fallback blends and its words, on typed decisions."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from recognizer.modelfile import model_load
from recognizer.pen_digits import PEN_DIGITS_PATH
from training.nn.data import Digits, mnist_load
from training.nn.guard import pen_guard
from training.nn.inference import blend, predictions
from training.options import RunOptions
from training.runs.decision import Decision, Failure, decision_text
from training.runs.presentation import clause_rows, decision_view
from training.steps.data import RunData
from training.steps.evaluate import Readings
from training.steps.gate import FALSE_REFUSAL_RATE, blend_keeps, decide, holm, judge, sign_test

NONE = Digits(torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long))


def run_data(
    *, mnist_test: Digits, corrections_test: Digits = NONE, confirmed_test: Digits = NONE, pen_guard: Digits = NONE,
    corrections_approved: list[bool] | None = None, confirmed_approved: list[bool] | None = None,
) -> RunData:  # fmt: skip
    """What the gate reads of a run: the judging sets, and which held-out drawings were approved."""
    empty = torch.zeros(0, dtype=torch.bool)

    def approved(flags: list[bool] | None, digits: Digits) -> torch.Tensor:
        return torch.tensor(flags if flags is not None else [False] * len(digits), dtype=torch.bool)

    return RunData(
        mnist_train=NONE, mnist_val=NONE, mnist_test=mnist_test, users_train=NONE, is_correction=empty, is_learnt=empty,
        train_sample_ids=[], corrections_test=corrections_test, confirmed_test=confirmed_test, pen_guard=pen_guard,
        corrections_approved=approved(corrections_approved, corrections_test), confirmed_approved=approved(confirmed_approved, confirmed_test),
        set_aside=0,
    )  # fmt: skip


def zeros(n: int) -> Digits:
    return Digits(torch.zeros(n, 28, 28, dtype=torch.uint8), torch.zeros(n, dtype=torch.long))


def digits(n: int) -> Digits:
    """n images, labelled 0 to 9 in turn."""
    return Digits(torch.zeros(n, 28, 28, dtype=torch.uint8), torch.arange(n) % 10)


def reading(*, mnist_wrong: int, corrections: list[int] = (), confirmed: list[int] = (), pen: list[int] = ()) -> Readings:
    """10,000 MNIST answers (all 0s, `mnist_wrong` of them 1s) and the other answers given."""
    mnist = np.zeros(10_000, dtype=np.int64)
    mnist[:mnist_wrong] = 1
    return Readings(
        mnist=mnist, corrections=np.array(corrections, dtype=np.int64), confirmed=np.array(confirmed, dtype=np.int64), pen=np.array(pen, dtype=np.int64)
    )


def answers(labels: torch.Tensor, *, wrong: dict[int, int] = {}) -> np.ndarray:
    """Right answers to `labels`, except the first `wrong[d]` drawings of each digit d read as (d + 1) % 10."""
    out = labels.numpy().copy()
    for digit, count in wrong.items():
        out[np.flatnonzero(out == digit)[:count]] = (digit + 1) % 10
    return out


def test_a_model_that_loses_exactly_the_tolerance_on_mnist_is_promoted_and_one_image_more_is_not():
    data = run_data(mnist_test=zeros(10_000))
    within = decide(data=data, before=reading(mnist_wrong=46), after=reading(mnist_wrong=56), options=RunOptions())
    assert within.promote and within.failures == ()  # 99.54% -> 99.44%: -0.1 points, though not in floating point
    beyond = decide(data=data, before=reading(mnist_wrong=46), after=reading(mnist_wrong=57), options=RunOptions())
    assert not beyond.promote and beyond.failures == (Failure.MNIST_WORSE,)
    assert beyond.mnist.right_before == 9954 and beyond.mnist.right_after == 9943 and beyond.mnist.count == 10_000


def test_held_out_corrections_must_improve_and_confirmed_ones_may_lose_only_their_tolerance():
    data = run_data(mnist_test=zeros(10_000), corrections_test=zeros(5), confirmed_test=zeros(100))
    before = reading(mnist_wrong=0, corrections=[1] * 5, confirmed=[0] * 100)
    better = decide(data=data, before=before, after=reading(mnist_wrong=0, corrections=[0, 1, 1, 1, 1], confirmed=[0] * 99 + [1]), options=RunOptions())
    assert better.promote and better.corrections.right_after == 1 and better.confirmed.change == pytest.approx(-1.0)
    same = decide(data=data, before=before, after=before, options=RunOptions())
    assert not same.promote and same.failures == (Failure.CORRECTIONS_NOT_BETTER,)
    worse = decide(data=data, before=before, after=reading(mnist_wrong=0, corrections=[0] * 5, confirmed=[0] * 98 + [1, 1]), options=RunOptions())
    assert not worse.promote and worse.failures == (Failure.CONFIRMED_WORSE,)
    forced = decide(data=data, before=before, after=before, options=RunOptions(force=True))
    assert forced.promote and forced.forced and forced.failures == (Failure.CORRECTIONS_NOT_BETTER,)


def test_the_first_model_is_promoted_with_nothing_to_compare_with():
    first = decide(data=run_data(mnist_test=zeros(10_000)), before=None, after=reading(mnist_wrong=100), options=RunOptions())
    assert first.promote and first.mnist.right_before is None and first.mnist.right_after == 9900
    assert "no active model to compare with" in decision_text(first)


def test_a_decision_survives_the_report_and_its_words_carry_every_figure():
    data = run_data(mnist_test=zeros(10_000), corrections_test=zeros(4))
    decision = decide(data=data, before=reading(mnist_wrong=46, corrections=[1, 1, 1, 1]), after=reading(mnist_wrong=50, corrections=[0, 0, 0, 1]), options=RunOptions())
    assert Decision.from_dict(decision.as_dict()) == decision
    text = decision_text(decision)
    # 4 images lost, none gained: 1 in 16 by chance, 1 in 8 over the two clauses tested (the whole and its only digit, 0).
    assert "MNIST test 99.54% -> 99.5% (-0.04 points: 4 lost, 0 gained, by chance 12%; tolerance 0.1)" in text
    assert "held-out corrections 0 -> 3 right of 4" in text and text.endswith("promoted.")


def test_blends_step_from_the_new_model_toward_the_active_one_down_to_the_least_kept():
    assert blend_keeps(least=0.7, steps=3) == [0.9, 0.8, 0.7]
    assert blend_keeps(least=0.05, steps=3) == [pytest.approx(0.683333), pytest.approx(0.366667), 0.05]


def test_a_new_model_that_loses_mnist_is_published_blended_back_toward_the_active_one_as_little_as_passes(mnist_dir, settings):
    active = model_load(path=settings.SHIPPED_MODEL).net
    torch.manual_seed(0)
    new = blend(active, type(active)(width=active.width, classes=active.classes), keep=0.6)  # most of the way to random weights: MNIST is lost
    test = mnist_load(data_dir=mnist_dir, train=False).take(slice(0, 1000))
    data = run_data(mnist_test=test)

    def read(net, who: str) -> Readings:
        return Readings(mnist=predictions(net, test).numpy(), corrections=np.zeros(0, np.int64), confirmed=np.zeros(0, np.int64), pen=np.zeros(0, np.int64))

    before, after, options = read(active, ""), read(new, ""), RunOptions(fallback_keep=0.01)  # the shipped model loses 2 of these 1,000 images 5% of the way to random weights
    decision, published, readings = judge(new=new, active=active, data=data, before=before, after=after, options=options, read=read, say=lambda text: None)

    assert decision.promote and decision.published == "blend" and decision.keep in blend_keeps(least=0.01, steps=3)
    assert decision.new_model_mnist_change < -options.mnist_tolerance
    expected = blend(active, new, keep=decision.keep).state_dict()
    assert all(torch.allclose(value, expected[name]) for name, value in published.state_dict().items())
    assert (readings.mnist == read(published, "").mnist).all()
    # Every blend that kept more of the new weights lost MNIST beyond the tolerance, the new model too.
    keeps = blend_keeps(least=0.01, steps=3)
    for more in [1.0, *keeps[: keeps.index(decision.keep)]]:
        assert not decide(data=data, before=before, after=read(blend(active, new, keep=more), ""), options=options).promote
    # The decision keeps every net it judged, in order, with what each failed, through the report.
    assert [net.keep for net in decision.tried] == [1.0, *keeps[: keeps.index(decision.keep) + 1]]
    assert all(Failure.MNIST_WORSE in net.failures for net in decision.tried[:-1]) and decision.tried[-1].promote
    assert Decision.from_dict(decision.as_dict()) == decision

    none_pass = RunOptions(fallback_keep=0.95)
    kept, net, _ = judge(new=new, active=active, data=data, before=before, after=after, options=none_pass, read=read, say=lambda text: None)
    assert not kept.promote and kept.published == "new" and net is new


# -- the trusted guards ------------------------------------------------------------------------


def test_a_model_that_loses_one_mnist_digit_beyond_its_tolerance_and_beyond_chance_is_not_promoted_though_the_mean_holds():
    test = digits(10_000)  # 1,000 of each digit
    data = run_data(mnist_test=test)
    before = Readings(mnist=answers(test.labels), corrections=np.zeros(0), confirmed=np.zeros(0), pen=np.zeros(0))
    within = decide(data=data, before=before, after=replace(before, mnist=answers(test.labels, wrong={1: 5})), options=RunOptions())
    assert within.promote and within.mnist_digits[1].change == pytest.approx(-0.5)  # exactly the tolerance
    # 12 1s lost while 12 2s the active model misread are gained.
    before_2s = replace(before, mnist=answers(test.labels, wrong={2: 12}))
    beyond = decide(data=data, before=before_2s, after=replace(before, mnist=answers(test.labels, wrong={1: 12})), options=RunOptions())
    assert beyond.mnist.change == 0 and not beyond.mnist.lost  # the mean holds
    # 12 of 12 changed 1s lost: 1 in 4,096 by chance; the smallest of 11 clauses (Holm): 11 times that.
    assert beyond.mnist_digits[1].chance == pytest.approx(11 * 2**-12)
    assert not beyond.promote and beyond.failures == (Failure.MNIST_DIGIT_WORSE,)
    assert "its worst digit 1 100% -> 98.8% (-1.20 points: 12 lost, 0 gained, by chance 0.27%; tolerance 0.5)" in decision_text(beyond)


def test_a_digit_loss_beyond_the_tolerance_that_chance_explains_is_promoted():
    test = digits(10_000)
    ones = np.flatnonzero(test.labels.numpy() == 1)
    before, after = test.labels.numpy().copy(), test.labels.numpy().copy()
    before[ones[:4]] = 2  # 4 of the 1s the active model misread, the new model reads right...
    after[ones[4:14]] = 2  # ...and 10 others it misreads: -0.6 points, beyond the 0.5 tolerance
    empty = np.zeros(0, np.int64)
    decision = decide(
        data=run_data(mnist_test=test), before=Readings(mnist=before, corrections=empty, confirmed=empty, pen=empty),
        after=Readings(mnist=after, corrections=empty, confirmed=empty, pen=empty), options=RunOptions(),
    )  # fmt: skip
    ones_clause = decision.mnist_digits[1]
    assert (ones_clause.worse, ones_clause.better) == (10, 4) and ones_clause.change == pytest.approx(-0.6)
    # 10 or more of 14 changed drawings go one way 9% of the time with even odds: chance, before any correction for the other clauses.
    assert ones_clause.chance > FALSE_REFUSAL_RATE and not ones_clause.lost
    assert decision.promote and decision.failures == ()


def test_unreviewed_held_out_corrections_cannot_carry_a_model_past_the_pen_guard():
    # The attack: held-out "corrections" of 1s as 7s, all the attacker's, read as 7 after the run.
    pen = digits(2_500)
    data = run_data(mnist_test=zeros(10_000), corrections_test=Digits(torch.zeros(30, 28, 28, dtype=torch.uint8), torch.full((30,), 7)), pen_guard=pen)
    before = reading(mnist_wrong=0, corrections=[1] * 30, pen=answers(pen.labels))
    after = reading(mnist_wrong=0, corrections=[7] * 30, pen=answers(pen.labels, wrong={1: 10}))  # 10 of 250 real 1s lost
    decision = decide(data=data, before=before, after=after, options=RunOptions())
    assert decision.corrections.right_after == 30 and decision.pen.change == pytest.approx(-0.4)
    assert not decision.promote and decision.failures == (Failure.PEN_WORSE, Failure.PEN_DIGIT_WORSE)
    # 10 of 10 changed drawings lost: 2^-10 by chance; Holm over 13 clauses (MNIST whole and its only digit, the pen guard whole and by digit).
    assert decision.pen.chance == pytest.approx(13 * 2**-10) and decision.pen_digits[1].chance == pytest.approx(13 * 2**-10)
    assert "pen guard set 100% -> 99.6% (-0.40 points: 10 lost, 0 gained, by chance 1.3%; tolerance 0.2), its worst digit 1 100% -> 96% (-4.00 points" in decision_text(decision)
    # The 1s lost while as many 2s are gained: the whole holds, the 1s do not.
    traded = answers(pen.labels, wrong={1: 10})
    traded_before = answers(pen.labels, wrong={2: 10})
    one_digit = decide(data=data, before=replace(before, pen=traded_before), after=replace(after, pen=traded), options=RunOptions())
    assert one_digit.pen.change == 0 and not one_digit.promote and one_digit.failures == (Failure.PEN_DIGIT_WORSE,)
    few = decide(data=data, before=before, after=replace(after, pen=answers(pen.labels, wrong={1: 3})), options=RunOptions())
    assert few.promote and few.pen_digits[1].change == pytest.approx(-1.2)  # beyond 1 point, but 3 of 3 one way is 1 in 8 by chance


def test_approved_held_out_drawings_decide_and_unreviewed_ones_only_inform():
    held = Digits(torch.zeros(10, 28, 28, dtype=torch.uint8), torch.full((10,), 7))
    data = run_data(mnist_test=zeros(10_000), corrections_test=held, corrections_approved=[True] * 5 + [False] * 5)
    before = reading(mnist_wrong=0, corrections=[1] * 10)
    approved_better = decide(data=data, before=before, after=reading(mnist_wrong=0, corrections=[7] + [1] * 9), options=RunOptions())
    assert approved_better.promote and approved_better.approved_corrections.right_after == 1
    text = decision_text(approved_better)
    assert "approved held-out corrections 0 -> 1 right of 5, which decide; all held-out corrections 0 -> 1 right of 10, which inform only" in text
    only_unreviewed_better = decide(data=data, before=before, after=reading(mnist_wrong=0, corrections=[1] * 5 + [7] * 5), options=RunOptions())
    assert not only_unreviewed_better.promote and only_unreviewed_better.failures == (Failure.CORRECTIONS_NOT_BETTER,)

    confirmed = Digits(torch.zeros(4, 28, 28, dtype=torch.uint8), torch.zeros(4, dtype=torch.long))
    data = run_data(mnist_test=zeros(10_000), confirmed_test=confirmed, confirmed_approved=[True, True, False, False])
    lost_unreviewed = decide(data=data, before=reading(mnist_wrong=0, confirmed=[0] * 4), after=reading(mnist_wrong=0, confirmed=[0, 0, 1, 1]), options=RunOptions())
    assert lost_unreviewed.promote and lost_unreviewed.confirmed.change == -50  # unreviewed: informs only
    lost_approved = decide(data=data, before=reading(mnist_wrong=0, confirmed=[0] * 4), after=reading(mnist_wrong=0, confirmed=[1, 0, 0, 0]), options=RunOptions())
    assert not lost_approved.promote and lost_approved.failures == (Failure.CONFIRMED_WORSE,)


def test_fewer_held_out_corrections_than_the_minimum_cannot_carry_a_promotion_and_hold_one_back_only_beyond_chance():
    minimum = RunOptions().min_held_out
    assert minimum == 5  # a sign test: 4 of 4 going the new model's way happens by chance 1 time in 16
    few = Digits(torch.zeros(minimum - 1, 28, 28, dtype=torch.uint8), torch.full((minimum - 1,), 7))
    data = run_data(mnist_test=zeros(10_000), corrections_test=few)
    before = reading(mnist_wrong=0, corrections=[7, 1, 1, 1])
    unchanged = decide(data=data, before=before, after=before, options=RunOptions())
    assert unchanged.promote and not unchanged.corrections_carry  # the guards decide
    text = decision_text(unchanged)
    assert "held-out corrections 1 -> 1 right of 4 (none reviewed yet): under the 5 needed to show an improvement" in text
    assert "so they can only hold the model back, when they got worse beyond chance, and the guards decide" in text and text.endswith("promoted.")
    # One of them going wrong, none right, happens by chance half the time: it holds nothing back
    # (it held back honest retrains that had halved their writers' errors).
    one_lost = decide(data=data, before=before, after=reading(mnist_wrong=0, corrections=[1, 1, 1, 1]), options=RunOptions())
    assert one_lost.promote and one_lost.failures == ()
    assert (one_lost.corrections.worse, one_lost.corrections.better, one_lost.corrections.chance) == (1, 0, 0.5)
    assert "held-out corrections 1 -> 0 right of 4 (1 lost, 0 gained, by chance 50%)" in decision_text(one_lost)
    # Where more are held out than carry a promotion, a loss beyond chance holds the model back:
    # 6 of 6 changed going wrong happens by chance 1 time in 64.
    eight = Digits(torch.zeros(8, 28, 28, dtype=torch.uint8), torch.full((8,), 7))
    options = RunOptions(min_held_out=10)
    data = run_data(mnist_test=zeros(10_000), corrections_test=eight)
    worse = decide(data=data, before=reading(mnist_wrong=0, corrections=[7] * 6 + [1] * 2), after=reading(mnist_wrong=0, corrections=[1] * 8), options=options)
    assert not worse.promote and worse.failures == (Failure.CORRECTIONS_WORSE,)
    assert "the held-out corrections got worse beyond chance" in decision_text(worse)
    # The guards still hold a model back whatever a few corrections say.
    data = run_data(mnist_test=zeros(10_000), corrections_test=few)
    guard_lost = decide(data=data, before=before, after=reading(mnist_wrong=20, corrections=[7, 7, 7, 7]), options=RunOptions())
    assert not guard_lost.promote and guard_lost.failures == (Failure.MNIST_WORSE,)


def test_from_the_minimum_on_the_held_out_corrections_must_improve_to_promote():
    minimum = RunOptions().min_held_out
    enough = Digits(torch.zeros(minimum, 28, 28, dtype=torch.uint8), torch.full((minimum,), 7))
    data = run_data(mnist_test=zeros(10_000), corrections_test=enough)
    before = reading(mnist_wrong=0, corrections=[1] * minimum)
    unchanged = decide(data=data, before=before, after=before, options=RunOptions())
    assert unchanged.corrections_carry and not unchanged.promote and unchanged.failures == (Failure.CORRECTIONS_NOT_BETTER,)
    better = decide(data=data, before=before, after=reading(mnist_wrong=0, corrections=[7] + [1] * (minimum - 1)), options=RunOptions())
    assert better.promote and "under the 5 needed" not in decision_text(better)


def test_two_approved_held_out_corrections_are_too_few_to_decide_though_many_unreviewed_are_held_out():
    held = Digits(torch.zeros(30, 28, 28, dtype=torch.uint8), torch.full((30,), 7))
    data = run_data(mnist_test=zeros(10_000), corrections_test=held, corrections_approved=[True, True] + [False] * 28)
    decision = decide(data=data, before=reading(mnist_wrong=0, corrections=[1] * 30), after=reading(mnist_wrong=0, corrections=[7, 7] + [1] * 28), options=RunOptions())
    assert decision.promote and decision.deciding_corrections.count == 2 and not decision.corrections_carry


def test_the_decision_says_how_many_held_out_drawings_it_rests_on():
    data = run_data(mnist_test=zeros(10_000), corrections_test=zeros(1), confirmed_test=zeros(3))
    decision = decide(data=data, before=reading(mnist_wrong=0, corrections=[1], confirmed=[0] * 3), after=reading(mnist_wrong=0, corrections=[0], confirmed=[0] * 3), options=RunOptions())
    assert decision.held_out_count == 4 and decision.promote
    text = decision_text(decision)
    assert text.startswith("Rests on 4 held-out drawings of the users' (1 correction, 3 confirmed).")
    assert "held-out corrections 0 -> 1 right of 1 (none reviewed yet): under the 5 needed to show an improvement" in text
    assert Decision.from_dict(decision.as_dict()) == decision


def test_a_decision_from_before_the_guards_still_loads_and_reads():
    old = {
        "promote": True, "failures": [], "published": "new", "keep": 1.0, "new_model_mnist_change": None, "forced": False,
        "mnist": {"right_before": 9954, "right_after": 9956, "count": 10000, "tolerance": 0.1},
        "corrections": {"right_before": 0, "right_after": 3, "count": 4, "tolerance": None},
        "confirmed": {"right_before": 0, "right_after": 0, "count": 0, "tolerance": 1.0},
    }  # fmt: skip
    decision = Decision.from_dict(old)
    assert decision.pen.count == 0 and decision.mnist_digits == () and decision.deciding_corrections == decision.corrections
    assert decision_text(decision) == (
        "MNIST test 99.54% -> 99.56% (+0.02 points, tolerance 0.1); held-out corrections 0 -> 3 right of 4 (none reviewed yet); "
        "no held-out confirmed: promoted."
    )


def test_the_pen_guard_set_ships_as_plain_arrays_and_the_shipped_model_reads_it_as_the_site_does(settings):
    with np.load(PEN_DIGITS_PATH, allow_pickle=False) as arrays:  # no pickles: plain arrays only
        assert sorted(set(arrays["writers"].tolist())) == list(range(3, 31, 3))  # writers 3, 6, ..., 30 only
    guard = pen_guard()
    assert len(guard) == 2498 and min(np.bincount(guard.labels.numpy())) >= 239
    read = predictions(model_load(path=settings.SHIPPED_MODEL).net, guard).numpy()
    assert (read == guard.labels.numpy()).mean() > 0.98  # real pen digits, rendered by the serving preprocessing


def test_a_new_model_that_loses_the_pen_guard_beyond_chance_is_refused_and_no_blend_is_tried(settings):
    active = model_load(path=settings.SHIPPED_MODEL).net
    torch.manual_seed(0)
    new = blend(active, type(active)(width=active.width, classes=active.classes), keep=0.5)  # half way to random weights: real pen drawings are lost
    guard = pen_guard()
    data = run_data(mnist_test=NONE, pen_guard=guard)
    reads = []

    def read(net, who: str) -> Readings:
        reads.append(who)
        empty = np.zeros(0, np.int64)
        return Readings(mnist=empty, corrections=empty, confirmed=empty, pen=predictions(net, guard).numpy())

    before, after, options = read(active, "active"), read(new, "new"), RunOptions(fallback_keep=0.05)
    decision, published, _ = judge(new=new, active=active, data=data, before=before, after=after, options=options, read=read, say=lambda text: None)
    assert Failure.PEN_WORSE in decision.failures and not decision.promote and published is new
    assert [d.keep for d in decision.tried] == [1.0] and reads == ["active", "new"]  # no blend was read
    view = decision_view(decision=decision, version="new", base_version="active", active_version="active")  # the run page says why
    assert view.tried_note.startswith("No blend was tried: the new model read real pen drawings of the guard set worse beyond chance")


def test_a_blend_must_bring_a_digit_the_new_model_lost_beyond_chance_within_its_tolerance():
    test = digits(10_000)  # 1,000 of each digit, as MNIST test has about
    data = run_data(mnist_test=test)
    empty = np.zeros(0, np.int64)

    def mnist_reading(wrong_4s: int) -> Readings:
        return Readings(mnist=answers(test.labels, wrong={4: wrong_4s}), corrections=empty, confirmed=empty, pen=empty)

    before, options = mnist_reading(0), RunOptions(fallback_keep=0.7)
    readings = {"the new model": mnist_reading(14), "0.9": mnist_reading(6), "0.8": mnist_reading(2)}  # 14 4s lost, then 6, then 2

    def read(net, who: str) -> Readings:
        return readings[str(net)]

    class Named(torch.nn.Module):  # a stand-in net whose blends are named by their share
        def __init__(self, name: str):
            super().__init__()
            self.name, self.classes = name, 10

        def __str__(self) -> str:
            return self.name

    new_alone = decide(data=data, before=before, after=readings["the new model"], options=options)
    assert new_alone.mnist_digits[4].lost  # 14 of 14 changed 4s: beyond chance, even over every clause
    # 6 of 6 is chance over the 11 clauses (Holm: 11 / 64): judged alone, the 90% blend would pass.
    assert not decide(data=data, before=before, after=readings["0.9"], options=options).mnist_digits[4].lost

    from training.steps import gate

    def named_blend(active, new, *, keep: float):
        return Named(f"{keep:.1f}")

    original = gate.blend
    gate.blend = named_blend
    try:
        decision, published, _ = judge(
            new=Named("the new model"), active=Named("active"), data=data, before=before, after=readings["the new model"], options=options,
            read=read, say=lambda text: None,
        )  # fmt: skip
    finally:
        gate.blend = original
    assert [d.keep for d in decision.tried] == [1.0, 0.9, 0.8]
    refused_blend = decision.tried[1]
    assert refused_blend.mnist_digits[4].proven and refused_blend.mnist_digits[4].lost and not refused_blend.promote
    assert "a loss the new model showed real" in decision_text(refused_blend)
    assert decision.promote and decision.keep == 0.8 and str(published) == "0.8"  # 2 lost of 1,000: -0.2 points, within the tolerance of 0.5


# -- worse, or chance? -------------------------------------------------------------------------


def test_the_sign_test_is_the_chance_of_losing_at_least_that_many_changed_drawings_with_even_odds():
    assert sign_test(worse=9, better=0) == 2**-9
    assert sign_test(worse=7, better=1) == pytest.approx((8 + 1) / 2**8)
    assert sign_test(worse=0, better=0) == 1.0 and sign_test(worse=2, better=6) > 0.5
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])  # 4 x 0.01, then 3 x 0.03, never less than before


def test_models_that_change_nothing_are_refused_at_most_at_the_false_refusal_rate_over_every_clause():
    """A simulated no-op retrain: on each of 23 clauses some drawings change, each lost or gained
    with even odds. Tested one by one, some clause fails most of the time; corrected, at most 1 in 20."""
    rng = np.random.default_rng(0)
    trials, refused_corrected, refused_raw = 2_000, 0, 0
    for _ in range(trials):
        changed = rng.integers(0, 30, size=23)
        worse = rng.binomial(changed, 0.5)
        chances = [sign_test(worse=int(w), better=int(n - w)) for w, n in zip(worse, changed)]
        refused_corrected += min(holm(chances)) <= FALSE_REFUSAL_RATE
        refused_raw += min(chances) <= FALSE_REFUSAL_RATE
    assert refused_corrected / trials <= FALSE_REFUSAL_RATE
    assert refused_raw / trials > 0.3


@pytest.fixture(scope="module")
def judged(mnist_dir):
    """The shipped model's judging sets, as a run reads them: MNIST test, the pen guard and the held-out not-digits."""
    from training.nn.negatives import negatives_held_out

    test = mnist_load(data_dir=mnist_dir, train=False)
    data = replace(run_data(mnist_test=test, pen_guard=pen_guard()), negatives_test=negatives_held_out().digits)

    def read(net) -> Readings:
        empty = np.zeros(0, np.int64)
        return Readings(
            mnist=predictions(net, test).numpy(), corrections=empty, confirmed=empty, pen=predictions(net, data.pen_guard).numpy(),
            negatives=predictions(net, data.negatives_test).numpy(),
        )  # fmt: skip

    return data, read


def test_a_retrain_that_changes_nothing_passes_the_gate(settings, judged):
    data, read = judged
    active = model_load(path=settings.SHIPPED_MODEL).net
    # What a retrain that learnt nothing leaves: every weight moved a little at random (2% of its
    # spread), so drawings near a boundary change both ways, by chance alone.
    torch.manual_seed(1)
    same = blend(active, active, keep=1.0)
    with torch.no_grad():
        for weights in same.parameters():
            weights.add_(torch.randn_like(weights) * weights.std() * 0.02)
    decision = decide(data=data, before=read(active), after=read(same), options=RunOptions())
    clauses = [decision.mnist, *decision.mnist_digits, decision.pen, *decision.pen_digits, decision.negatives]
    assert len(clauses) == 23 and sum(c.worse + c.better for c in clauses) > 50  # it did change answers
    # Here the pen guard's 1s lose 3 of their 259 (-1.16 points), past the 1-point tolerance
    # that alone refused such a model before issue 37; 3 of 3 one way is 1 in 8.
    assert decision.promote and decision.failures == ()
    assert all(c.chance > FALSE_REFUSAL_RATE for c in clauses)


def test_a_model_that_loses_real_pen_1s_beyond_chance_is_refused(settings, judged):
    data, read = judged
    active = model_load(path=settings.SHIPPED_MODEL).net
    fewer_ones = blend(active, active, keep=1.0)
    with torch.no_grad():
        fewer_ones.head[3].bias[1] -= 1.5  # the model answers 1 less readily: real 1s it read right are lost
    decision = decide(data=data, before=read(active), after=read(fewer_ones), options=RunOptions())
    ones = decision.pen_digits[1]
    assert ones.worse >= 12 and ones.better == 0 and ones.chance <= FALSE_REFUSAL_RATE and ones.lost
    assert not decision.promote and Failure.PEN_DIGIT_WORSE in decision.failures
    rows = {row.clause: row for row in clause_rows(decision)}
    assert rows["pen guard set, digit 1"].failed and "lost, 0 gained" in rows["pen guard set, digit 1"].change
    assert not any(row.failed for name, row in rows.items() if name.startswith("pen guard set, digit") and name != "pen guard set, digit 1")


def test_every_clause_of_the_decision_is_a_row_with_its_figures_and_old_reports_keep_their_tolerance_rule():
    pen = digits(2_500)
    data = run_data(mnist_test=zeros(10_000), corrections_test=zeros(5), pen_guard=pen)
    before = reading(mnist_wrong=0, corrections=[1] * 5, pen=answers(pen.labels))
    decision = decide(data=data, before=before, after=reading(mnist_wrong=0, corrections=[0] + [1] * 4, pen=answers(pen.labels, wrong={3: 20})), options=RunOptions())
    rows = clause_rows(decision)
    assert [r.clause for r in rows][:2] == ["MNIST test", "MNIST test, each digit"] and rows[2].clause == "pen guard set"
    corrections = next(r for r in rows if r.clause.startswith("held-out corrections"))
    assert not corrections.failed and corrections.allowed == "must improve"
    threes = next(r for r in rows if r.clause == "pen guard set, digit 3")
    assert (threes.before, threes.after, threes.failed) == ("100%", "92%", True) and threes.comparison.worse == 20
    assert threes.change.endswith(": 20 lost, 0 gained") and "or more by chance" in threes.allowed and "fails under 5%" in threes.allowed
    assert [r.clause for r in rows if r.failed] == ["pen guard set", "pen guard set, digit 3"]
    # A report from before the sign test: its comparisons carry no counts, and the tolerance alone says what was lost.
    old = Decision.from_dict({**decision.as_dict(), "pen_digits": [{"right_before": 250, "right_after": 247, "count": 250, "tolerance": 1.0}] * 10})
    old_rows = [r for r in clause_rows(old) if r.clause.startswith("pen guard set, digit")]
    assert all(c.chance is None and c.lost for c in old.pen_digits) and len(old_rows) == 10 and all(r.failed for r in old_rows)
    assert all("by chance" not in r.allowed and "gained" not in r.change for r in old_rows)
