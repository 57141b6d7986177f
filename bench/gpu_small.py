"""The GPU target: small preset, 64x64, 10 solver steps, batch 1, all rows in one process.

    python bench/gpu_small.py --json bench/results/DATE-small-gpu.json [--ckpt model.safetensors]

Rows: torch on CUDA replaying captured frames (CUDA graphs), torch on CUDA launching eagerly (same
schedule), the reference loop in torch CUDA eager at the same 10 steps (ancestral sampler, flow
recomputed every step); then ONNX Runtime on CUDA where onnxruntime-gpu is installed and
TensorRT (fp16 where the export has fp16 graphs, else fp32) where TensorRT is, each replaced by
one line saying it was skipped where not. The goal of issue 6: torch CUDA with graphs at least
2x the frames/s of the reference loop, and at least 60 frames/s. Without --ckpt an untrained
small model is timed (the speed does not depend on the weights). Without onnx/onnxruntime the
model goes into a torch-only directory (vidm_rt/export/torch_only.py) instead of an export, so
the torch rows run on a machine that has torch alone. `--device cpu` only exercises the code path.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from pathlib import Path

from vidm_rt.bench import BenchTarget, format_table, run_bench
from vidm_rt.runtime import RuntimeOptions

STEPS = 10


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def small_checkpoint(root: Path) -> Path:
    import torch

    from vidm_rt.checkpoint import save_checkpoint
    from vidm_rt.config import preset
    from vidm_rt.models import ContentModel, MotionModel

    torch.manual_seed(0)
    cfg = preset("small")
    return save_checkpoint(root / "small.safetensors", cfg, ContentModel(cfg).eval(),
                           MotionModel(cfg).eval())


def engine_directory(ckpt: Path, root: Path, frames: int) -> tuple[Path, bool]:
    """(directory, whether it is a full export): an export where onnx can make one."""
    if _has("onnx", "onnxruntime", "onnxscript"):
        from vidm_rt.export import ExportOptions, export_checkpoint

        export, _ = export_checkpoint(ckpt, ExportOptions(
            name="small-dpmpp2m10", out_dir=root, sampler="dpmpp2m", steps=STEPS, frames=frames),
            progress=print)
        return export, True
    from vidm_rt.checkpoint import load_checkpoint
    from vidm_rt.export.torch_only import write_torch_only

    print("no onnx/onnxruntime here: timing the torch backend on a torch-only directory")
    return write_torch_only(load_checkpoint(ckpt), root / "small-dpmpp2m10", steps=STEPS,
                            frames=frames), False


def gpu_rows(export: Path, full: bool, root: Path, device: str, common: dict) -> list[dict]:
    """ONNX Runtime CUDA and TensorRT rows where they are installed; a line for each skipped."""
    rows: list[dict] = []
    cuda_ep = False
    if full and _has("onnxruntime"):
        import onnxruntime

        cuda_ep = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    if device != "cpu" and cuda_ep:
        rows += run_bench(export, ["onnxruntime"], reference_steps=0,
                          target=BenchTarget(device), **common)["results"]
    else:
        print("onnxruntime cuda: skipped (no export, or onnxruntime has no CUDA execution "
              "provider here: pip install onnxruntime-gpu)")
    if device != "cpu" and full and _has("tensorrt"):
        from vidm_rt.build import BuildOptions, build_engines
        from vidm_rt.manifest import load_manifest

        precision = "fp16" if "fp16" in (load_manifest(export).precisions or {}) else "fp32"
        engines = build_engines(export, BuildOptions(
            precision=precision, out=root / "engines" / f"small-{precision}"), progress=print)
        rows += run_bench(export, ["tensorrt"], reference_steps=0,
                          target=BenchTarget(device, trt_engine=engines), **common)["results"]
    else:
        print("tensorrt: skipped (no export, or TensorRT is not installed here)")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", type=Path, help="a small-preset checkpoint (default: untrained)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ckpt = args.ckpt or small_checkpoint(root)
        export, full = engine_directory(ckpt, root, args.frames)
        common = dict(frames=args.frames, repeats=args.repeats, warmup=1, threads=None, log=print)
        report = run_bench(export, ["torch"], reference_steps=STEPS,
                           target=BenchTarget(args.device, options=RuntimeOptions()), **common)
        eager = run_bench(export, ["torch"], reference_steps=0, target=BenchTarget(
            args.device, options=RuntimeOptions(cuda_graphs=False)), **common)
        report["results"] += eager["results"] + gpu_rows(export, full, root, args.device, common)
    reference = next(r for r in report["results"] if r["backend"] == "reference-loop")
    for row in report["results"]:
        row["speedup_vs_reference_loop"] = reference["ms_per_frame"] / row["ms_per_frame"]
    print(format_table(report))
    first = report["results"][0]
    print(f"torch on {first['device']} (CUDA graphs: {first['cuda_graphs']}): "
          f"{first['frames_per_s']:.1f} frames/s (goal >= 60), "
          f"x{first['speedup_vs_reference_loop']:.2f} the reference loop (goal >= 2)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
