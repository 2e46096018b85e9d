import torch

from recognizer.net import DigitNet
from recognizer.registry import model_load
from training.data import mnist_load
from training.trainer import blend, look_alikes_find, probabilities


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
