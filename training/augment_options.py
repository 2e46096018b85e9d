"""How much a training batch is augmented: plain options, no torch, so web processes (the admin's
"Retrain now" form, the system checks) can check them; training.augment applies them."""

from dataclasses import dataclass


@dataclass(frozen=True)
class AugmentOptions:
    rotate: float = 15.0  # degrees, either way
    slant: float = 0.3  # horizontal shear, either way
    scale: tuple[float, float] = (0.85, 1.1)
    stretch: float = 0.1  # independent change of width against height
    translate: float = 0.1  # share of the image, either way
    elastic: float = 1.0  # pixels of smooth random displacement
    elastic_sigma: float = 4.0  # pixels; how smooth that displacement is
    thicken: float = 0.5  # chance to thicken the strokes by up to one pixel ...
    thin: float = 0.25  # ... or to thin them
    styles: float = 0.5  # chance that a 1 gets a lead-in stroke, a 7 a crossbar
