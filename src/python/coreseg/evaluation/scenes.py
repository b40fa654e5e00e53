"""Demo scenes: procedurally drawn outdoor scenes with exact class maps, what
the bundled demo model (coreseg.modelfiles.bundled) was trained on.

The scenes let coreseg show its whole job on a fresh machine with nothing
downloaded: the model that segments them was trained only on scenes this
module drew, from seeds disjoint from the ones the demo uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..modelfiles.bundled import CLASSES, COLORS

__all__ = ["scene", "write_datapoints"]

SKY, SUN, HILL, WATER, GRASS, TREE, ROAD, BUILDING = range(len(CLASSES))


def _mix(a, b, t):
    return a + (b - a) * t


def scene(seed: int, size: tuple[int, int] = (320, 240)):
    """Draw a random outdoor scene and its exact class map.

    Sky with a gradient and clouds, maybe a sun, one or two ranges of hills,
    maybe a lake, grass, maybe a road to the horizon, buildings and trees;
    random layout, lighting, colour cast and sensor noise.

    Parameters
    ----------
    seed : int
        Same seed, same scene.
    size : (width, height)
        In pixels, each >= 16.

    Returns
    -------
    image : (height, width, 3) uint8 ndarray
        RGB.
    labels : (height, width) int32 ndarray
        Class ids into `CLASSES`.
    """
    w, h = (int(v) for v in size)
    if w < 16 or h < 16:
        raise ValueError(f"size must be at least (16, 16), got {size!r}")
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = x / w, y / h  # 0..1 across and down
    img = np.zeros((h, w, 3), np.float32)
    lab = np.zeros((h, w), np.int32)

    def paint(mask, color, label):
        img[mask] = color if np.ndim(color) == 1 else color[mask]
        lab[mask] = label

    # Sky: a vertical gradient, day or dusk.
    horizon = rng.uniform(0.35, 0.6)
    dusk = rng.random() < 0.25
    top = np.array([0.95, 0.55, 0.35] if dusk else [0.25, 0.45, 0.85]) * rng.uniform(0.8, 1.1)
    low = np.array([1.0, 0.8, 0.55] if dusk else [0.7, 0.85, 1.0]) * rng.uniform(0.85, 1.05)
    t = np.clip(v / horizon, 0, 1)[..., None]
    paint(np.ones((h, w), bool), _mix(top, low, t), SKY)

    # Sun, then clouds that may cross it (clouds are sky).
    if rng.random() < 0.6:
        cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.05, horizon * 0.7), rng.uniform(0.03, 0.08)
        disc = ((u - cx) * w) ** 2 + ((v - cy) * h) ** 2 < (r * w) ** 2
        paint(disc, np.array([1.0, 0.9, 0.45]) if not dusk else np.array([1.0, 0.6, 0.3]), SUN)
    for _ in range(rng.integers(0, 6)):
        cx, cy = rng.uniform(-0.1, 1.1), rng.uniform(0.02, horizon * 0.8)
        rx, ry = rng.uniform(0.05, 0.2), rng.uniform(0.02, 0.06)
        d = ((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2
        puff = np.clip(1.2 - d, 0, 1)[..., None] * rng.uniform(0.5, 0.9)
        img[:] = _mix(img, np.array([0.97, 0.97, 0.98]), puff)

    # Hills: far (hazy) and near ridges from sums of sines.
    for depth in range(rng.integers(1, 3)):
        base = horizon - rng.uniform(0.02, 0.18) + depth * 0.05
        ridge = base + sum(rng.uniform(0.01, 0.05) * np.sin(2 * np.pi * (rng.uniform(0.5, 3) * u[0] + rng.random()))
                           for _ in range(3))
        mask = v > ridge[None, :]
        hue = rng.choice([[0.45, 0.5, 0.65], [0.35, 0.5, 0.3], [0.5, 0.42, 0.3]]) * (0.75 + 0.15 * depth)
        shade = (0.85 + 0.3 * (v - ridge[None, :]))[..., None]
        paint(mask, np.clip(hue * shade, 0, 1), HILL)

    # Ground: grass below the horizon, with texture.
    ground = v >= horizon
    grass = np.array([0.3, 0.6, 0.25]) * rng.uniform(0.7, 1.2) + rng.normal(0, 0.04, 3)
    texture = (1 + 0.15 * np.sin(x * rng.uniform(0.3, 0.9)) * np.sin(y * rng.uniform(0.3, 0.9)))[..., None]
    paint(ground, np.clip(grass * texture * (0.8 + 0.4 * v[..., None]), 0, 1), GRASS)

    # A lake: an ellipse just below the horizon, with ripples.
    if rng.random() < 0.55:
        cx, ry, rx = rng.uniform(0.2, 0.8), rng.uniform(0.04, 0.15), rng.uniform(0.2, 0.5)
        cy = horizon + ry * rng.uniform(0.2, 0.9)
        lake = (((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2 < 1) & ground
        ripple = (0.9 + 0.1 * np.sin(y * 1.7 + np.sin(x * 0.2)))[..., None]
        water = np.array([0.15, 0.35, 0.6]) * rng.uniform(0.8, 1.2)
        paint(lake, np.clip(water * ripple + 0.3 * low * (1 - t), 0, 1), WATER)

    # A road: a trapezoid from the bottom edge to a vanishing point.
    if rng.random() < 0.6:
        vx, bottom_w = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.9)
        bx = rng.uniform(0.2, 0.8)
        depth = np.clip((v - horizon) / (1 - horizon), 0, 1)
        center = _mix(vx, bx, depth)
        half = 0.005 + depth * bottom_w / 2
        road = ground & (np.abs(u - center) < half)
        paint(road, np.array([0.42, 0.42, 0.45]) * rng.uniform(0.7, 1.2), ROAD)
        dashes = road & (np.abs(u - center) < half * 0.04) & (np.sin(depth * 40 * np.pi) > 0)
        img[dashes] = [0.95, 0.95, 0.9]

    # Buildings standing on the horizon, with window grids.
    for _ in range(rng.integers(0, 4)):
        bw, bh = rng.uniform(0.06, 0.2), rng.uniform(0.1, 0.35)
        bx, by = rng.uniform(0, 1 - bw), horizon + rng.uniform(0, 0.08)
        block = (u >= bx) & (u < bx + bw) & (v < by) & (v >= by - bh)
        wall = rng.choice([[0.75, 0.7, 0.6], [0.6, 0.3, 0.25], [0.85, 0.85, 0.8], [0.45, 0.45, 0.5]])
        windows = (np.sin((u - bx) * w * 0.6) > 0.3) & (np.sin((v - by) * h * 0.5) > 0.3)
        color = np.where(windows[..., None], np.array([0.3, 0.35, 0.45]), wall)
        paint(block, color, BUILDING)

    # Trees: trunk and a round crown, on the ground.
    for _ in range(rng.integers(0, 7)):
        tx = rng.uniform(0, 1)
        ty = rng.uniform(horizon + 0.02, 1.0)
        scale = 0.3 + (ty - horizon) / (1 - horizon)
        crown_r = rng.uniform(0.025, 0.06) * scale
        trunk = (np.abs(u - tx) < crown_r * 0.2) & (v < ty) & (v > ty - crown_r * 3)
        paint(trunk, np.array([0.35, 0.22, 0.1]), TREE)
        crown = ((u - tx) * w) ** 2 + ((v - (ty - crown_r * 3.2)) * h) ** 2 < (crown_r * w) ** 2
        leaves = np.array([0.1, 0.35, 0.12]) * rng.uniform(0.7, 1.3)
        shade = (0.85 + 0.25 * np.sin(x * 0.8 + y * 0.7))[..., None]  # leafy texture
        paint(crown, np.clip(leaves * shade, 0, 1), TREE)

    # Lighting, colour cast and sensor noise.
    img *= rng.uniform(0.6, 1.25)
    img *= 1 + rng.normal(0, 0.08, 3)
    img += rng.normal(0, rng.uniform(0.005, 0.04), img.shape)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8), lab


def write_datapoints(root, seeds, size: tuple[int, int] = (320, 240)) -> list[Path]:
    """Write demo scenes as Datagen datapoints, the dataset format `coreseg
    eval MODEL DATASET_DIR` reads (needs OpenCV: the `images` extra).

    Each seed gives ``root/scene_SEED/``: semantic_segmentation_metadata.json
    (version 1.0.0, the demo classes with 16-bit colours), the class map as
    a 16-bit colour-coded camera/semantic_segmentation.png and the photo as
    camera/visible_spectrum_01.png (8-bit RGB). Existing files are replaced.

    Parameters
    ----------
    root : str or os.PathLike
    seeds : iterable of int
        One scene per seed (see `scene`).
    size : (width, height)

    Returns
    -------
    list of pathlib.Path
        The datapoint folders, in the order of `seeds`.
    """
    import json

    from .groundtruth import METADATA, PHOTO, SEGMENTATION, _cv2

    cv2 = _cv2()
    # Each class's colour, widened to 16 bits (v * 257 keeps them distinct).
    colors = np.array([[int(c[i:i + 2], 16) * 257 for i in (1, 3, 5)] for c in COLORS], np.uint16)
    metadata = {"version": "1.0.0", **{name: dict(zip("RGB", map(int, rgb))) for name, rgb in zip(CLASSES, colors)}}
    folders = []
    for seed in seeds:
        image, labels = scene(seed, size)
        folder = Path(root) / f"scene_{seed}"
        (folder / "camera").mkdir(parents=True, exist_ok=True)
        (folder / METADATA).write_text(json.dumps(metadata, indent=1) + "\n")
        for path, pixels in ((folder / SEGMENTATION, colors[labels]), (folder / PHOTO, image)):
            if not cv2.imwrite(str(path), np.ascontiguousarray(pixels[..., ::-1])):  # OpenCV writes BGR
                raise OSError(f"{path}: OpenCV could not write it")
        folders.append(folder)
    return folders
