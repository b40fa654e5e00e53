"""One image's segmentation (`Segmentation`): the class map at the model's
resolution, its scores, and what it says about the image at the image's
own resolution (full-size labels, overlays, masks, areas).

Backends make these (coreseg.running.segmenter, coreseg.running.backends); nothing here
runs a model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..kernels import _args, _arrays
from .. import kernels
from ..kernels._buffers import RESULTS
from ..kernels.palette import is_background, parse_color
from ..drawing.highlight import highlight_color, highlight_map, highlight_palette
from ..files.images import as_image
from ..modelfiles.contract import OutputContract
from .geometry import Placement, upsample_scores

__all__ = ["Segmentation"]


@dataclass
class Segmentation:
    """One image's segmentation.

    Attributes
    ----------
    labels : (h, w) int32 ndarray
        The class map at the model's output resolution, over the model's
        whole input (with ``crop="fit"``, the padding too).
    image_size : (int, int)
        (width, height) of the image that was segmented.
    names : list of str or None
        Class names, index = class id (None: the model has none).
    palette : (n, 4) uint8 ndarray
        Colours of the class ids (the model's, shared and read-only).
    timings : dict of str to float
        Seconds spent in "preprocess", "inference" and "postprocess"
        (floats only).
    placement : coreseg.results.geometry.Placement or None
        Where the image went in the model's input (None: stretched over all
        of it). `full_labels`, `overlay` and `areas` use it to describe the
        image, not the model's input.
    raw : ndarray or None
        The model's raw segmentation output (batch of 1), kept for `scores`.
    output : coreseg.contract.OutputContract or None
        How to read `raw`.
    io : dict of str to bool
        How the backend moved the data. Core ML: "wrapped_input" (the
        caller's pixels went to Core ML as they were), "offered_output_backing"
        and "used_output_backing" (Core ML wrote into `raw` itself rather
        than into memory of its own, which was then copied). Core ML may
        decline a backing; neither flag says no copy happened inside it.
    """

    labels: np.ndarray
    image_size: tuple[int, int]
    names: list[str] | None
    palette: np.ndarray
    timings: dict = field(default_factory=dict)
    placement: Placement | None = None
    raw: np.ndarray | None = field(default=None, repr=False)
    output: OutputContract | None = field(default=None, repr=False)
    io: dict = field(default_factory=dict, repr=False)
    _scores: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def scores(self) -> np.ndarray | None:
        """(C, h, w) float32 per-class probabilities at the model's
        resolution: the softmax of logits, the model's own probabilities, or
        ``[1 - p, p]`` for a binary model's foreground probability p. None
        for models that return a class map. Computed on first use."""
        if self._scores is None and self.raw is not None and self.output is not None:
            self._scores = self.output.scores(self.raw)
        return self._scores

    def confidence(self) -> np.ndarray:
        """(h, w) float32 probability of the winning class at each pixel.

        Raises
        ------
        ValueError
            When the model gives no scores (it returns a class map).
        """
        scores = self._require_scores("confidence")
        return scores.max(axis=0)

    def _require_scores(self, what: str) -> np.ndarray:
        scores = self.scores
        if scores is None:
            raise ValueError(f"{what} needs per-class scores, and this model returns a class map only")
        return scores

    def class_ids(self, classes) -> list[int]:
        """Class ids from names and/or ids; unknown names raise KeyError
        listing the valid ones."""
        if isinstance(classes, (str, int, np.integer)):
            classes = [classes]
        ids = []
        for c in classes:
            if isinstance(c, str):
                if self.names is None or c not in self.names or c == "--":
                    valid = ", ".join(n for n in (self.names or []) if n != "--") or "(the model has no labels)"
                    raise KeyError(f"unknown label {c!r}; valid labels: {valid}")
                ids.append(self.names.index(c))
            else:
                ids.append(int(c))
        return ids

    def name(self, class_id: int) -> str:
        if self.names is not None and 0 <= class_id < len(self.names):
            return self.names[class_id]
        return str(class_id)

    def _source_and_target(self):
        """(the image rect the model saw, the labels covering it, and where
        in the output that is: None without a placement, else (rect, True if
        the rect is in input pixels because the output grid does not fall
        on whole input pixels and the output had to be resized first))."""
        w, h = self.image_size
        p = self.placement
        if p is None:
            return (0, 0, w, h), self.labels, None
        ow, oh = self.labels.shape[1], self.labels.shape[0]
        rect = p.output_rect((ow, oh))
        if rect is None:  # e.g. a letterbox offset that is not a whole output pixel
            labels = kernels.resize_labels(self.labels, p.canvas_size)
            rect, scale_scores = p.target, True
        else:
            labels, scale_scores = self.labels, False
        x, y, rw, rh = rect
        return p.source, labels[y : y + rh, x : x + rw], (rect, scale_scores)

    def full_labels(self, out=None, *, smooth: bool = False) -> np.ndarray:
        """The class map at the image's own resolution.

        Parameters
        ----------
        smooth : bool
            False: nearest neighbour (`resize_labels`) from the model's map.
            True: bilinear upsampling of the scores and the argmax per pixel
            (`upsample_argmax`), so edges follow the object; needs a model
            that gives scores.
        out : (height, width) int32 ndarray, optional
            Without it, an earlier result's memory that nothing references
            any more is reused (as `overlay` does).

        Returns
        -------
        labels : (height, width) int32 ndarray
            Pixels the model never saw (outside a ``crop="center"``) are -1.
        """
        w, h = self.image_size
        out = _arrays.out_array(out, (h, w), np.int32) if out is not None else RESULTS.take((h, w), np.int32)
        (sx, sy, sw, sh), labels, where = self._source_and_target()
        if (sx, sy, sw, sh) != (0, 0, w, h):
            out[...] = -1
        region = out[sy : sy + sh, sx : sx + sw]
        if not smooth:
            kernels.resize_labels(labels, (sw, sh), out=region)
            return out
        scores = self.output.decision_scores(self._require_scores("full_labels(smooth=True)"))
        if where is not None:
            (x, y, rw, rh), through_input = where
            if through_input:
                scores = upsample_scores(scores, self.placement.canvas_size)
            scores = scores[:, y : y + rh, x : x + rw]
        kernels.upsample_argmax(scores, (sw, sh), out=region)
        return out

    def overlay(self, image, opacity=0.6, outline=None, classes=None, palette=None, out=None, *,
                smooth: bool | None = None, labels=None, color=None) -> np.ndarray:
        """The image with class colours blended on at full resolution.

        Parameters
        ----------
        image : (H, W, 3|4) uint8 ndarray, PIL image or path
            The image that was segmented (its size is checked).
        opacity : float in [0, 1]
        outline : colour, optional
            Outline the class boundaries in this colour.
        classes : names or ids, optional
            Only these classes, as the command line's ``--label`` draws
            them: in a highlight colour (`color`; magenta for one class,
            their own colours for several), outlined alone (the outline
            follows their boundaries only).
        palette : (n, 4) uint8 array_like, optional
            Colours instead of the model's. Background classes are
            transparent in the model's palette, so they are left alone.
        smooth : bool, optional
            Composite through `full_labels(smooth=True)`: edges follow the
            object instead of the model's pixel grid. Default: smooth when
            the model gives scores (as `stream` and the command line draw).
        color : colour, optional
            The highlight colour of `classes` (RGBA, or hex).
        labels : (H, W) int32 ndarray, optional
            The class map at the image's resolution, when the caller already
            has it from `full_labels` (it is then drawn as it is, whatever
            `smooth` says).
        out : ndarray like `image`, optional
            Where to draw; a loop that passes the same array each time
            allocates nothing. Without it, the memory of an earlier result
            that nothing references any more is reused.

        Pixels the model never saw (outside a ``crop="center"``) are left
        as they are.
        """
        img = as_image(image)
        if (img.shape[1], img.shape[0]) != tuple(self.image_size):
            raise ValueError(f"image is {img.shape[1]}x{img.shape[0]}, but the segmentation is of a "
                             f"{self.image_size[0]}x{self.image_size[1]} image")
        pal = (self.palette if palette is None else np.asarray(palette, np.uint8)).copy()
        if smooth is None:
            smooth = self.scores is not None
        full = labels
        (sx, sy, sw, sh), labels, _ = self._source_and_target()
        if full is not None:
            if full.shape != img.shape[:2]:
                raise ValueError(f"labels are {full.shape[1]}x{full.shape[0]}, the image {img.shape[1]}x{img.shape[0]}")
            labels = full[sy : sy + sh, sx : sx + sw]
        elif smooth:
            labels = self.full_labels(smooth=True)[sy : sy + sh, sx : sx + sw]
        if classes is not None:  # drawn alone, outlined alone
            ids = self.class_ids(classes)
            color = None if color is None else _args.rgba(parse_color(color) if isinstance(color, str) else color,
                                                            "color")
            pal = highlight_palette(ids, pal, highlight_color(ids, color))
            labels = highlight_map(labels, ids)
        if out is None:  # a released earlier result's memory, if there is one (kernels._buffers)
            out = RESULTS.take(img.shape, np.uint8)
        if (sx, sy, sw, sh) == (0, 0, img.shape[1], img.shape[0]):
            return kernels.composite(img, labels, pal, opacity, outline, out=out)
        out = _arrays.out_array(out, img.shape, np.uint8)
        if out is not img:
            out[...] = img
        region = out[sy : sy + sh, sx : sx + sw]
        kernels.composite(region, labels, pal, opacity, outline, out=region)
        return out

    #: Widest preview `_repr_png_` draws, in pixels.
    PREVIEW_WIDTH = 640

    def _repr_png_(self) -> bytes | None:
        """PNG bytes for Jupyter: the class map in its colours with a legend,
        at the image's aspect ratio and at most PREVIEW_WIDTH wide (the
        photo itself is not kept; ``overlay(photo)`` draws on it). None
        without Pillow."""
        try:
            from PIL import Image
        except ImportError:
            return None
        import io

        from ..drawing.legend import draw_legend

        w, h = self.image_size
        scale = min(1.0, self.PREVIEW_WIDTH / max(w, 1))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        picture = kernels.colorize(kernels.resize_labels(self.labels, size), self.palette)
        picture[..., 3] = 255
        draw_legend(picture, self.legend(), self.palette)
        buffer = io.BytesIO()
        Image.fromarray(picture).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()

    def legend(self) -> list[tuple[int, str, float]]:
        """(class id, name, share of pixels) of every class present, largest
        share first, background classes (a transparent palette colour, a
        background name) and "--" ids left out: what a legend lists."""
        pal = self.palette
        entries = [(i, self.name(i), share) for i, share in self.areas().items()
                   if self.name(i) != "--" and not is_background(self.name(i))
                   and not (0 <= i < len(pal) and pal[i, 3] == 0)]
        return sorted(entries, key=lambda e: -e[2])

    def mask(self, name_or_id, *, smooth: bool = True) -> np.ndarray:
        """One class's own mask.

        Parameters
        ----------
        name_or_id : str or int
            A class name or id.
        smooth : bool
            True: at the image's resolution, edges from the scores upsampled
            bilinearly (as `upsample_argmax` does) when the model gives
            scores, else from the class map by nearest neighbour. False: at
            the model's output resolution.

        Returns
        -------
        (H, W) or (h, w) bool ndarray
            True where the class is. For a multi-label model, each class's
            own channel above the threshold, so masks may overlap (skin and
            hair both true) and id 0 (background) is where none is; for
            every other model, where the class map is that class. Pixels the
            model never saw (outside a ``crop="center"``) are False.
        """
        (class_id,) = self.class_ids(name_or_id)
        multilabel = self.output is not None and self.output.kind == "multilabel" and class_id > 0
        if not smooth:
            if multilabel:
                return self.output.class_axis_first(self.raw)[class_id - 1] > self.output.threshold
            return self.labels == class_id
        if not multilabel:
            return self.full_labels(smooth=self.scores is not None) == class_id
        # The channel against a constant plane at the threshold: argmax 1
        # exactly where the upsampled probability is above it.
        p = self.scores[class_id - 1]
        t = np.float32(self.output.probability_threshold())
        planes = np.stack([np.full_like(p, t), p])
        w, h = self.image_size
        out = np.zeros((h, w), bool)
        (sx, sy, sw, sh), _, where = self._source_and_target()
        if where is not None:
            (x, y, rw, rh), through_input = where
            if through_input:
                planes = upsample_scores(planes, self.placement.canvas_size)
            planes = planes[:, y : y + rh, x : x + rw]
        out[sy : sy + sh, sx : sx + sw] = kernels.upsample_argmax(np.ascontiguousarray(planes), (sw, sh)) == 1
        return out

    def matte(self, classes=None, *, smooth: bool = True, refine=False, image=None, out=None) -> np.ndarray:
        """The foreground's alpha at the image's resolution.

        Parameters
        ----------
        classes : names or ids, optional
            The classes that make the foreground. Default: every class that
            is not background (named background, None, void, ... or
            transparent in the palette).
        smooth : bool
            True: from the scores, upsampled on `upsample_argmax`'s grid
            (`coreseg.upsample_matte`): the summed probability of the
            classes; a binary model's foreground probability; a multi-label
            model's strongest selected channel. A model that returns a class
            map gets 0/255 with a feathered edge. False: 0/255 where the
            model decided one of the classes (its class map; a multi-label
            model's channels above the threshold), its pixels enlarged by
            nearest neighbour.
        refine : bool or float
            Pull the matte's edges onto the photo's own (`coreseg.
            refine_matte`, a guided filter with `image` as the guide): a
            model's mask is a few hundred pixels wide, its edge where the
            model put it, blurred by the enlargement. True: within two of
            the model's pixels as they fall on the photo; a number: within
            that many photo pixels. Needs `image`. Off by default: the
            matte then depends on the model alone (as `replace_background`'s
            default does), and refinement costs two passes over the photo
            (3-4 ms at 1080p).
        image : (H, W, 3|4) uint8 ndarray, PIL image or path, optional
            The image that was segmented (for `refine`).
        out : (H, W) uint8 ndarray, optional

        Returns
        -------
        alpha : (H, W) uint8 ndarray
            255 where the classes are certain, 0 where the model never saw
            the image (outside a ``crop="center"``; refinement never moves
            the matte there).
        """
        from .background import matte

        return matte(self, classes, smooth=smooth, refine=refine, image=image, out=out)

    def replace_background(self, image, background="blur", *, classes=None, blur=None, smooth: bool = True,
                           refine=False, out=None) -> np.ndarray:
        """The image with its background blurred, replaced or made transparent.

        Parameters
        ----------
        image : (H, W, 3|4) uint8 ndarray, PIL image or path
            The image that was segmented.
        background : "blur", "transparent", a colour, or an image
            "blur": the image blurred (`coreseg.blur`, radius `blur`,
            default 1% of the long side); a colour ("#RRGGBB" or 3-4 ints);
            a picture (array, PIL image or path), scaled to cover the image
            (aspect kept, the overflow cropped evenly); "transparent": an
            RGBA image whose alpha is the matte.
        classes : names or ids, optional
            The foreground (default: every class that is not background).
        blur : float, optional
            The blur's radius in pixels (the Gaussian's sigma).
        smooth : bool
            A soft edge from the scores (see `matte`).
        refine : bool or float
            The matte's edges pulled onto the image's own (see `matte`):
            True, or a radius in pixels. Off by default, so the result is
            ``blend(image, background, matte())``.
        out : ndarray, optional
            Where to write; may be `image` (not for "transparent").

        Returns
        -------
        (H, W, 3|4) uint8 ndarray ((H, W, 4) for "transparent"), blended
        with composite's exact rounding (`coreseg.blend`).
        """
        from .background import replace_background

        return replace_background(self, image, background, classes=classes, blur=blur, smooth=smooth, refine=refine,
                                  out=out)

    def areas(self) -> dict[int, float]:
        """Share of pixels (0..1) of every class present, by class id, over
        the part of the image the model saw (a letterbox's padding is not
        counted)."""
        _, labels, _ = self._source_and_target()
        if labels.size == 0:
            return {}
        low, high = int(labels.min()), int(labels.max())
        if low >= 0 and high < (1 << 24):
            counts = kernels.class_histogram(labels, high + 1)
            ids = np.flatnonzero(counts)
            n = counts[ids]
        else:  # negative or huge ids: count them as they are
            ids, n = np.unique(labels, return_counts=True)
        return {int(i): float(c) / labels.size for i, c in zip(ids, n)}
