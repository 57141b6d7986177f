"""The static-schedule runtime (numpy only: torch is imported only by the torch backend)."""

from .generator import BACKENDS, VideoGenerator

__all__ = ["BACKENDS", "VideoGenerator"]
