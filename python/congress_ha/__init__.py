"""congress-ha: a high-availability kit for a Congress-style policy service."""

__version__ = "0.1.0"
