"""The sensitivity table of the shipped FVD extractor (vidm_rt/eval/features.py).

    OMP_NUM_THREADS=1 python bench/fvd_sensitivity.py --videos 512 --pairs 5 \
        --json bench/results/2026-12-03-fvd-sensitivity-512.json

Real moving-shapes videos at 32 x 32, 16 frames (the bundled model's size): one set spoiled at
rising strengths against an independent real set, and the spread of real-vs-real FVD over
independent pairs (vidm_rt/eval/sensitivity.py). The extractor was designed against noise, blur,
shuffle and freeze; the other rows were held out while designing it. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from vidm_rt.bench import write_report
from vidm_rt.eval.features import ShippedFeatures
from vidm_rt.eval.sensitivity import sensitivity


def _level(v: Any) -> str:
    return ",".join(f"{k}x{f:g}" for k, f in v.items()) if isinstance(v, dict) else f"{v:g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=512, help="Videos per set.")
    ap.add_argument("--pairs", type=int, default=5, help="Independent real-vs-real pairs.")
    ap.add_argument("--json", type=Path, default=Path("bench/results/fvd-sensitivity.json"))
    args = ap.parse_args()

    extractor = ShippedFeatures()
    print("| row | kind | levels | FVD per level | separated | monotonic |")
    print("|---|---|---|---|---|---|")
    t0 = time.perf_counter()
    table = sensitivity(extractor, videos=args.videos, pairs=args.pairs, on_row=lambda r: print(
        f"| {r['name']} | {r['kind']} | {' / '.join(_level(v) for v in r['levels'])} | "
        f"{' / '.join(f'{v:.2f}' for v in r['fvd'])} | {sum(r['separated'])}/"
        f"{len(r['separated'])} | {'yes' if r['monotonic'] else 'no'} |", flush=True))
    seconds = time.perf_counter() - t0
    real = table["real_vs_real"]
    print(f"\nreal vs real over {args.pairs} pairs of {args.videos} videos: mean "
          f"{real['mean']:.2f}, std {real['std']:.2f}, max {real['max']:.2f}; set A vs set B "
          f"{table['a_vs_b']:.2f}; {seconds:.0f} s")
    write_report(args.json, 1, {"extractor": extractor.describe(), "seconds": seconds, **table})


if __name__ == "__main__":
    main()
