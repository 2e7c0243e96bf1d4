"""Training-side helpers for the example CTR job: model and metrics (torch + numpy only)."""
