"""The gate's rule, its fallback blends and its words, on typed decisions."""

import numpy as np
import pytest
import torch

from recognizer.modelfile import model_load
from training.data import Digits, mnist_load
from training.decision import Decision, Failure, decision_text
from training.evaluate import Readings
from training.gate import blend_keeps, decide, judge
from training.options import RunOptions
from training.run_data import RunData
from training.trainer import blend, predictions

NONE = Digits(torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long))


def run_data(*, mnist_test: Digits, corrections_test: Digits = NONE, confirmed_test: Digits = NONE) -> RunData:
    """What the gate reads of a run: the three judging sets."""
    empty = torch.zeros(0, dtype=torch.bool)
    return RunData(
        mnist_train=NONE, mnist_val=NONE, mnist_test=mnist_test, users_train=NONE, is_correction=empty, is_learnt=empty,
        train_sample_ids=[], corrections_test=corrections_test, confirmed_test=confirmed_test,
    )  # fmt: skip


def zeros(n: int) -> Digits:
    return Digits(torch.zeros(n, 28, 28, dtype=torch.uint8), torch.zeros(n, dtype=torch.long))


def reading(*, mnist_wrong: int, corrections: list[int] = (), confirmed: list[int] = ()) -> Readings:
    """10,000 MNIST answers (all 0s, `mnist_wrong` of them 1s) and the held-out answers given."""
    mnist = np.zeros(10_000, dtype=np.int64)
    mnist[:mnist_wrong] = 1
    return Readings(mnist=mnist, corrections=np.array(corrections, dtype=np.int64), confirmed=np.array(confirmed, dtype=np.int64))


def test_a_model_that_loses_exactly_the_tolerance_on_mnist_is_promoted_and_one_image_more_is_not():
    data = run_data(mnist_test=zeros(10_000))
    within = decide(data=data, before=reading(mnist_wrong=46), after=reading(mnist_wrong=56), options=RunOptions())
    assert within.promote and within.failures == ()  # 99.54% -> 99.44%: -0.1 points, though not in floating point
    beyond = decide(data=data, before=reading(mnist_wrong=46), after=reading(mnist_wrong=57), options=RunOptions())
    assert not beyond.promote and beyond.failures == (Failure.MNIST_WORSE,)
    assert beyond.mnist.right_before == 9954 and beyond.mnist.right_after == 9943 and beyond.mnist.count == 10_000


def test_held_out_corrections_must_improve_and_confirmed_ones_may_lose_only_their_tolerance():
    data = run_data(mnist_test=zeros(10_000), corrections_test=zeros(2), confirmed_test=zeros(100))
    before = reading(mnist_wrong=0, corrections=[1, 1], confirmed=[0] * 100)
    better = decide(data=data, before=before, after=reading(mnist_wrong=0, corrections=[0, 1], confirmed=[0] * 99 + [1]), options=RunOptions())
    assert better.promote and better.corrections.right_after == 1 and better.confirmed.change == pytest.approx(-1.0)
    same = decide(data=data, before=before, after=before, options=RunOptions())
    assert not same.promote and same.failures == (Failure.CORRECTIONS_NOT_BETTER,)
    worse = decide(data=data, before=before, after=reading(mnist_wrong=0, corrections=[0, 0], confirmed=[0] * 98 + [1, 1]), options=RunOptions())
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
    assert "MNIST test 99.54% -> 99.5% (-0.04 points, tolerance 0.1)" in text
    assert "held-out corrections 0 -> 3 right of 4" in text and text.endswith("promoted.")


def test_blends_step_from_the_new_model_toward_the_active_one_down_to_the_least_kept():
    assert blend_keeps(least=0.7) == [0.9, 0.8, 0.7]
    assert blend_keeps(least=0.05) == [pytest.approx(0.683333), pytest.approx(0.366667), 0.05]


def test_a_new_model_that_loses_mnist_is_published_blended_back_toward_the_active_one_as_little_as_passes(mnist_dir, settings):
    active = model_load(path=settings.SHIPPED_MODEL).net
    torch.manual_seed(0)
    new = blend(active, type(active)(width=active.width), keep=0.6)  # most of the way to random weights: MNIST is lost
    test = mnist_load(data_dir=mnist_dir, train=False).take(slice(0, 1000))
    data = run_data(mnist_test=test)

    def read(net, who: str) -> Readings:
        return Readings(mnist=predictions(net, test).numpy(), corrections=np.zeros(0, np.int64), confirmed=np.zeros(0, np.int64))

    before, after, options = read(active, ""), read(new, ""), RunOptions(fallback_keep=0.05)
    decision, published, readings = judge(new=new, active=active, data=data, before=before, after=after, options=options, read=read, say=lambda text: None)

    assert decision.promote and decision.published == "blend" and decision.keep in blend_keeps(least=0.05)
    assert decision.new_model_mnist_change < -options.mnist_tolerance
    expected = blend(active, new, keep=decision.keep).state_dict()
    assert all(torch.allclose(value, expected[name]) for name, value in published.state_dict().items())
    assert (readings.mnist == read(published, "").mnist).all()
    # Every blend that kept more of the new weights lost MNIST beyond the tolerance, the new model too.
    keeps = blend_keeps(least=0.05)
    for more in [1.0, *keeps[: keeps.index(decision.keep)]]:
        assert not decide(data=data, before=before, after=read(blend(active, new, keep=more), ""), options=options).promote

    none_pass = RunOptions(fallback_keep=0.95)
    kept, net, _ = judge(new=new, active=active, data=data, before=before, after=after, options=none_pass, read=read, say=lambda text: None)
    assert not kept.promote and kept.published == "new" and net is new
