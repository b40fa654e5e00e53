"""coreseg.demo lives in two places: the bundled model's facts in
coreseg.modelfiles.bundled, its scenes in coreseg.evaluation.scenes; this
path is kept for both."""

from .evaluation.scenes import BUILDING, GRASS, HILL, ROAD, SKY, SUN, TREE, WATER, scene, write_datapoints  # noqa: F401
from .modelfiles.bundled import CLASSES, COLORS, INPUT_SIZE, TRAINING_SEEDS, model_path  # noqa: F401
