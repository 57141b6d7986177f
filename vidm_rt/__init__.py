"""vidm-rt: VIDM video diffusion from a PyTorch reference to a deployable runtime."""

__version__ = "0.1.0"
