"""Which frame index k the motion model sees for each frame of a video."""

from __future__ import annotations

FRAME_INDEX_POLICIES = ("clamp", "extrapolate")


def frame_index(frame: int, train_frames: int, policy: str = "clamp") -> int:
    """The frame index k fed to the motion model for video frame `frame` (>= 1).

    VIDM trains k in [1, F-2]. "clamp" holds k at F-2 past that range, so longer videos keep
    feeding a trained positional code; "extrapolate" feeds k = frame.
    """
    if policy not in FRAME_INDEX_POLICIES:
        raise ValueError(f"unknown frame index policy {policy!r}: choose clamp or extrapolate")
    return frame if policy == "extrapolate" else min(frame, train_frames - 2)
