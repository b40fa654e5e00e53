"""Running models: the `Segmenter` base (no backend), the ONNX Runtime and
Core ML backends (backends/), and `load`, above both, which picks one.
Imports everything below it (kernels, files, drawing, modelfiles,
results, frames)."""
