import torch

from recognizer.net import DigitNet
from training.trainer import blend


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
