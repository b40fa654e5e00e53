"""Model files on any OS, without running them: the facts (`ModelInfo`,
`ModelError`), the model contract every backend follows (contract.py),
the Core ML and ONNX readers, `inspect`, `annotate`, and the bundled demo
model. Imports kernels and files; never a backend."""
