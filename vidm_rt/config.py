"""Model configurations: dataclass presets with an exact JSON round trip.

A `VIDMConfig` travels with every artifact: inside checkpoints (safetensors metadata), and in
export and engine manifests. It holds everything needed to rebuild both denoisers and the
diffusion process they were trained with, and nothing about how a video is sampled (frames,
steps and sampler are choices made at export or generation time).

Presets:
    tiny        32x32, 0.52M (content) and 0.62M (motion) parameters: tests and CI.
    small       64x64, the edge target: 5.2M (content) and 7.6M (motion) parameters.
    clevrer128  the released VIDM CLEVRER configuration (see ../shared/VIDM.md), exactly.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

CONFIG_VERSION = 1


@dataclass(frozen=True)
class UNetConfig:
    """A guided_diffusion-style UNet.

    `attention_resolutions` are feature-map sizes in pixels (8 means "attention at 8x8"), not the
    downsampling factors guided_diffusion uses internally; `ds = image_size // resolution`.
    `norm_groups` is 32 in VIDM. With as many groups as channels GroupNorm becomes instance norm,
    and the output block can no longer carry a per-image mean (DC) into eps: the sampler's x0
    estimate then saturates to a random flat colour. Narrow presets use fewer groups.
    """

    model_channels: int
    channel_mult: tuple[int, ...]
    num_res_blocks: int
    attention_resolutions: tuple[int, ...]
    num_head_channels: int = 64
    norm_groups: int = 32
    dropout: float = 0.0
    resblock_updown: bool = True

    def attention_downsample_rates(self, image_size: int) -> tuple[int, ...]:
        return tuple(image_size // r for r in self.attention_resolutions)


@dataclass(frozen=True)
class FlowConfig:
    """The SPyNet-style flow network: `levels` pyramid levels, one small conv net per level.

    Inputs are resized to a multiple of 2**(levels-1). The released model uses mmediting's SPyNet:
    6 levels, widths (32, 64, 32, 16), 7x7 kernels.
    """

    levels: int = 6
    channels: tuple[int, ...] = (32, 64, 32, 16)
    kernel_size: int = 7


@dataclass(frozen=True)
class DiffusionConfig:
    """The training diffusion process (guided_diffusion's linear schedule, learned-range sigma)."""

    num_timesteps: int = 1000
    noise_schedule: str = "linear"
    p2_gamma: float = 1.0
    p2_k: float = 1.0


@dataclass(frozen=True)
class SamplerSpec:
    """The sampler a checkpoint was made for: a student of `vidm-rt distill` learned to make
    frames in exactly these `steps` DDIM steps at the timesteps `spacing` selects
    (vidm_rt.schedule.space_timesteps), and runs badly with any other. `vidm-rt export` uses it
    by default; checkpoints without one export with the default sampler (ancestral 20)."""

    sampler: str
    steps: int
    spacing: str
    eta: float = 0.0

    def __post_init__(self) -> None:
        from .schedule import SAMPLERS

        if self.sampler not in SAMPLERS:
            raise ValueError(f"invalid VIDM config: sampler {self.sampler!r} is not one of "
                             f"{', '.join(SAMPLERS)}")
        if self.steps < 1 or self.eta < 0:
            raise ValueError(f"invalid VIDM config: sampler steps {self.steps} must be at least "
                             f"1 and eta {self.eta} at least 0")


@dataclass(frozen=True)
class VIDMConfig:
    """Both denoisers of a VIDM model and the process they were trained with.

    `train_frames` is F of the positional code k~ = -1 + 2k/(F-1) in the motion model's PGN layers.
    `cond_noise` is the one sampling-time setting training fixes: the standard deviation of the
    Gaussian noise added to the previous frame before the motion model sees it (0: none). A
    model trained with `vidm-rt train --cond-noise S` saw previous frames with noise of standard
    deviation uniform in [0, 2S], so at S its own slightly wrong frames look like its training
    inputs and errors do not compound frame by frame. Export records it in the manifest and
    every backend applies it from there.
    `prev_input` (not in the released VIDM): the motion UNet also reads the previous frame itself,
    beside the flow, so the tensor the flow stage hands the denoiser is [flow, x_prev], 2 + C
    channels (`cond_channels`). A small flow net trained only through the denoising loss learns
    no flow (docs/quality.md), and the previous frame then reaches the model through two
    channels of features: shapes it cannot see pop in or vanish in one step.

    `sampler` is None except for checkpoints made for one sampler (SamplerSpec); it is left out
    of the JSON when None, so configs written before it existed read and write unchanged.
    """

    name: str
    image_size: int
    content: UNetConfig
    motion: UNetConfig
    flow: FlowConfig = field(default_factory=FlowConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    image_channels: int = 3
    train_frames: int = 128
    fusion_weight: float = 0.2
    cond_noise: float = 0.0
    prev_input: bool = False
    sampler: SamplerSpec | None = None
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        problems = []
        for role, unet in (("content", self.content), ("motion", self.motion)):
            ds = 2 ** (len(unet.channel_mult) - 1)
            if self.image_size % ds:
                problems.append(
                    f"{role}: image_size {self.image_size} is not divisible by {ds}, "
                    f"the UNet's total downsampling for channel_mult {unet.channel_mult}"
                )
            for mult in unet.channel_mult:
                if (unet.model_channels * mult) % unet.norm_groups:
                    problems.append(
                        f"{role}: {unet.model_channels * mult} channels is not a multiple of "
                        f"{unet.norm_groups} (the GroupNorm groups)"
                    )
            for res in unet.attention_resolutions:
                if res <= 0 or self.image_size % res:
                    problems.append(
                        f"{role}: attention resolution {res} does not divide {self.image_size}"
                    )
        if self.train_frames < 2:
            problems.append("train_frames must be at least 2")
        if not 0.0 <= self.cond_noise < 1.0:
            problems.append(f"cond_noise {self.cond_noise} must be in [0, 1)")
        if problems:
            raise ValueError("invalid VIDM config: " + "; ".join(problems))

    @property
    def cond_channels(self) -> int:
        """Channels of the flow stage's output, the motion denoiser's `flow` input."""
        return 2 + (self.image_channels if self.prev_input else 0)

    @property
    def output_channels(self) -> int:
        """eps and v (learned-range variance) for every image channel."""
        return 2 * self.image_channels

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["sampler"] is None:
            del d["sampler"]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VIDMConfig:
        d = dict(d)
        version = d.get("version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise ValueError(
                f"config version {version} is not supported by this vidm-rt "
                f"(expects {CONFIG_VERSION}): re-export the model with this version"
            )
        try:
            return cls(
                content=_build(UNetConfig, d.pop("content")),
                motion=_build(UNetConfig, d.pop("motion")),
                flow=_build(FlowConfig, d.pop("flow", {})),
                diffusion=_build(DiffusionConfig, d.pop("diffusion", {})),
                sampler=(None if d.get("sampler") is None
                         else _build(SamplerSpec, d.pop("sampler"))),
                **{k: v for k, v in d.items() if k != "sampler"},
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"malformed VIDM config: {e}") from None

    @classmethod
    def from_json(cls, text: str) -> VIDMConfig:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"config is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise ValueError("config JSON must be an object")
        return cls.from_dict(d)


def _build(cls: type, d: dict[str, Any]) -> Any:
    """Dataclass from a JSON dict: lists become tuples so a round trip compares equal."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise TypeError(f"unknown {cls.__name__} fields {sorted(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _tiny() -> VIDMConfig:
    unet = UNetConfig(
        model_channels=32,
        channel_mult=(1, 1, 1),
        num_res_blocks=1,
        attention_resolutions=(8,),
        num_head_channels=64,
        norm_groups=8,  # 4 channels per group, as in the released model's first level
    )
    return VIDMConfig(
        name="tiny",
        image_size=32,
        content=unet,
        motion=unet,
        flow=FlowConfig(levels=3, channels=(8, 16, 8, 4), kernel_size=5),
        train_frames=16,
    )


def _small() -> VIDMConfig:
    unet = UNetConfig(
        model_channels=32,
        channel_mult=(1, 2, 4, 4),
        num_res_blocks=1,
        attention_resolutions=(8,),
        num_head_channels=64,
        norm_groups=8,
    )
    return VIDMConfig(
        name="small",
        image_size=64,
        content=unet,
        motion=unet,
        flow=FlowConfig(levels=4, channels=(16, 32, 16, 8), kernel_size=7),
        train_frames=32,
    )


def _clevrer128() -> VIDMConfig:
    # MKFMIKU/vidm video_generation_CLEVRER.py: model_channels 128, channel_mult (1,1,2,2,4,4),
    # 2 res blocks, attention at ds 16 (8x8 at 128x128), 64 channels per head, resblock up/down,
    # 1000 diffusion steps, 128 training frames. The content generator was never released: its
    # UNet here reuses the motion UNet's configuration.
    unet = UNetConfig(
        model_channels=128,
        channel_mult=(1, 1, 2, 2, 4, 4),
        num_res_blocks=2,
        attention_resolutions=(8,),
        num_head_channels=64,
    )
    return VIDMConfig(
        name="clevrer128",
        image_size=128,
        content=unet,
        motion=unet,
        flow=FlowConfig(levels=6, channels=(32, 64, 32, 16), kernel_size=7),
        train_frames=128,
    )


PRESETS = {"tiny": _tiny, "small": _small, "clevrer128": _clevrer128}


def preset(name: str) -> VIDMConfig:
    """A fresh copy of a named preset."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}"
        ) from None
