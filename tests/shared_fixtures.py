"""Where the workplace's shared fixtures are: ../shared beside the clone
(as CI has it), or $CORESEG_SHARED. Tests that need them skip, saying so,
where they are absent."""

import os
from pathlib import Path

SHARED = Path(os.environ.get("CORESEG_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DETR = SHARED / "fixtures/detr/DETRResnet50SemanticSegmentationF16P8.mlpackage"
DATAGEN = SHARED / "fixtures/datagen"
MEDIAPIPE = SHARED / "fixtures/mediapipe-selfie"
