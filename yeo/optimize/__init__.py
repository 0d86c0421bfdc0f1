"""Model optimization: structured pruning, ONNX export, INT8 quantization, selection."""
