import torch

from training.nn.augment import Augment, add_styles, stroke_width, warp
from training.options import AUGMENT


def digits(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.zeros(n, 1, 28, 28)
    images[:, :, 5:23, 13:15] = 1.0  # a vertical bar: a plain "1"
    return images, torch.arange(n) % 10


def test_augment_keeps_shape_and_range_and_is_reproducible_with_a_seed():
    images, labels = digits()
    first = Augment(**AUGMENT)(images, labels, torch.Generator().manual_seed(1))
    again = Augment(**AUGMENT)(images, labels, torch.Generator().manual_seed(1))
    other = Augment(**AUGMENT)(images, labels, torch.Generator().manual_seed(2))
    assert first.shape == images.shape and first.dtype == images.dtype
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_augment_changes_images_but_keeps_most_ink_in_frame():
    images, labels = digits()
    out = Augment(**{**AUGMENT, "styles": 0})(images, labels, torch.Generator().manual_seed(0))
    assert not torch.allclose(out, images)
    ratio = out.sum(dim=(1, 2, 3)) / images.sum(dim=(1, 2, 3))
    assert (ratio > 0.4).all() and (ratio < 3).all()


def test_warp_without_any_change_is_the_identity():
    images, _ = digits(4)
    still = Augment(**{**AUGMENT, "rotate": 0, "slant": 0, "scale": (1, 1), "stretch": 0, "translate": 0, "elastic": 0})
    assert torch.allclose(warp(images, still, torch.Generator().manual_seed(0)), images, atol=1e-5)


def test_stroke_width_thickens_and_thins():
    images, _ = digits(8)
    thick = stroke_width(images, thicken=1, thin=0, gen=torch.Generator().manual_seed(0))
    thin = stroke_width(images, thicken=0, thin=1, gen=torch.Generator().manual_seed(0))
    assert (thick.sum(dim=(1, 2, 3)) > images.sum(dim=(1, 2, 3))).all()
    assert (thin.sum(dim=(1, 2, 3)) < images.sum(dim=(1, 2, 3))).all()


def test_styles_add_a_stroke_to_ones_and_sevens_only():
    images, labels = digits(40)
    styled = add_styles(images, labels, chance=1.0, gen=torch.Generator().manual_seed(0))
    changed = (styled - images).abs().sum(dim=(1, 2, 3)) > 1
    assert torch.equal(changed, (labels == 1) | (labels == 7))
    # The lead-in of a 1 starts at its top and goes down to the left.
    lead_in = (styled - images)[labels == 1][0, 0]
    rows, cols = torch.nonzero(lead_in > 0.5, as_tuple=True)
    assert rows.min() >= 5 and cols.max() <= 14 and cols.min() < 11
