"""Feature engineering: labels, dimensions, tiles and training samples."""
