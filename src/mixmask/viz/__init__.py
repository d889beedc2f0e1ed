"""Pictures: mask grids, mixed batches, training curves (matplotlib, imported lazily)."""
