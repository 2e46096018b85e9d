"""Confidence that means what it says: temperature scaling (Guo et al., 2017).

A network trained with cross-entropy is overconfident on drawings unlike its training data:
before calibration a single tap read "0, 96% sure". One number, the temperature T, divides
the logits before the softmax; it is fitted on held-out MNIST training images by minimising
the negative log-likelihood, so the guess itself never changes, only how sure it claims to be.
"""

import torch
import torch.nn.functional as F


def temperature_fit(*, logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature that makes softmax(logits / T) fit `labels` best (NLL)."""
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)  # T = exp(log_t) stays positive
    logits, labels = logits.double(), labels.long()
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def nll() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(nll)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def calibration_error(*, probabilities: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """Expected calibration error: the gap between confidence and accuracy, averaged over
    equal-width confidence bins weighted by how many guesses fall in each."""
    confidence, guess = probabilities.max(dim=1)
    right = (guess == labels).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=confidence.dtype)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            error += in_bin.double().mean().item() * abs(confidence[in_bin].double().mean().item() - right[in_bin].mean().item())
    return error
