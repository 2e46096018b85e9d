import numpy as np
import torch

from recognizer.modelfile import model_load
from recognizer.net import DigitNet
from training.nn.augment import Augment
from training.nn.data import Digits, mnist_load
from training.nn.inference import blend, probabilities
from training.nn.trainer import FitConfig, fit, look_alikes_find
from training.options import AUGMENT, RunOptions


def config(**chosen) -> FitConfig:
    recipe = RunOptions()
    values = dict(
        epochs=1, batch_size=128, lr=1e-2, mnist_per_epoch=0, distill=0.0, freeze_bn=False, bf16=False, seed=0, device="cpu", progress=False,
        weight_decay=recipe.weight_decay, label_smoothing=recipe.label_smoothing, softening=recipe.softening, warmup_share=recipe.warmup_share,
    )  # fmt: skip
    return FitConfig(**{**values, **chosen})


def _nets() -> tuple[DigitNet, DigitNet]:
    torch.manual_seed(0)
    start, end = DigitNet(width=8), DigitNet(width=8)
    for module in end.modules():  # batch norm's statistics differ too, as after a fine-tune without frozen statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.add_(1.0)
    return start, end


def test_blend_lies_the_kept_share_of_the_way_from_start_to_end_statistics_included():
    start, end = _nets()
    mixed = blend(start, end, keep=0.25)

    for name, value in mixed.state_dict().items():
        a, b = start.state_dict()[name], end.state_dict()[name]
        if value.is_floating_point():
            assert torch.allclose(value, a + 0.25 * (b - a), atol=1e-6), name
        else:
            assert torch.equal(value, b), name  # counters are not averaged


def test_blend_at_the_ends_is_either_net_and_leaves_both_untouched():
    start, end = _nets()
    before = {k: v.clone() for k, v in end.state_dict().items()}

    assert all(torch.allclose(v, start.state_dict()[k]) for k, v in blend(start, end, keep=0.0).state_dict().items() if v.is_floating_point())
    assert all(torch.allclose(v, before[k], atol=1e-6) for k, v in blend(start, end, keep=1.0).state_dict().items())
    assert all(torch.equal(v, before[k]) for k, v in end.state_dict().items())


def test_look_alikes_are_other_digits_the_model_finds_most_like_the_drawn_ones(mnist_dir, settings):
    net = model_load(path=settings.SHIPPED_MODEL).net
    mnist = mnist_load(data_dir=mnist_dir, train=False).take(slice(0, 2000))

    found = look_alikes_find(net, mnist, torch.tensor([1, 1]), per_drawing=5)

    assert len(found) == 10 and not (mnist.labels[found] == 1).any()
    likeness = probabilities(net, mnist.images)[:, 1]
    others = (mnist.labels != 1) & ~torch.isin(torch.arange(len(mnist)), found)
    assert likeness[found].min() >= likeness[others].max()  # the most 1-like of the non-1s
    both = look_alikes_find(net, mnist, torch.tensor([1, 1, 7]), per_drawing=5)
    assert set(found.tolist()) < set(both.tolist()) and len(both) == len(set(both.tolist())) <= 15
    assert len(look_alikes_find(net, mnist, torch.tensor([1]), per_drawing=0)) == 0


def test_a_run_of_only_a_few_steps_trains_whatever_their_number():
    # 5 steps once crashed the rate schedule (a warm-up of zero steps); tiny runs have 1 to 8.
    torch.manual_seed(0)
    digits = Digits(torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8), torch.arange(64) % 10)
    none = Digits(torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.long))
    for steps in range(1, 9):
        net = DigitNet(width=4)
        start = [p.detach().clone() for p in net.parameters()]
        result = fit(net, mnist=digits, extra=none, extra_repeats=0, val=digits, augment=Augment(**AUGMENT), config=config(batch_size=-(-64 // steps)))
        assert len(result.epochs) == 1 and np.isfinite(result.epochs[0].loss)
        assert any(not torch.equal(a, b) for a, b in zip(start, net.parameters())), f"{steps} steps changed nothing"


def _inverted_v() -> torch.Tensor:
    """٨, the Eastern Arabic 8, as a 28x28 input: MNIST has none, and the shipped model reads it as another digit."""
    import cv2

    image = np.zeros((28, 28), np.uint8)
    cv2.polylines(image, [np.array([[7, 24], [14, 4], [21, 24]], np.int32)], False, 255, 2, cv2.LINE_AA)
    return torch.from_numpy(image)


def test_a_fine_tune_learns_a_drawing_it_read_wrong_from_its_repeats_beside_mnist(mnist_dir, settings):
    shipped = model_load(path=settings.SHIPPED_MODEL).net
    mnist = mnist_load(data_dir=mnist_dir, train=True).take(slice(0, 512))
    drawing = Digits(_inverted_v().unsqueeze(0), torch.tensor([8]))
    assert probabilities(shipped, drawing.images).argmax().item() != 8  # wrong before

    tuned = config(epochs=2, lr=2e-3, distill=0.5, freeze_bn=True, bf16=True)
    result = fit(
        model_load(path=settings.SHIPPED_MODEL).net, mnist=mnist, extra=drawing, extra_repeats=128, val=mnist.take(slice(0, 100)),
        augment=Augment(**{**AUGMENT, "styles": 0.0}), config=tuned, teacher=shipped,
    )  # fmt: skip

    assert probabilities(result.best, drawing.images).argmax().item() == 8
    assert all(np.isfinite(report.loss) for report in result.epochs) and result.best_epoch in (1, 2)


def test_mnist_images_given_a_writing_style_follow_the_teacher_alone_in_a_fine_tune():
    from training.nn.augment import styles_marked
    from training.nn.trainer import _loss

    torch.manual_seed(0)
    net = DigitNet(width=8).eval()
    x, labels = torch.rand(6, 1, 28, 28), torch.tensor([1, 7, 1, 7, 3, 4])
    target = torch.softmax(torch.randn(6, 11), dim=1)
    styled = torch.tensor([True, True, False, False, False, False])
    mixed = _loss(net, x[:2], labels[:2], follows_teacher=torch.ones(2, dtype=torch.bool), target=target[:2], config=config(distill=0.9), teacher_only=styled[:2])
    teacher_alone = _loss(net, x[:2], labels[:2], follows_teacher=torch.ones(2, dtype=torch.bool), target=target[:2], config=config(distill=1.0))
    assert torch.allclose(mixed, teacher_alone)  # no label moves the line a style blurs (a lead-in 1 is half a 7)
    plain = _loss(net, x[2:], labels[2:], follows_teacher=torch.ones(4, dtype=torch.bool), target=target[2:], config=config(distill=0.9), teacher_only=styled[2:])
    assert not torch.allclose(plain, _loss(net, x[2:], labels[2:], follows_teacher=torch.ones(4, dtype=torch.bool), target=target[2:], config=config(distill=1.0)))
    # Only 1s and 7s are styled, and the mask says which.
    images, marked = styles_marked(torch.zeros(6, 1, 28, 28), labels, chance=1.0, gen=torch.Generator().manual_seed(0))
    assert marked.tolist() == [True, True, True, True, False, False]
