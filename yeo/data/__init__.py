"""Data layer: sources, synthetic generator, ETL, validation and versioning (no ZenML)."""
