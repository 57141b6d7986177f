"""Make vidm_rt/assets/fvd-shapes-stats.safetensors: the mean and standard deviation of the
shipped FVD extractor's raw features on real moving-shapes videos (32 x 32, 16 frames), which set
each feature's unit (vidm_rt/eval/features.py). Deterministic: the videos are a pure function of
the seed, the features of the videos. About half a minute on one core.

    python research/fvd_feature_stats.py            # writes the asset
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vidm_rt.eval.features import STATS_FILE, raw_features, to_working_size
from vidm_rt.eval.videos import moving_shapes_set

# Neither training (seeds 0, 1, 2) nor the comparison clips (12345) nor the bench (1000 on).
SEED = 777
VIDEOS = 2048


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=STATS_FILE)
    args = ap.parse_args()
    from safetensors.numpy import save_file

    feats = np.concatenate([
        raw_features(to_working_size(moving_shapes_set(256, 16, 32, SEED + i).videos))
        for i in range(VIDEOS // 256)])
    std = feats.std(axis=0)
    if std.min() <= 0:
        raise SystemExit(f"feature {int(std.argmin())} is constant on real videos: no unit")
    save_file({"mean": feats.mean(axis=0), "std": std}, str(args.out),
              metadata={"made_by": "research/fvd_feature_stats.py", "videos": str(VIDEOS),
                        "seeds": f"{SEED}..{SEED + VIDEOS // 256 - 1} (256 videos each)",
                        "size": "32", "frames": "16"})
    print(f"wrote {args.out}: {feats.shape[1]} features from {len(feats)} videos, "
          f"smallest std {std.min():.4g}")


if __name__ == "__main__":
    main()
