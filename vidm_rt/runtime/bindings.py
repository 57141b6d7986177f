"""Device addresses of the schedule's buffers and the binding table of each launch (numpy only).

On a GPU every buffer is one allocation; a table buffer (coef, t) is one allocation too and a
launch that binds row i gets the table's address plus i row pitches (rows padded to 256 bytes:
TensorRT requires every I/O tensor address to be at least 256-byte aligned, as documented for
IExecutionContext::setTensorAddress; cudaMalloc and cudaHostAlloc return such addresses). A
launch's binding table is the list of (tensor name, address) pairs it sets on its graph's
execution context before enqueueing, checked against the engine's own I/O tensors: every I/O
tensor bound, each to a buffer of its direction, shape and dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..manifest import ManifestError
from .plan import BufferSpec, Launch, Ref


@dataclass(frozen=True)
class TensorInfo:
    """One I/O tensor of an engine, as the engine reports it."""

    name: str
    is_input: bool
    shape: tuple[int, ...]   # -1 for a dynamic dimension
    dtype: str               # numpy name: "float32", ...


ALIGN = 256


def row_pitch(spec: BufferSpec) -> int:
    """Bytes from one table row to the next in device memory."""
    return math.ceil(spec.row_nbytes / ALIGN) * ALIGN if spec.table else spec.nbytes


def device_nbytes(spec: BufferSpec) -> int:
    return spec.shape[0] * row_pitch(spec) if spec.table else spec.nbytes


class DeviceLayout:
    """Buffer name -> device address of its first byte."""

    def __init__(self, specs: list[BufferSpec], addresses: dict[str, int]) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.addresses = dict(addresses)

    def address(self, ref: Ref) -> int:
        name, row = ref
        spec = self.specs[name]
        if row is None:
            return self.addresses[name]
        if not (spec.table and 0 <= row < spec.shape[0]):
            raise IndexError(f"{name} has no row {row}")
        return self.addresses[name] + row * row_pitch(spec)

    def shape(self, ref: Ref) -> tuple[int, ...]:
        spec = self.specs[ref[0]]
        return spec.shape if ref[1] is None else spec.row_shape


def binding_table(launch: Launch, layout: DeviceLayout, io: dict[str, TensorInfo],
                  what: str) -> list[tuple[str, int]]:
    """(tensor name, address) for every I/O tensor of the launch's engine; `what` names the
    engine in errors (they mean the engine does not belong to this schedule: rebuild it)."""
    refs = {**launch.inputs, **launch.outputs}
    if set(refs) != set(io):
        raise ManifestError(
            f"{what}: the engine's tensors {sorted(io)} are not the schedule's {sorted(refs)}: "
            "run `vidm-rt build` again")
    table = []
    for name, info in io.items():
        ref = refs[name]
        if info.is_input != (name in launch.inputs):
            raise ManifestError(f"{what}: {name} has the wrong direction: run `vidm-rt build` "
                                "again")
        shape, dtype = layout.shape(ref), layout.specs[ref[0]].dtype
        if len(info.shape) != len(shape) or any(
                d not in (-1, s) for d, s in zip(info.shape, shape, strict=True)):
            raise ManifestError(f"{what}: {name} has shape {list(info.shape)}, the schedule's "
                                f"buffer {list(shape)}: run `vidm-rt build` again")
        if info.dtype != dtype:
            raise ManifestError(f"{what}: {name} is {info.dtype}, the schedule's buffer {dtype} "
                                "(graph inputs and outputs stay float32 in every precision)")
        table.append((name, layout.address(ref)))
    return table
