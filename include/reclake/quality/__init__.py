"""Data quality: Great Expectations suites, the validate step and its persisted results."""
