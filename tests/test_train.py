"""Training: exact resume, 2-process gloo DDP, checkpoints, errors."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from click.testing import CliRunner
from safetensors import safe_open

from vidm_rt.checkpoint import load_checkpoint
from vidm_rt.train import TrainConfig, train, train_command


def _tc(out, **kw) -> TrainConfig:
    base = dict(preset="tiny", model="both", steps=4, batch=2, lr=1e-3, save_every=2, keep=5,
                log_every=1, out=str(out))
    base.update(kw)
    return TrainConfig(**base)


def _states(result) -> dict[str, torch.Tensor]:
    flat = {}
    for kind in ("models", "ema"):
        for role, m in getattr(result, kind).items():
            flat.update({f"{kind}.{role}.{k}": v for k, v in m.state_dict().items()})
    return flat


def test_resume_equals_uninterrupted_run(tmp_path) -> None:
    straight = train(_tc(tmp_path / "a"), progress=False)
    train(_tc(tmp_path / "b", steps=2), progress=False)
    # As if killed after logging past its last save: an entry for step 3 and a line cut short.
    with (tmp_path / "b" / "log.jsonl").open("a") as f:
        f.write(json.dumps({"step": 3, "loss": -1.0, "seconds": 1e6}) + '\n{"step": 4, "lo')
    resumed = train(_tc(tmp_path / "b"), resume=True, progress=False)
    a, b = _states(straight), _states(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # The weights moved, and the saved EMA checkpoint is what the run returned.
    ckpt = load_checkpoint(tmp_path / "a" / "model.safetensors")
    for k, v in ckpt.motion.state_dict().items():
        assert torch.equal(v, straight.ema["motion"].state_dict()[k])
    for run in "ab":
        log = [json.loads(line)
               for line in (tmp_path / run / "log.jsonl").read_text().splitlines()]
        assert [e["step"] for e in log] == [1, 2, 3, 4]  # the resumed log reads as one run
        assert all(e["loss"] > 0 for e in log)
        seconds = [e["seconds"] for e in log]
        assert seconds == sorted(seconds) and seconds[-1] < 1e6


# Every option that changes what the resumed steps compute, with a value other than _tc's:
# resuming must refuse each one (steps, saving and logging options may change).
MUST_NOT_CHANGE = {"preset": "small", "model": "motion", "data": "frames/", "batch": 3,
                   "lr": 0.5, "weight_decay": 0.1, "grad_clip": 2.0, "ema": 0.5, "seed": 7}


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return "changed" if value is None else f"{value}-changed"


def test_resume_refuses_each_changed_fixed_option(tmp_path) -> None:
    train(_tc(tmp_path, steps=2, model="content"), progress=False)
    with pytest.raises(ValueError, match="--lr was 0.001"):
        train(_tc(tmp_path, model="content", lr=0.01), resume=True, progress=False)
    # The other options are changed in the saved run instead (a different --data or --preset
    # would fail earlier, opening the data or building the model): same comparison, same error.
    state_file = tmp_path / "ckpt_0000002.state.pt"
    saved = torch.load(state_file, weights_only=True)
    (tmp_path / "ckpt_notes.state.pt").write_text("")  # not a save: ignored, not an error
    # Options added to TrainConfig.FIXED later are held too, with some other value.
    later = {key: _changed(saved["train_config"].get(key)) for key in TrainConfig.FIXED
             if key not in MUST_NOT_CHANGE}
    for key, other in {**MUST_NOT_CHANGE, **later}.items():
        state = {**saved, "train_config": {**saved["train_config"], key: other}}
        torch.save(state, state_file)
        flag = key.replace("_", "-")
        with pytest.raises(ValueError, match=f"--{flag} was {other!r} in the run being resumed"):
            train(_tc(tmp_path, model="content"), resume=True, progress=False)
    # A run saved before an option existed resumes with that option's default, loading the
    # saved weights and optimizer state.
    older = {k: v for k, v in saved["train_config"].items() if k != "grad_clip"}
    torch.save({**saved, "train_config": older}, state_file)
    assert train(_tc(tmp_path, model="content", steps=2), resume=True, progress=False).step == 2
    with pytest.raises(ValueError, match="nothing to resume"):
        train(_tc(tmp_path / "empty"), resume=True, progress=False)


def test_keep_last_k_and_motion_only_carries_content(tmp_path) -> None:
    first = train(_tc(tmp_path / "c", model="content", steps=2, save_every=1), progress=False)
    assert first.ema["content"] is not None
    train(_tc(tmp_path / "m", model="motion", steps=3, save_every=1, keep=2, preview_every=3,
              init=str(tmp_path / "c" / "model.safetensors")), progress=False)
    assert (tmp_path / "m" / "preview_0000003.gif").stat().st_size > 0
    names = sorted(p.name for p in (tmp_path / "m").glob("ckpt_*"))
    assert names == ["ckpt_0000002.safetensors", "ckpt_0000002.state.pt",
                     "ckpt_0000003.safetensors", "ckpt_0000003.state.pt"]
    final = load_checkpoint(tmp_path / "m" / "model.safetensors")
    assert final.content is not None and final.motion is not None


def _ddp_worker(rank: int, world: int, port: int, out: str, result_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    result = train(_tc(out, steps=2, device="cpu"), progress=False)
    torch.save(_states(result), os.path.join(result_dir, f"rank{rank}.pt"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_ddp_keeps_ranks_identical(tmp_path) -> None:
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path / "run"), str(tmp_path)), nprocs=2)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    # Ranks drew different data, and only rank 0 wrote the run folder.
    single = train(_tc(tmp_path / "single", steps=2), progress=False)
    assert any(not torch.equal(r0[k], v) for k, v in _states(single).items())
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_cli_bad_data_is_one_line(tmp_path) -> None:
    result = CliRunner().invoke(train_command, ["--data", str(tmp_path / "nope"), "--steps", "1",
                                                "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "dataset folder not found" in result.output and "Traceback" not in result.output


def test_cond_blur_softens_previous_frames_and_is_recorded(tmp_path) -> None:
    from vidm_rt.train.batches import blurred_condition

    prev = -np.ones((3, 3, 16, 16), np.float32)
    prev[:, :, 5:10, 5:10] = 1.0  # a square on black, as the shapes are drawn
    gen = torch.Generator().manual_seed(0)
    assert np.allclose(blurred_condition(prev, 0.0, gen), prev)
    soft = blurred_condition(prev, 1.5, gen)
    assert soft.shape == prev.shape and soft.dtype == prev.dtype
    # Softer edges (less gradient energy), each frame's mass kept, one draw per sample.
    energy = [float((np.diff(v, axis=-1) ** 2).sum()) for v in (prev[0], *soft)]
    assert all(e < energy[0] for e in energy[1:])
    assert np.allclose(soft.mean(axis=(1, 2, 3)), prev.mean(axis=(1, 2, 3)), atol=1e-5)
    assert len({round(e, 3) for e in energy[1:]}) == 3
    result = CliRunner().invoke(train_command, [
        "--model", "motion", "--steps", "1", "--batch", "2", "--cond-blur", "1.0", "-q",
        "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    with safe_open(tmp_path / "model.safetensors", "np") as f:
        assert json.loads(f.metadata()["vidm_rt.train"])["cond_blur"] == 1.0
    bad = CliRunner().invoke(train_command, ["--cond-blur", "-1", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "--cond-blur" in bad.output
