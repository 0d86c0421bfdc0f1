"""Edge runtime and bundle tools. Imports numpy, onnxruntime and pillow only."""
