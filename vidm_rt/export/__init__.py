"""`vidm-rt export`: a checkpoint to an export directory that ONNX Runtime runs directly.

    export/<name>/
        content.onnx   (when the checkpoint has a content model)
        flow.onnx      run once per frame
        motion.onnx    run once per step, with the flow as an input
        update.onnx    the sampler update (FP32), driven by the coefficient table
        *.fp16.onnx    FP16 variants of the denoisers (see export/fp16.py): motion, and content
                       too when ExportOptions.fp16_graphs names it
        model.safetensors   the weights, for the torch backend on the same schedule
        manifest.json  config, shapes, sampler table, versions, sha256 of every file

The stage's modules: options.py (what an export makes), pipeline.py (`export_checkpoint`, its
steps in order), graphs.py (torch -> ONNX), fp16.py and graph_regions.py (FP16 graphs),
update_graph.py (the sampler update), checks.py (ONNX Runtime against PyTorch); calibrate.py
and int8.py (`vidm-rt calibrate`: INT8 graphs); torch_only.py (a folder for the torch backend
alone).
"""

from .options import (
    DEFAULT_FP16_GRAPHS,
    EXPORT_REVISION,
    FP16_GRAPHS,
    TOLERANCE,
    ExportError,
    ExportOptions,
)
from .pipeline import export_checkpoint

__all__ = ["DEFAULT_FP16_GRAPHS", "EXPORT_REVISION", "FP16_GRAPHS", "TOLERANCE", "ExportError",
           "ExportOptions", "export_checkpoint"]
