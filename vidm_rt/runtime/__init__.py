"""The static-schedule runtime (numpy only: torch is imported only by the torch backend)."""

from .generator import BACKENDS, RuntimeOptions, VideoGenerator

__all__ = ["BACKENDS", "RuntimeOptions", "VideoGenerator"]
