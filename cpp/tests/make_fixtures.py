"""Write the fixtures the C++ cross-check (test_python_crosscheck.cpp) reproduces:

    noise.json + noise_*.bin     numpy Philox noise (uint32 bit patterns) at several addresses
    update.json + update_*.bin   vidm_rt.schedule.apply_update on random float32 inputs
    engines.json, <case>/engine  closed-form engine directories (one with conditioning noise),
                                 <case>/expected.bin the frames the Python runtime (ONNX Runtime)
                                 generates from them

Every .bin is raw little-endian float32 (or uint32), C order. Usage: make_fixtures.py OUT_DIR
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from vidm_rt import noise
from vidm_rt.manifest import load_manifest, write_manifest
from vidm_rt.schedule import apply_update, sampler_table
from vidm_rt.testing.closed_form import closed_form_frames, write_closed_form_engine

# (seed, first video, frame, step, elements per video): seeds above 2**32, large video and step
# words, and lengths that are not multiples of 4.
NOISE_CASES = [
    (1234, 0, 1, 2, 48),
    (0, 0, 0, 0, 1001),
    (2**64 - 1, 2**32 - 2, 2**32 - 1, 7, 13),
    (0x1234_5678_9ABC_DEF0, 5, 17, 101, 3 * 32 * 32),
]
UPDATE_SHAPE = (2, 3, 4, 5)
ENGINE_CASES = [
    # name, engine options, generate options
    ("ancestral", dict(sampler="ancestral", steps=5), dict(frames=4, seed=7, first_video=3)),
    ("dpmpp2m_first_frame", dict(sampler="dpmpp2m", steps=4, content=False, train_frames=4),
     dict(frames=5, seed=2**40 + 9, first_video=0, first_frame=True)),
    ("ddim_eta_extrapolate", dict(sampler="ddim", steps=6, eta=0.5, frame_index="extrapolate",
                                  train_frames=4, height=4, width=6, batch=1),
     dict(frames=5, seed=123, first_video=11)),
    # config.cond_noise: every motion frame's flow sees the previous frame plus noise.
    ("ddim_cond_noise", dict(sampler="ddim", steps=3, eta=0.5, cond_noise=0.1),
     dict(frames=4, seed=2**33 + 5, first_video=1)),
]


def write_noise(out: Path) -> None:
    cases = []
    for i, (seed, video, frame, step, n) in enumerate(NOISE_CASES):
        arr = noise.gaussian_batch(seed, [video, video + 1], frame, step, (n,))
        name = f"noise_{i}.bin"
        arr.view(np.uint32).tofile(out / name)
        cases.append({"seed": str(seed), "first_video": video, "batch": 2, "frame": frame,
                      "step": step, "per_video": n, "file": name})
    (out / "noise.json").write_text(json.dumps(cases, indent=1))


def write_updates(out: Path) -> None:
    rng = np.random.default_rng(0)
    b, c, h, w = UPDATE_SHAPE
    cases = []
    tables = [sampler_table("ancestral", 10), sampler_table("ddim", 10, eta=0.7),
              sampler_table("dpmpp2m", 10), sampler_table("ancestral", 10, clip_x0=False)]
    for ti, table in enumerate(tables):
        for step in (0, 4, table.steps - 1):
            x = rng.standard_normal((b, c, h, w)).astype(np.float32)
            model_out = rng.standard_normal((b, 2 * c, h, w)).astype(np.float32)
            z = rng.standard_normal((b, c, h, w)).astype(np.float32)
            x0_prev = rng.uniform(-1, 1, (b, c, h, w)).astype(np.float32)
            x_next, x0 = apply_update(table, step, x, model_out[:, :c], model_out[:, c:], z,
                                      x0_prev)
            name = f"update_{ti}_{step}.bin"
            arrays = [table.coefficients()[step], x, model_out, z, x0_prev, x_next, x0]
            np.concatenate([np.asarray(a, np.float32).ravel() for a in arrays]).tofile(out / name)
            cases.append({"sampler": table.sampler, "step": step, "clip_x0": table.clip_x0,
                          "shape": list(UPDATE_SHAPE), "file": name})
    (out / "update.json").write_text(json.dumps(cases, indent=1))


def write_engines(out: Path) -> None:
    cases = []
    rng = np.random.default_rng(1)
    for name, engine_opts, gen_opts in ENGINE_CASES:
        engine_opts = dict(engine_opts)
        cond_noise = engine_opts.pop("cond_noise", 0.0)
        engine = write_closed_form_engine(out / name / "engine", **engine_opts)
        if cond_noise:
            # The model config records it (vidm-rt train --cond-noise); rewrite the manifest so.
            manifest = load_manifest(engine)
            config = dataclasses.replace(manifest.config, cond_noise=cond_noise)
            write_manifest(engine, dataclasses.replace(manifest, config=config))
        gen_opts = dict(gen_opts)
        first = None
        if gen_opts.pop("first_frame", False):
            b = engine_opts.get("batch", 2)
            shape = (b, 3, engine_opts.get("height", 8), engine_opts.get("width", 8))
            first = rng.uniform(-1, 1, shape).astype(np.float32)
            first.tofile(out / name / "first.bin")
        frames = closed_form_frames(engine, first_frame=first, **gen_opts)
        frames.astype(np.float32).tofile(out / name / "expected.bin")
        cases.append({"name": name, "engine": f"{name}/engine", "frames": gen_opts["frames"],
                      "seed": str(gen_opts["seed"]), "first_video": gen_opts["first_video"],
                      "first_frame": f"{name}/first.bin" if first is not None else None,
                      "expected": f"{name}/expected.bin", "count": int(frames.size),
                      # exp is the one operation whose last bit libm and numpy may disagree on;
                      # a sampler that never takes it (noise_v_scale 0) must match bit for bit.
                      "exact": not load_manifest(engine).sampler.noise_v_scale.any()})
    (out / "engines.json").write_text(json.dumps(cases, indent=1))


def main(out_dir: str) -> None:
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    write_noise(out)
    write_updates(out)
    write_engines(out)
    print(f"fixtures written to {out}")


if __name__ == "__main__":
    main(sys.argv[1])
