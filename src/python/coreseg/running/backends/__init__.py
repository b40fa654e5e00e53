"""Model backends behind coreseg.load: ONNX Runtime (onnx.py) and Core ML."""
