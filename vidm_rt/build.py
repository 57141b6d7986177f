"""`vidm-rt build`: one TensorRT plan per graph of an export, plus an engine manifest.

    engines/<name>/   content.plan flow.plan motion.plan update.plan manifest.json (kind "tensorrt")
                      (+ motion.final.plan, content.final.plan: int8's FP32 final steps)

The graphs of the requested precision come from the export manifest's "precisions" section
(`manifest.precision_files`): fp16 from `vidm-rt export`, int8 (QDQ) from `vidm-rt calibrate`,
which for TensorRT are the INT8 + FP16 graphs it lists in quantization.tensorrt_files.
Each is parsed with TensorRT's ONNX parser and built with the Python API (named tensors only):

- TensorRT >= 10.12 (and 11.x, where it is the only mode): a strongly typed network; the ONNX
  graph's own types decide the precision and no precision flag is set (weak typing is deprecated
  in 10.12 and removed in 11.0).
- older 10.x (JetPack 6 ships 10.3): a weakly typed network with the FP16 flag for the fp16
  graphs, and FP16 + INT8 for the QDQ graphs (explicit quantization of the FP16 graph); graphs
  whose file is the FP32 one in that precision too (update, flow) get no flag and build in FP32.
  The FP16 flag lets TensorRT lower any layer, so every layer of a reduced graph whose outputs
  the graph types FP32 (all but its convolutions and products, export/fp16.py) is pinned to
  FP32 with OBEY_PRECISION_CONSTRAINTS.
- static shapes need no optimisation profile; a graph with a dynamic input gets one profile with
  min = opt = max = the export's shape.
- one timing cache shared by all graphs, read before and written after the build, so a rebuild
  on the same GPU and TensorRT is fast.
- --dla-core N: DLA as the default device with GPU fallback (Jetson AGX Orin); DLA runs only
  fp16 and int8.

The manifest records the TensorRT version, the GPU's name and compute capability; the TensorRT
backend refuses plans built elsewhere. The engine directory is written to a temporary folder and
renamed into place, so a failed build leaves nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .atomic import atomic_write, holds, write_bytes
from .export.calibrate import TENSORRT_FILES
from .manifest import (
    MANIFEST,
    Manifest,
    TensorRTTarget,
    base_graph,
    final_steps,
    load_manifest,
    precision_files,
    require_kind,
    write_manifest,
)

STRONGLY_TYPED_FROM = (10, 12)
# Fields of the export manifest that the engines share with it: what they run (schedule,
# shapes) and which weights (fp16_weights: rounded to FP16 at export).
SHARED_FIELDS = ("config", "batch", "height", "width", "frames", "frame_index", "sampler",
                 "fp16_weights")


class BuildError(ValueError):
    """TensorRT could not parse or build a graph; nothing was written."""


@dataclass
class BuildOptions:
    precision: str = "fp16"
    out: Path | None = None            # default: engines/<export name>-<precision>
    workspace_mb: int | None = None    # TensorRT's default: the device's memory
    timing_cache: Path | None = None   # default: engines/timing-trt<version>-sm<cc>.cache
    opt_level: int | None = None       # builder_optimization_level 0..5 (TensorRT default 3)
    dla_core: int | None = None
    device: int = 0


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit())


def strongly_typed(tensorrt_version: str) -> bool:
    return version_tuple(tensorrt_version) >= STRONGLY_TYPED_FROM


def default_paths(export_dir: Path, options: BuildOptions, tensorrt_version: str,
                  compute_capability: str) -> tuple[Path, Path]:
    out = options.out or Path("engines") / f"{export_dir.name}-{options.precision}"
    cache = options.timing_cache or out.parent / (
        f"timing-trt{tensorrt_version}-sm{compute_capability.replace('.', '')}.cache")
    return out, cache


def _configure(trt: Any, builder: Any, network: Any, options: BuildOptions, strong: bool,
               cache: Any | None, shapes: dict[str, list[int]], reduced: bool) -> Any:
    """The builder config of one graph; `reduced`: its file is an FP16 or INT8 graph."""
    config = builder.create_builder_config()
    if options.workspace_mb is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    if options.opt_level is not None:
        config.builder_optimization_level = options.opt_level
    if hasattr(trt.BuilderFlag, "TF32"):
        # TensorRT allows TF32 by default, which rounds the inputs of FP32 convs and matmuls to
        # FP16's 10-bit mantissa: fp32 engines are the reference, and what a reduced-precision
        # graph keeps in FP32 (its output conv, an FP32 flow) is kept there for accuracy.
        config.clear_flag(trt.BuilderFlag.TF32)
    # A weakly typed build lets the flags lower any layer of the network, whatever its ONNX
    # types: graphs that every precision runs in FP32 (the sampler update, the flow) get none.
    # An INT8 graph is the FP16 graph with Q/DQ, so it gets FP16 too (else every layer that is
    # not quantized would run FP32).
    if not strong and reduced:
        config.set_flag(trt.BuilderFlag.FP16)
    if not strong and reduced and options.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    if options.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = options.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    if cache is not None:
        config.set_timing_cache(cache, ignore_mismatch=False)
    dynamic = [network.get_input(i) for i in range(network.num_inputs)
               if any(d < 0 for d in network.get_input(i).shape)]
    if dynamic:
        profile = builder.create_optimization_profile()
        for tensor in dynamic:
            shape = tuple(shapes[tensor.name])
            profile.set_shape(tensor.name, shape, shape, shape)
        config.add_optimization_profile(profile)
    return config


def _pin_fp32_layers(trt: Any, network: Any, config: Any) -> int | None:
    """Pin every layer whose float outputs are all FP32 in the parsed network (the graph's own
    types) to FP32, and make the builder obey it; returns how many were pinned, None when the
    network reports no FP16 tensor at all (the types did not come through: pinning would make
    it all FP32, so the FP16 flag decides alone). Without this the FP16 flag of a weakly typed
    build may run the normalizations, the residual stream and the output conv in FP16, which
    the FP16 graph keeps FP32 for accuracy. Casts, constants and shapes keep their types."""
    floats = (trt.float32, trt.float16)
    skip = {trt.LayerType.CAST, trt.LayerType.IDENTITY, trt.LayerType.CONSTANT,
            trt.LayerType.SHAPE}
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    outputs = [[layer.get_output(j).dtype for j in range(layer.num_outputs)] for layer in layers]
    if not any(t == trt.float16 for types in outputs for t in types):
        return None
    pinned = 0
    for layer, types in zip(layers, outputs, strict=True):
        float_types = [t for t in types if t in floats]
        if layer.type in skip or not float_types or any(t != trt.float32 for t in float_types):
            continue
        layer.precision = trt.float32
        for j, t in enumerate(types):
            if t == trt.float32:
                layer.set_output_type(j, trt.float32)
        pinned += 1
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    return pinned


def build_engines(export_dir: str | Path, options: BuildOptions,
                  progress: Callable[[str], None] | None = None) -> Path:
    """Build every graph of the export at options.precision; returns the engine directory."""
    from .runtime.cuda_memory import open_device
    from .runtime.tensorrt_backend import import_tensorrt

    say = progress or (lambda _msg: None)
    export_dir = Path(export_dir)
    manifest = load_manifest(export_dir)
    require_kind(manifest, "onnx", export_dir, "build")
    if options.dla_core is not None and options.precision == "fp32":
        raise ValueError("DLA runs fp16 and int8 only: build with --precision fp16 or int8")
    files = precision_files(manifest, options.precision, export_dir)
    if options.precision == "int8":
        # The INT8 + FP16 graphs calibrate wrote for TensorRT (export/calibrate.py), where the
        # FP32-typed QDQ graphs ONNX Runtime runs would build INT8 + FP32.
        files.update((manifest.quantization or {}).get(TENSORRT_FILES, {}))
    finals = final_steps(manifest, options.precision)
    trt = import_tensorrt()
    # The device is opened only for its name and compute capability (the engines are built for
    # it): closed before returning, also when the build fails.
    gpu = open_device(options.device)
    try:
        return _build(trt, gpu, export_dir, manifest, files, finals, options, say)
    finally:
        gpu.close()


def _build(trt: Any, gpu: Any, export_dir: Path, manifest: Manifest,
           files: dict[str, str], finals: dict[str, int], options: BuildOptions,
           say: Callable[[str], None]) -> Path:
    version = trt.__version__
    out, cache_path = default_paths(export_dir, options, version, gpu.compute_capability)
    strong = strongly_typed(version)

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    if options.dla_core is not None and not 0 <= options.dla_core < builder.num_DLA_cores:
        raise ValueError(f"this device has {builder.num_DLA_cores} DLA cores: --dla-core "
                         f"{options.dla_core} does not exist")
    cache_data = cache_path.read_bytes() if cache_path.is_file() else b""
    cache = None
    with atomic_write(out, directory=True, ours=holds(MANIFEST)) as tmp:
        graphs: dict[str, Any] = {}
        for graph, file in files.items():
            say(f"building {graph}.plan from {file} ({options.precision}, TensorRT {version})")
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strong else 0
            network = builder.create_network(flags)
            parser = trt.OnnxParser(network, logger)
            if not parser.parse_from_file(str(export_dir / file)):
                errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
                raise BuildError(f"{export_dir / file}: TensorRT cannot parse it: {errors}")
            base = base_graph(graph)
            spec = manifest.graphs[base]
            shapes = {name: list(s.shape) for name, s in spec.inputs.items()}
            if cache is None:
                cache = builder.create_builder_config().create_timing_cache(cache_data)
            reduced = file != spec.file
            config = _configure(trt, builder, network, options, strong, cache, shapes, reduced)
            pinned = None
            if not strong and reduced:
                pinned = _pin_fp32_layers(trt, network, config)
                say(f"  weakly typed: {pinned} of {network.num_layers} layers pinned to FP32"
                    if pinned is not None else "  weakly typed: TensorRT reports no FP16 tensor "
                    "in the parsed graph; no layer pinned, the FP16 flag decides")
            plan = builder.build_serialized_network(network, config)
            if plan is None:
                raise BuildError(f"TensorRT could not build {graph} from {file} (see its log "
                                 "above); nothing was written")
            (tmp / f"{graph}.plan").write_bytes(bytes(plan))
            graphs[graph] = replace(spec, file=f"{graph}.plan", source=file,
                                    precision=options.precision if reduced else "fp32",
                                    fp32_layers=pinned,
                                    steps=finals[base] if graph != base else None)
        write_manifest(tmp, Manifest(
            **{key: getattr(manifest, key) for key in SHARED_FIELDS},
            kind="tensorrt",
            name=out.name,
            graphs=graphs,
            files=dict.fromkeys((g.file for g in graphs.values()), ""),
            tensorrt=TensorRTTarget(version, gpu.device_name, gpu.compute_capability,
                                    options.precision, str(export_dir), strongly_typed=strong,
                                    dla_core=options.dla_core,
                                    workspace_mb=options.workspace_mb,
                                    opt_level=options.opt_level),
            versions={**manifest.versions, "tensorrt": version},
        ))
        if cache is not None:
            write_bytes(cache_path, bytes(cache.serialize()))
    return out
