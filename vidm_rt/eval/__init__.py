"""Video quality: moving-shapes statistics (`shapes`), reduced precision against FP32 on
identical noise (`precision`), and plots (`plot`)."""
