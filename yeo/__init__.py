"""YOLO Edge Optimizer: the library behind the pipelines (plain functions, no ZenML)."""
