"""Evaluation: Datagen ground truth, confusion matrices and IoU, per-image
scoring (what `coreseg eval` does for one image), drift monitoring,
heat maps, and the demo scenes with their exact class maps. Imports
running and everything below it."""
