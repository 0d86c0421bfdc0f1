"""Training YOLOv8n with ultralytics (no ZenML here)."""
