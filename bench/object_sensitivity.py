"""What the FVD extractors see of object failures: a quarter of a set's clips damaged.

    OMP_NUM_THREADS=1 python bench/object_sensitivity.py --pairs 5 \
        --json bench/results/DATE-object-sensitivity.json

For each extractor (the shipped 47 statistics, and `objects`: those plus the object physics),
128 real moving-shapes clips (32 x 32, 16 frames) with 25% of them damaged from the middle frame
on (vidm_rt.eval.object_damage: designed failures, and held-out ones not looked at while
designing) against 2048 real clips, beside the FVD of clean sets of 128 (real vs real, --pairs
seeds); the ratio is to the real-vs-real mean. With --global, also the global degradations
of the shipped extractor's table (noise, blur, shuffle, freeze, ..., data shifts) for the
objects extractor, as bench/fvd_sensitivity.py runs them. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from vidm_rt.bench import write_report
from vidm_rt.eval.features import ShippedFeatures
from vidm_rt.eval.object_features import ObjectFeatures
from vidm_rt.eval.sensitivity import object_sensitivity, sensitivity


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=128, help="Clips per damaged set.")
    ap.add_argument("--real", type=int, default=2048, help="Clips of the real set.")
    ap.add_argument("--share", type=float, default=0.25, help="Share of clips damaged.")
    ap.add_argument("--pairs", type=int, default=5, help="Real-vs-real sets.")
    ap.add_argument("--global", dest="global_rows", action="store_true",
                    help="Also the global degradations (512 videos a set, as fvd_sensitivity).")
    ap.add_argument("--json", type=Path, default=Path("bench/results/object-sensitivity.json"))
    args = ap.parse_args()

    out: dict = {"share": args.share, "videos": args.videos, "real": args.real}
    t0 = time.perf_counter()
    tables = {}
    for extractor in (ShippedFeatures(), ObjectFeatures()):
        print(f"\n{extractor.name}: | damage | kind | FVD | x real-vs-real |\n|---|---|---|---|")
        tables[extractor.name] = object_sensitivity(
            extractor, videos=args.videos, real=args.real, share=args.share, pairs=args.pairs,
            on_row=lambda r: print(f"| {r['name']} | {r['kind']} | {r['fvd']:.2f} | "
                                   f"{r['ratio']:.1f} |", flush=True))
        rr = tables[extractor.name]["real_vs_real"]
        print(f"real vs real ({args.pairs} sets of {args.videos}): {rr['mean']:.2f} +- "
              f"{rr['std']:.2f}, max {rr['max']:.2f}", flush=True)
    out["object_damage"] = tables
    if args.global_rows:
        print("\nobjects, global degradations: | row | kind | FVD per level | separated |")
        out["global"] = sensitivity(ObjectFeatures(), videos=512, pairs=args.pairs, on_row=(
            lambda r: print(f"| {r['name']} | {r['kind']} | "
                            f"{' / '.join(f'{v:.2f}' for v in r['fvd'])} | "
                            f"{sum(r['separated'])}/{len(r['separated'])} |", flush=True)))
        real = out["global"]["real_vs_real"]
        print(f"real vs real (512 a set): {real['mean']:.2f}, max {real['max']:.2f}")
    out["seconds"] = time.perf_counter() - t0
    print(f"{out['seconds']:.0f} s")
    write_report(args.json, 1, out)


if __name__ == "__main__":
    main()
