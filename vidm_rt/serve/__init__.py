"""Serving: `vidm-rt serve` runs the generator behind Triton Inference Server (PyTriton), many
clients sharing the export's batch rows as slots (continuous batching, `slots`); `vidm-rt
request` and `client` stream a video from it. docs/serving.md has the deployment guide.

pytriton and tritonclient come with the `serve` extra and are imported only when used.
"""

MODEL = "vidm"
STATS_MODEL = "vidm_stats"
