"""Model backends behind coreseg.running.loader's `load`: ONNX Runtime
(onnx.py, any OS) and Core ML (coreml.py and its compile cache, macOS 13+).
Each subclasses the `Segmenter` base; neither knows the other."""
