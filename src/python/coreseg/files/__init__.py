"""Files in and out: image files (read with EXIF orientation and size checks,
written fast), safe writes (a temporary name, then a rename) and JSON,
and exports other tools open (per-class masks, polygons, COCO).
Imports coreseg.kernels only."""
