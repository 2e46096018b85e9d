"""Batched augmentation: MNIST digits made to look like digits people draw on a screen.

Everything works on whole batches of tensors, (N, 1, 28, 28) in [0, 1], with one resampling
per batch: per-image transforms in DataLoader workers are the bottleneck on a 2-core machine.

What each step is for:
- geometry (rotation, slant, scale, translation, elastic wobble): people tilt, lean and size
  their digits differently from MNIST's writers, and a mouse or finger wobbles;
- stroke width: a canvas pen is one width, thin for a digit drawn large, thick for one drawn
  small, while MNIST's pen varied from writer to writer;
- writing styles MNIST rarely shows (`add_styles`): a "1" with a lead-in stroke and a crossed
  "7", as taught in much of Europe, drawn onto MNIST's own 1s and 7s in their own stroke width.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """How much a batch is augmented, and the augmentation itself. Every setting comes in from the
    run's options (`RunOptions.augmentation`: training.options.AUGMENT, the preset's, the run's)."""

    rotate: float  # degrees, either way
    slant: float  # horizontal shear, either way
    scale: tuple[float, float]
    stretch: float  # independent change of width against height
    translate: float  # share of the image, either way
    elastic: float  # pixels of smooth random displacement
    elastic_sigma: float  # pixels; how smooth that displacement is
    thicken: float  # chance to thicken the strokes by up to one pixel ...
    thin: float  # ... or to thin them
    styles: float  # chance that a 1 gets a lead-in stroke, a 7 a crossbar

    def __call__(self, images: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return self.marked(images, labels, gen)[0]

    def marked(self, images: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The augmented batch, and which of its images were given a writing style (a fine-tune
        lets only its teacher say what those are: training.nn.trainer)."""
        images, styled = styles_marked(images, labels, self.styles, gen)
        images = stroke_width(images, self.thicken, self.thin, gen)
        return warp(images, self, gen), styled


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def warp(images: torch.Tensor, aug: Augment, gen: torch.Generator) -> torch.Tensor:
    """One random affine map plus a smooth elastic field per image, in one grid_sample."""
    n, device = images.shape[0], images.device
    angle = _uniform(n, -aug.rotate, aug.rotate, gen, device) * math.pi / 180
    slant = _uniform(n, -aug.slant, aug.slant, gen, device)
    scale = _uniform(n, *aug.scale, gen, device)
    stretch = _uniform(n, -aug.stretch, aug.stretch, gen, device)
    # The grid maps output to input coordinates, so dividing by the scale enlarges the digit.
    sx, sy = 1 / (scale * (1 + stretch)), 1 / (scale * (1 - stretch))
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = cos * sx
    theta[:, 0, 1] = (slant * cos - sin) * sy
    theta[:, 1, 0] = sin * sx
    theta[:, 1, 1] = (slant * sin + cos) * sy
    theta[:, :, 2] = _uniform(2 * n, -2 * aug.translate, 2 * aug.translate, gen, device).view(n, 2)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    if aug.elastic > 0:
        grid = grid + _elastic_field(images, aug.elastic, aug.elastic_sigma, gen)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _elastic_field(images: torch.Tensor, alpha: float, sigma: float, gen: torch.Generator) -> torch.Tensor:
    """Smoothed random displacement (Simard et al. 2003), in grid units, shape (N, H, W, 2)."""
    n, _, h, w = images.shape
    noise = torch.rand(n, 2, h, w, generator=gen, device=images.device) * 2 - 1
    radius = int(2 * sigma)
    x = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    # Separable blur; each channel (dx, dy) on its own.
    field = F.conv2d(noise.view(2 * n, 1, h, w), kernel.view(1, 1, 1, -1), padding=(0, radius))
    field = F.conv2d(field, kernel.view(1, 1, -1, 1), padding=(radius, 0)).view(n, 2, h, w)
    # Normalise so that alpha is the typical displacement in pixels, whatever sigma is.
    field = field / field.flatten(1).std(dim=1).clamp_min(1e-6).view(n, 1, 1, 1)
    field = field * alpha * _uniform(n, 0, 1, gen, images.device).view(n, 1, 1, 1)
    return (field * (2 / torch.tensor([w, h], device=images.device).view(1, 2, 1, 1))).permute(0, 2, 3, 1)


def stroke_width(images: torch.Tensor, thicken: float, thin: float, gen: torch.Generator) -> torch.Tensor:
    """Grey-level dilation or erosion by a random fraction of a pixel, per image."""
    n, device = images.shape[0], images.device
    choice = torch.rand(n, generator=gen, device=device)
    amount = _uniform(n, 0.3, 1.0, gen, device).view(n, 1, 1, 1)
    dilated = F.max_pool2d(images, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-images, 3, stride=1, padding=1)
    eroded = images + (eroded - images) * 0.6  # a full erosion wipes out MNIST's thin strokes
    target = torch.where((choice < thicken).view(n, 1, 1, 1), dilated, images)
    target = torch.where(((choice >= thicken) & (choice < thicken + thin)).view(n, 1, 1, 1), eroded, target)
    return images + (target - images) * amount


def add_styles(images: torch.Tensor, labels: torch.Tensor, chance: float, gen: torch.Generator) -> torch.Tensor:
    """Give some 1s a lead-in stroke and some 7s a crossbar, as many people write them."""
    return styles_marked(images, labels, chance, gen)[0]


def styles_marked(images: torch.Tensor, labels: torch.Tensor, chance: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`add_styles`, and which images it styled."""
    n, device = images.shape[0], images.device
    if chance <= 0:
        return images, torch.zeros(n, dtype=torch.bool, device=device)
    picked = torch.rand(n, generator=gen, device=device) < chance
    ones, sevens = picked & (labels == 1), picked & (labels == 7)
    if not (ones.any() or sevens.any()):
        return images, ones | sevens
    images = images.clone()
    if ones.any():
        images[ones] = _draw_lead_in(images[ones], gen)
    if sevens.any():
        images[sevens] = _draw_crossbar(images[sevens], gen)
    return images, ones | sevens


def _ink_extent(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top row, bottom row and per-row ink centre (N, H) of each image's strokes."""
    ink = images[:, 0] > 0.5
    rows = ink.any(dim=2)
    h = images.shape[2]
    index = torch.arange(h, device=images.device).expand_as(rows)
    top = torch.where(rows, index, h).min(dim=1).values.float()
    bottom = torch.where(rows, index, -1).max(dim=1).values.float()
    weights = images[:, 0]
    cols = torch.arange(images.shape[3], device=images.device, dtype=images.dtype)
    centre = (weights * cols).sum(dim=2) / weights.sum(dim=2).clamp_min(1e-6)
    return top, bottom, centre


def _stroke_width_of(images: torch.Tensor, height: torch.Tensor) -> torch.Tensor:
    # Ink mass over stroke length; a 1 or 7 is roughly one stroke as long as it is tall.
    return (images.flatten(1).sum(dim=1) / (1.3 * height.clamp_min(1))).clamp(1.2, 3.5)


def _draw_segments(images: torch.Tensor, start: torch.Tensor, end: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Draw one anti-aliased segment per image from start to end ((N, 2) as x, y pixels)."""
    n, _, h, w = images.shape
    ys, xs = torch.meshgrid(
        torch.arange(h, device=images.device, dtype=images.dtype),
        torch.arange(w, device=images.device, dtype=images.dtype),
        indexing="ij",
    )
    p = torch.stack([xs, ys], dim=-1).view(1, h, w, 2)
    a, b = start.view(n, 1, 1, 2), end.view(n, 1, 1, 2)
    ab = b - a
    t = (((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-6)).clamp(0, 1)
    distance = (p - (a + t.unsqueeze(-1) * ab)).norm(dim=-1)
    line = (width.view(n, 1, 1) / 2 + 0.5 - distance).clamp(0, 1)
    return torch.maximum(images, line.unsqueeze(1))


def _draw_lead_in(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    # From the top of the 1, down and to the left: the up-stroke many people start a 1 with.
    n, device = images.shape[0], images.device
    top, bottom, centre = _ink_extent(images)
    height = bottom - top + 1
    top_row = top.long().clamp(0, images.shape[2] - 1)
    x_top = centre.gather(1, top_row.view(n, 1)).squeeze(1)
    # Pen writers' lead-ins reach half the height and more, nearly flat: such a 1 is a 7
    # without its crossbar to a model that has seen only MNIST's short ones.
    length = height * _uniform(n, 0.2, 0.7, gen, device)
    angle = _uniform(n, 10, 60, gen, device) * math.pi / 180  # below the horizontal
    start = torch.stack([x_top, top + 0.5], dim=1)
    end = torch.stack([x_top - length * torch.cos(angle), top + 0.5 + length * torch.sin(angle)], dim=1)
    return _draw_segments(images, start, end, _stroke_width_of(images, height))


def _draw_crossbar(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    # A short bar across the stem, a little below half height.
    n, device = images.shape[0], images.device
    top, bottom, centre = _ink_extent(images)
    height = bottom - top + 1
    row = (top + height * _uniform(n, 0.45, 0.65, gen, device)).long().clamp(0, images.shape[2] - 1)
    x_mid = centre.gather(1, row.view(n, 1)).squeeze(1)
    half = height * _uniform(n, 0.15, 0.28, gen, device)
    tilt = half * _uniform(n, -0.25, 0.1, gen, device)
    y = row.float()
    start = torch.stack([x_mid - half, y - tilt], dim=1)
    end = torch.stack([x_mid + half, y + tilt], dim=1)
    return _draw_segments(images, start, end, _stroke_width_of(images, height))
