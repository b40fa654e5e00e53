"""Drawing results and writing them out: legends, and the files `coreseg
segment` writes per image (overlay, label map, areas, exports). The
blending itself is a kernel (coreseg.kernels). Imports kernels and files."""
