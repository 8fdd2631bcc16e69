"""Data layer: medical image I/O, dataset readers, slice preparation, transforms, demo phantom."""
