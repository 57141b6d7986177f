"""Reference models: shapes for every preset, PGN against its formula, flow, parameter counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vidm_rt.config import PRESETS, preset
from vidm_rt.models import ContentModel, MotionModel, split_output
from vidm_rt.models.flow import SPyNet, flow_warp
from vidm_rt.models.pgn import PositionalGroupNorm


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", list(PRESETS))
def test_output_shapes_every_preset(name: str) -> None:
    cfg = preset(name)
    s, b = cfg.image_size, 2
    # clevrer128 (194M parameters) runs on the meta device: shapes without the compute.
    device = "meta" if name == "clevrer128" else "cpu"
    with torch.device(device), torch.no_grad():
        content, motion = ContentModel(cfg), MotionModel(cfg)
        x = torch.randn(b, 3, s, s)
        t = torch.tensor([0.0, 999.0])
        k = torch.tensor([1.0, 5.0])
        out_c = content(x, t)
        flow = motion.compute_flow(x, x)
        out_m = motion.denoise(x, t, k, flow, x)
    assert out_c.shape == (b, 6, s, s)
    assert flow.shape == (b, 2, s, s)
    assert out_m.shape == (b, 6, s, s)
    eps, v = split_output(out_m)
    assert eps.shape == v.shape == (b, 3, s, s)


def test_tiny_is_well_under_a_million_and_small_is_an_edge_model() -> None:
    tiny, small = preset("tiny"), preset("small")
    assert count(ContentModel(tiny)) < 700_000
    assert count(MotionModel(tiny)) < 700_000
    for model in (ContentModel(small), MotionModel(small)):
        assert 5_000_000 <= count(model) <= 20_000_000


def test_clevrer128_parameter_counts_match_the_release() -> None:
    # VIDM.md: UNet 148,615,046, encoder 44,122,880, SPyNet 1,440,306 with its mean/std buffers.
    with torch.device("meta"):
        motion = MotionModel(preset("clevrer128"))
    assert count(motion.unet) == 148_615_046
    assert count(motion.encoder) == 44_122_880
    assert sum(t.numel() for t in motion.flow.state_dict().values()) == 1_440_306
    assert count(motion) == 194_178_226


def test_pgn_matches_direct_evaluation_of_its_formula() -> None:
    torch.manual_seed(0)
    c, h, w = 32, 5, 7
    pgn = PositionalGroupNorm(c).double()
    for p in pgn.parameters():  # non-trivial affine GN parameters too
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(2, c, h, w, dtype=torch.float64)
    tk = torch.tensor([[-0.3, 0.8], [0.9, -1.0]], dtype=torch.float64)
    got = pgn(x, tk).detach().numpy()

    # Direct: GN32 per sample, then for every pixel the 4-vector p -> MLP -> (gamma, beta).
    w0, b0 = pgn.embed.weight.detach().numpy(), pgn.embed.bias.detach().numpy()
    w1, b1 = pgn.mlp[0].weight.detach().numpy(), pgn.mlp[0].bias.detach().numpy()
    w2, b2 = pgn.mlp[2].weight.detach().numpy(), pgn.mlp[2].bias.detach().numpy()
    gn_w, gn_b = pgn.norm.weight.detach().numpy(), pgn.norm.bias.detach().numpy()
    xs = x.numpy()
    expected = np.empty_like(xs)
    for n in range(2):
        groups = xs[n].reshape(32, -1)
        mean = groups.mean(axis=1, keepdims=True)
        var = groups.var(axis=1, keepdims=True)
        gn = ((groups - mean) / np.sqrt(var + 1e-5)).reshape(c, h, w)
        gn = gn * gn_w[:, None, None] + gn_b[:, None, None]
        for i in range(h):
            for j in range(w):
                p = np.array([tk[n, 0].item(), tk[n, 1].item(),
                              -1 + 2 * i / (h - 1), -1 + 2 * j / (w - 1)])
                a = np.sin(w0 @ p + b0)
                z = w1 @ a + b1
                z = z / (1 + np.exp(-z))
                gb = w2 @ z + b2
                gamma, beta = gb[:c], gb[c:]
                expected[n, :, i, j] = gn[:, i, j] * (1 + gamma) + beta
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)


def test_pgn_depends_on_shape_not_on_a_cached_batch() -> None:
    pgn = PositionalGroupNorm(32)
    tk = torch.tensor([[0.1, 0.2]])
    a = pgn(torch.randn(1, 32, 4, 4), tk)
    b = pgn(torch.randn(3, 32, 8, 6), tk.expand(3, 2))
    assert a.shape == (1, 32, 4, 4) and b.shape == (3, 32, 8, 6)
    assert not any("coords" in name for name, _ in pgn.named_buffers())


def test_motion_positional_code() -> None:
    motion = MotionModel(preset("tiny"))  # train_frames 16, T = 1000
    code = motion.positional_code(torch.tensor([0.0, 999.0, 499.5]), torch.tensor([0.0, 15.0, 7.5]))
    np.testing.assert_allclose(code.numpy(), [[-1, -1], [1, 1], [0, 0]], atol=1e-6)


def test_flow_warp_shifts_by_integer_flow() -> None:
    img = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(1, 2, 5, 6)
    flow = torch.zeros(1, 2, 5, 6)
    flow[:, 0] = 1.0  # sample one pixel to the right
    out = flow_warp(img, flow)
    torch.testing.assert_close(out[..., :-1], img[..., 1:])
    torch.testing.assert_close(out[..., -1], img[..., -1])  # border padding


def test_spynet_zero_refiners_give_zero_flow_at_any_size() -> None:
    net = SPyNet(preset("tiny").flow)
    for p in net.parameters():
        torch.nn.init.zeros_(p)
    a, b = torch.rand(1, 3, 30, 36) * 2 - 1, torch.rand(1, 3, 30, 36) * 2 - 1
    flow = net(a, b)  # 30x36 is not a multiple of 4: resized up and back
    assert flow.shape == (1, 2, 30, 36)
    assert torch.count_nonzero(flow) == 0


def test_motion_flow_path_equals_forward() -> None:
    torch.manual_seed(0)
    cfg = preset("tiny")
    motion = MotionModel(cfg).eval()
    for p in motion.parameters():  # zero-initialised output convs would hide the fusion
        p.data.add_(0.01 * torch.randn_like(p))
    x, prev, first = (torch.rand(2, 3, 32, 32) * 2 - 1 for _ in range(3))
    t, k = torch.tensor([10.0, 500.0]), torch.tensor([1.0, 2.0])
    with torch.no_grad():
        a = motion(x, t, k, prev, first)
        b = motion.denoise(x, t, k, motion.compute_flow(first, prev), first)
        c = motion.denoise(x, t, k, torch.zeros(2, 2, 32, 32), first)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)  # the flow input matters
    assert math.isfinite(a.abs().max().item())


def test_attention_uses_head_major_qkv_layout() -> None:
    # The released weights use guided_diffusion's legacy order: qkv channels are
    # [head0: q k v, head1: q k v], each of num_head_channels channels.
    from vidm_rt.models.attention import AttentionBlock

    torch.manual_seed(0)
    block = AttentionBlock(128, num_head_channels=64).double()
    torch.nn.init.normal_(block.proj_out.weight)
    x = torch.randn(1, 128, 3, 4, dtype=torch.float64)
    flat = x.reshape(1, 128, 12)
    qkv = block.qkv(block.norm(flat))[0]  # (384, 12)
    heads = []
    for head in range(2):
        q, k, v = qkv[head * 192:(head + 1) * 192].split(64)
        attn = torch.softmax(q.T @ k / 8.0, dim=-1)  # (12, 12): query position x key position
        heads.append(v @ attn.T)
    expected = flat + block.proj_out(torch.cat(heads)[None])
    torch.testing.assert_close(block(x), expected.reshape(1, 128, 3, 4))
