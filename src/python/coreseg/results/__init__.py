"""What a model's output means in the photo's terms: `Segmentation` (class
map, scores, overlays) and the crop and scale modes with their exact
inverse (geometry.py). Imports kernels, files, drawing and modelfiles;
never a backend."""
