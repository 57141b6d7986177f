"""PyTorch reference models of VIDM (content generator, motion generator, flow, PGN)."""

from .content import ContentModel
from .motion import MotionModel

__all__ = ["ContentModel", "MotionModel", "split_output"]


def split_output(out):  # noqa: ANN001, ANN201 - tensor in, tensors out
    """(B, 6, H, W) model output -> eps (B, 3, H, W), v (B, 3, H, W)."""
    c = out.shape[1] // 2
    return out[:, :c], out[:, c:]
