"""A procedural garment catalog: the embedded default data set.

Each product is a garment drawn from its vertical's silhouette with a colour, a pattern,
vertical-specific attributes and an identity of its own (secondary colour, pattern frequency and
angle, an emblem), so that instance-level retrieval (same product, other view) is meaningful.
Every view applies pose, scale, crop, background and lighting jitter; the drawing knows where
collar, sleeve ends and hem are, so landmarks come for free. Deterministic by seed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from apparel.config import SyntheticConfig

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 30, 40),
    "green": (40, 150, 60),
    "blue": (40, 70, 190),
    "yellow": (235, 210, 40),
    "black": (25, 25, 25),
    "white": (240, 240, 240),
    "pink": (240, 140, 180),
    "orange": (240, 130, 30),
    "purple": (120, 50, 150),
    "grey": (128, 128, 128),
}
PATTERNS = ("solid", "stripes", "dots", "checks")
# Vertical-specific attributes: a product of another vertical has no value (empty, not missing).
VERTICAL_ATTRIBUTES: dict[str, dict[str, tuple[str, ...]]] = {
    "tops": {"sleeve": ("sleeveless", "short", "long"), "neckline": ("crew", "v-neck")},
    "dresses": {"sleeve": ("sleeveless", "short", "long"), "neckline": ("crew", "v-neck")},
    "trousers": {"leg_length": ("shorts", "full")},
    "shoes": {"heel": ("flat", "low", "high")},
    "bags": {"strap": ("none", "short", "long")},
}
VERTICALS = tuple(VERTICAL_ATTRIBUTES)
ATTRIBUTES = ("colour", "pattern", "sleeve", "neckline", "leg_length", "heel", "strap")

Point = tuple[float, float]


@dataclass
class Garment:
    """A drawing in unit coordinates: polygons to fill, strokes to draw and named landmarks."""

    polygons: list[list[Point]] = field(default_factory=list)
    strokes: list[tuple[list[Point], float]] = field(default_factory=list)
    landmarks: dict[str, Point] = field(default_factory=dict)


def _top(rng: np.random.Generator, attrs: dict[str, str], dress: bool) -> Garment:
    half = rng.uniform(0.14, 0.2)
    top_y, waist_y = 0.22, rng.uniform(0.55, 0.62)
    hem_y = rng.uniform(0.82, 0.92) if dress else rng.uniform(0.72, 0.82)
    flare = rng.uniform(0.05, 0.16) if dress else 0.0
    neck_w, neck_d = 0.07, (0.12 if attrs["neckline"] == "v-neck" else 0.04)
    body = [
        (0.5 - half, top_y), (0.5 - neck_w, top_y), (0.5, top_y + neck_d), (0.5 + neck_w, top_y),
        (0.5 + half, top_y), (0.5 + half, waist_y), (0.5 + half + flare, hem_y),
        (0.5 - half - flare, hem_y), (0.5 - half, waist_y),
    ]
    garment = Garment(polygons=[body])
    garment.landmarks = {
        "collar_left": (0.5 - neck_w, top_y), "collar_right": (0.5 + neck_w, top_y),
        "hem_left": (0.5 - half - flare, hem_y), "hem_right": (0.5 + half + flare, hem_y),
    }
    reach = {"sleeveless": 0.0, "short": 0.13, "long": 0.32}[attrs["sleeve"]]
    if reach:
        for side in (-1, 1):
            sx = 0.5 + side * half
            end = (sx + side * reach * 0.55, top_y + 0.06 + reach)
            sleeve = [(sx, top_y), (end[0] + side * 0.03, end[1] - 0.04), (end[0] - side * 0.04, end[1] + 0.02),
                      (sx, top_y + 0.14)]
            garment.polygons.append(sleeve)
            garment.landmarks["sleeve_left" if side < 0 else "sleeve_right"] = end
    return garment


def _trousers(rng: np.random.Generator, attrs: dict[str, str]) -> Garment:
    half, top_y = rng.uniform(0.13, 0.19), 0.18
    hem_y = 0.5 if attrs["leg_length"] == "shorts" else rng.uniform(0.85, 0.93)
    gap, spread = rng.uniform(0.01, 0.03), rng.uniform(0.0, 0.06)
    crotch = top_y + 0.22
    left = [(0.5 - half, top_y), (0.5, top_y), (0.5, crotch), (0.5 - gap, hem_y), (0.5 - half - spread, hem_y)]
    right = [(0.5, top_y), (0.5 + half, top_y), (0.5 + half + spread, hem_y), (0.5 + gap, hem_y), (0.5, crotch)]
    return Garment(
        polygons=[left, right],
        landmarks={
            "waist_left": (0.5 - half, top_y), "waist_right": (0.5 + half, top_y),
            "hem_left": (0.5 - half - spread, hem_y), "hem_right": (0.5 + half + spread, hem_y),
        },
    )


def _shoe(rng: np.random.Generator, attrs: dict[str, str]) -> Garment:
    heel = {"flat": 0.02, "low": 0.08, "high": 0.18}[attrs["heel"]]
    length, sole_y = rng.uniform(0.55, 0.7), rng.uniform(0.66, 0.72)
    x0 = 0.5 - length / 2
    x1 = x0 + length
    upper_h = rng.uniform(0.14, 0.22)
    shape = [
        (x0, sole_y - heel - upper_h), (x0 + length * 0.35, sole_y - heel - upper_h * 0.6),
        (x1 - 0.05, sole_y - upper_h * 0.5), (x1, sole_y), (x0 + length * 0.3, sole_y),
        (x0 + 0.06, sole_y - heel), (x0 + 0.06, sole_y), (x0, sole_y), (x0, sole_y - heel),
    ]
    return Garment(polygons=[shape], landmarks={"toe": (x1, sole_y), "heel": (x0, sole_y)})


def _bag(rng: np.random.Generator, attrs: dict[str, str]) -> Garment:
    half_w, top_y, bottom_y = rng.uniform(0.18, 0.28), rng.uniform(0.42, 0.5), rng.uniform(0.78, 0.86)
    body = [(0.5 - half_w, top_y), (0.5 + half_w, top_y), (0.5 + half_w + 0.03, bottom_y),
            (0.5 - half_w - 0.03, bottom_y)]
    garment = Garment(
        polygons=[body],
        landmarks={"corner_left": (0.5 - half_w - 0.03, bottom_y), "corner_right": (0.5 + half_w + 0.03, bottom_y)},
    )
    rise = {"none": 0.0, "short": 0.12, "long": 0.34}[attrs["strap"]]
    if rise:
        apex = (0.5, top_y - rise)
        garment.strokes.append(([(0.5 - half_w * 0.6, top_y), apex, (0.5 + half_w * 0.6, top_y)], 0.025))
        garment.landmarks["strap_top"] = apex
    return garment


DRAWERS: dict[str, Callable[[np.random.Generator, dict[str, str]], Garment]] = {
    "tops": lambda rng, a: _top(rng, a, dress=False),
    "dresses": lambda rng, a: _top(rng, a, dress=True),
    "trousers": _trousers,
    "shoes": _shoe,
    "bags": _bag,
}


@dataclass
class Product:
    product_id: str
    vertical: str
    attributes: dict[str, str]
    garment: Garment
    texture: np.ndarray  # H×W×3 uint8: colour, pattern and emblem of this product
    new_look: bool = False  # photographed in the new season's look (see NEW_LOOK_SHADE)


NEW_LOOK_SHADE = 0.55  # a new season's look: a darker palette, a pattern no earlier drop had, a darker studio


def _texture(rng: np.random.Generator, size: int, colour: str, pattern: str, new_look: bool = False) -> np.ndarray:
    primary = np.clip(np.array(COLOURS[colour]) + rng.integers(-18, 19, 3), 0, 255)
    others = [c for c in COLOURS if c != colour]
    secondary = np.array(COLOURS[others[rng.integers(len(others))]])
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle, freq, phase = rng.uniform(0, np.pi), rng.uniform(6, 14), rng.uniform(0, 1)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    if pattern == "stripes":
        mask = ((u * freq + phase) % 1) < 0.4
    elif pattern == "dots":
        mask = (((u * freq + phase) % 1 - 0.5) ** 2 + ((v * freq) % 1 - 0.5) ** 2) < 0.07
    elif pattern == "checks":
        mask = (((u * freq / 2 + phase) % 1) < 0.5) ^ (((v * freq / 2) % 1) < 0.5)
    else:
        mask = np.zeros((size, size), dtype=bool)
    if new_look:
        mask ^= ((u * freq * 2 + np.abs((v * freq * 2) % 2 - 1)) % 1) < 0.5  # zigzag over the pattern
        primary, secondary = primary * NEW_LOOK_SHADE, secondary * NEW_LOOK_SHADE
    texture = np.where(mask[..., None], secondary, primary).astype(np.uint8)
    # The emblem: a small shape of the product's own, the strongest cue of its identity.
    emblem = Image.fromarray(texture)
    draw = ImageDraw.Draw(emblem)
    cx, cy, r = rng.uniform(0.4, 0.6) * size, rng.uniform(0.45, 0.7) * size, rng.uniform(0.04, 0.07) * size
    fill = tuple(int(c) for c in rng.integers(0, 256, 3))
    kind = rng.integers(3)
    if kind == 0:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif kind == 1:
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=fill)
    return np.asarray(emblem)


def make_product(rng: np.random.Generator, vertical: str, index: int, size: int, drop: int = 0,
                 new_look: bool = False) -> Product:
    attrs = {"colour": str(rng.choice(list(COLOURS))), "pattern": str(rng.choice(PATTERNS))}
    for name, values in VERTICAL_ATTRIBUTES[vertical].items():
        attrs[name] = str(rng.choice(values))
    garment = DRAWERS[vertical](rng, attrs)
    texture = _texture(rng, size, attrs["colour"], attrs["pattern"], new_look)
    product_id = f"{vertical}-{index:05d}" if drop == 0 else f"{vertical}-d{drop}-{index:05d}"
    return Product(product_id, vertical, attrs, garment, texture, new_look)


def _affine(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random pose: rotation, scale and shift about the centre, as a 3×3 forward matrix."""
    theta = np.deg2rad(rng.uniform(-12, 12))
    scale = rng.uniform(0.8, 1.1)
    shift = rng.uniform(-0.08, 0.08, 2) * size
    c, s = np.cos(theta) * scale, np.sin(theta) * scale
    centre = size / 2
    return np.array([
        [c, -s, centre - c * centre + s * centre + shift[0]],
        [s, c, centre - s * centre - c * centre + shift[1]],
        [0, 0, 1],
    ])


def render_view(product: Product, rng: np.random.Generator, size: int) -> tuple[Image.Image, dict[str, list[float]]]:
    """One photo of the product and its landmarks in pixel coordinates of that photo."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    for polygon in product.garment.polygons:
        draw.polygon([(x * size, y * size) for x, y in polygon], fill=255)
    for line, width in product.garment.strokes:
        draw.line([(x * size, y * size) for x, y in line], fill=255, width=max(1, int(width * size)))
    garment = Image.fromarray(product.texture).convert("RGBA")
    garment.putalpha(mask)
    forward = _affine(rng, size)
    inverse = np.linalg.inv(forward)
    posed = garment.transform((size, size), Image.Transform.AFFINE, tuple(inverse[:2].ravel()),
                              Image.Resampling.BILINEAR)
    top, bottom = rng.integers(150, 256, 3), rng.integers(120, 256, 3)
    if product.new_look:
        top, bottom = top * NEW_LOOK_SHADE, bottom * NEW_LOOK_SHADE
    ramp = np.linspace(0, 1, size)[:, None, None]
    background = Image.fromarray((top * (1 - ramp) + bottom * ramp).repeat(size, axis=1).astype(np.uint8))
    background.paste(posed, (0, 0), posed)
    pixels = np.asarray(background, dtype=np.float32)
    gain, bias = rng.uniform(0.75, 1.25), rng.uniform(-20, 20)
    pixels = pixels * gain + bias + rng.normal(0, 4, pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    landmarks = {
        name: [round(float(v), 1) for v in (forward @ np.array([x * size, y * size, 1.0]))[:2]]
        for name, (x, y) in product.garment.landmarks.items()
    }
    return image, landmarks


def iter_catalog(config: SyntheticConfig) -> Iterator[tuple[Product, int, Image.Image, dict[str, list[float]]]]:
    """Yields (product, view index, image, landmarks) in a fixed order, one stream per product."""
    unknown = sorted(set(config.new_look) - set(VERTICALS))
    if unknown:
        raise ValueError(f"new_look names unknown verticals {unknown} (known: {', '.join(VERTICALS)})")
    for v_index, vertical in enumerate(VERTICALS):
        for p_index in range(config.products_per_vertical):
            # drop 0 keeps the seeds the default catalog always had; a later drop draws new products
            rng = np.random.default_rng([config.seed, v_index, p_index, *([config.drop] if config.drop else [])])
            product = make_product(rng, vertical, p_index, config.image_size, config.drop,
                                   vertical in config.new_look)
            for view in range(config.views_per_product):
                image, landmarks = render_view(product, rng, config.image_size)
                yield product, view, image, landmarks


def generate_catalog(config: SyntheticConfig, out_dir: Path, progress: Callable[[int], None] | None = None) -> Path:
    """Writes images and ``labels.csv`` (the manifest layout) under ``out_dir``; returns the CSV path."""
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    drop_rng = np.random.default_rng([config.seed, 999])
    for product, view, image, landmarks in iter_catalog(config):
        relative = f"images/{product.product_id}_{view}.jpg"
        image.save(out_dir / relative, quality=92)
        labels = {name: product.attributes.get(name) for name in ATTRIBUTES}
        for name, value in labels.items():
            if value is not None and drop_rng.random() < config.missing_label_rate:
                labels[name] = None
        rows.append({"image": relative, "product_id": product.product_id, "vertical": product.vertical, **labels,
                     "landmarks": json.dumps(landmarks)})
        if progress:
            progress(1)
    labels_path = out_dir / "labels.csv"
    pd.DataFrame(rows).to_csv(labels_path, index=False)
    return labels_path
