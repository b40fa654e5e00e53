"""`worst/index.html`: the worst images (`coreseg.evaluation.worst`) beside
the per-class table and the confusion matrix, one static page with
relative links, so it opens from the folder (file://) or any server, and
moves with the output folder."""

from __future__ import annotations

import html
import math
from pathlib import Path
from urllib.parse import quote

from .worst import ERROR_COLORS, miou_text

__all__ = ["index_html", "write_worst"]

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
.layout { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.worst { flex: 3 1 640px; } aside { flex: 1 1 360px; }
figure { margin: 0 0 20px; } figure img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: right; }
td:first-child, th:first-child { text-align: left; } tr:nth-child(even) { background: #f4f4f4; }
aside img { max-width: 100%; } .swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; }
"""


def _number(value, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def index_html(entries, classes, summary: dict, *, confusion: str | None = "../confusion.png",
               title: str = "coreseg eval") -> str:
    """The page.

    Parameters
    ----------
    entries : list of (file name, image name, mIoU)
        The pictures in worst/, worst first.
    classes : list of dict
        Per-class rows as `ConfusionMatrix.to_dict()["classes"]` gives them
        (name, iou, dice, precision, recall, gt_pixels, gt_share, predicted_pixels).
    summary : dict
        "miou", "images", "source" (text).
    confusion : str or None
        The confusion matrix picture, relative to the page.
    """
    e = html.escape
    # Each picture has its rank, name and mIoU written in it; the alt text says them too.
    figures = "\n".join(
        f'<figure><a href="{e(quote(file))}"><img src="{e(quote(file))}" '
        f'alt="{rank}. {e(name)}: mIoU {miou_text(miou)}; photo, ground truth, prediction and errors"></a></figure>'
        for rank, (file, name, miou) in enumerate(entries, 1))
    rows = "\n".join(
        f"<tr><td>{e(c['name'])}</td><td>{_number(c['iou'])}</td><td>{_number(c['dice'])}</td>"
        f"<td>{_number(c['precision'])}</td><td>{_number(c['recall'])}</td>"
        f"<td>{_number(c['gt_share'] * 100 if c['gt_share'] is not None else None, 2)}%</td></tr>"
        for c in classes if c["gt_pixels"] or c["predicted_pixels"])
    legend = " ".join(f'<span class="swatch" style="background: rgb{color}"></span>{e(label)}'
                      for label, color in ERROR_COLORS)
    heat = (f'<h2>Confusion matrix</h2><img src="{e(quote(confusion))}" alt="confusion matrix">'
            if confusion else "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}: the worst images</title>
<style>{_STYLE}</style></head>
<body>
<h1>{e(title)}: the {len(entries)} image{'s' if len(entries) != 1 else ''} with the lowest mIoU</h1>
<p>mIoU {_number(summary.get('miou'))} over {summary.get('images', '?')} images; {e(str(summary.get('source', '')))}</p>
<p>Errors: {legend}</p>
<div class="layout">
<section class="worst">
{figures or '<p>No image has a class present to score.</p>'}
</section>
<aside>
<h2>Per class</h2>
<table><tr><th>class</th><th>IoU</th><th>F1</th><th>prec.</th><th>recall</th><th>pixels</th></tr>
{rows}
</table>
{heat}
</aside>
</div>
</body></html>
"""


def write_worst(folder, pictures, classes, summary: dict, *, confusion: str | None = "../confusion.png") -> list:
    """Write worst/ whole: each picture as a PNG, then index.html; what was
    at `folder` before is replaced only once the new folder is complete
    (`coreseg.files.safe_io.atomic_folder`).

    Parameters
    ----------
    folder : str or os.PathLike
    pictures : iterable of (file name, image name, mIoU, picture)
        Worst first; each picture a (h, w, 3) uint8 ndarray or its PNG
        bytes; drawn lazily, one at a time.
    classes, summary, confusion
        As `index_html`.

    Returns
    -------
    list of str
        The PNG file names, worst first.
    """
    from ..files.images import write_png
    from ..files.safe_io import atomic_folder

    written = []

    def write(tmp):
        entries = []
        for file, name, miou, picture in pictures:
            if isinstance(picture, bytes):  # encoded already (by a worker)
                (Path(tmp) / file).write_bytes(picture)
            else:
                write_png(Path(tmp) / file, picture)
            entries.append((file, name, miou))
            written.append(file)
        (Path(tmp) / "index.html").write_text(index_html(entries, classes, summary, confusion=confusion))

    atomic_folder(folder, write)
    return written
