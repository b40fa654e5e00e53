"""coreseg.dist lives in coreseg.scaleout (ray_cluster.py, ray_evaluate.py,
ray_segment.py); this path is kept for it."""

from .scaleout.ray_cluster import connect, inspect_labels  # noqa: F401
from .scaleout.ray_evaluate import Evaluation, evaluate, score_datapoints  # noqa: F401
from .scaleout.ray_segment import Segmented, segment  # noqa: F401

__all__ = ["connect", "evaluate", "segment", "Evaluation", "Segmented", "score_datapoints"]
