import torch

from training.nn.calibration import calibration_error, temperature_fit


def overconfident(temperature: float, n: int = 20_000) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labels drawn from softmax(true logits); the model reports the logits `temperature` times too sharp."""
    gen = torch.Generator().manual_seed(0)
    true_logits = torch.randn(n, 10, generator=gen) * 2
    labels = torch.multinomial(true_logits.softmax(dim=1), 1, generator=gen).squeeze(1)
    return true_logits * temperature, true_logits, labels


def test_temperature_fit_recovers_how_overconfident_the_logits_are():
    logits, _, labels = overconfident(3.0)
    assert abs(temperature_fit(logits=logits, labels=labels) - 3.0) < 0.15


def test_temperature_fit_sharpens_underconfident_logits():
    logits, _, labels = overconfident(0.5)
    assert abs(temperature_fit(logits=logits, labels=labels) - 0.5) < 0.05


def test_calibration_error_is_small_when_calibrated_and_large_when_overconfident():
    logits, true_logits, labels = overconfident(3.0)
    calibrated = calibration_error(probabilities=true_logits.softmax(dim=1), labels=labels)
    sharp = calibration_error(probabilities=logits.softmax(dim=1), labels=labels)
    assert calibrated < 0.02 < 0.1 < sharp
    fitted = temperature_fit(logits=logits, labels=labels)
    assert calibration_error(probabilities=(logits / fitted).softmax(dim=1), labels=labels) < 0.02
