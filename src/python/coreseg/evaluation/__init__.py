"""Evaluation: ground truth (Datagen datapoints, colour tables; datasets as
they come: photo and ground-truth folders, list files, PASCAL VOC and
Cityscapes trees), confusion matrices and IoU, per-image scoring (what
`coreseg eval` does for one image), the worst images drawn with their
errors and the page that shows them (worst/), drift monitoring, heat maps,
and the demo scenes with their exact class maps. Imports running and
everything below it."""
