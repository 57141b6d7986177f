"""Config presets and their JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from vidm_rt.config import PRESETS, UNetConfig, VIDMConfig, preset


@pytest.mark.parametrize("name", list(PRESETS))
def test_json_round_trip(name: str) -> None:
    cfg = preset(name)
    back = VIDMConfig.from_json(cfg.to_json())
    assert back == cfg
    assert isinstance(back.motion.channel_mult, tuple)


def test_clevrer128_is_the_released_configuration() -> None:
    cfg = preset("clevrer128")
    m = cfg.motion
    assert (cfg.image_size, m.model_channels, m.channel_mult, m.num_res_blocks) == (
        128, 128, (1, 1, 2, 2, 4, 4), 2)
    assert m.attention_downsample_rates(128) == (16,)  # attention at 8x8
    assert (m.num_head_channels, m.resblock_updown, cfg.train_frames) == (64, True, 128)
    assert (cfg.flow.levels, cfg.flow.channels, cfg.flow.kernel_size) == (6, (32, 64, 32, 16), 7)
    assert cfg.diffusion.num_timesteps == 1000 and cfg.fusion_weight == 0.2


def test_invalid_configs_are_rejected_with_a_reason() -> None:
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        preset("huge")
    tiny = preset("tiny")
    with pytest.raises(ValueError, match="not a multiple of 8"):
        dataclasses.replace(tiny, motion=dataclasses.replace(tiny.motion, model_channels=36))
    with pytest.raises(ValueError, match="not a multiple of 32"):
        dataclasses.replace(tiny, motion=dataclasses.replace(tiny.motion, norm_groups=32,
                                                             model_channels=48))
    with pytest.raises(ValueError, match="not divisible"):
        dataclasses.replace(tiny, image_size=30)
    d = tiny.to_dict()
    d["version"] = 99
    with pytest.raises(ValueError, match="version 99"):
        VIDMConfig.from_dict(d)
    d = tiny.to_dict()
    d["motion"]["bogus"] = 1
    with pytest.raises(ValueError, match="bogus"):
        VIDMConfig.from_dict(d)
    with pytest.raises(ValueError, match="not valid JSON"):
        VIDMConfig.from_json("{")
    assert json.loads(tiny.to_json())["name"] == "tiny"
    assert isinstance(tiny.content, UNetConfig)
