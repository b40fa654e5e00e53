"""Frames and streams: the ordered thread pipeline, `Segmenter.stream`'s
engine, temporal smoothing and video files (PyAV). Imports kernels,
files and results; a stream drives any Segmenter it is given."""
