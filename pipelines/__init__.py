"""ZenML pipelines: wiring only, one per file."""
