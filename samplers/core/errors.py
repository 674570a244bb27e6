"""The error type of the spectral numerics (its own module so that every numerics module,
the eigensolvers included, can raise it without importing the others)."""


class SpectralError(ValueError):
    """Bad input to the spectral numerics (shapes, NaN, non-positive bandwidth, ...)."""
