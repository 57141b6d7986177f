// Declaration-only stand-in for TensorRT's NvInferVersion.h (compile check; see README.md).
#pragma once

#ifndef VIDM_RT_STUB_TENSORRT_MINOR
#define VIDM_RT_STUB_TENSORRT_MINOR 3
#endif

#define NV_TENSORRT_MAJOR 10
#define NV_TENSORRT_MINOR VIDM_RT_STUB_TENSORRT_MINOR
#define NV_TENSORRT_PATCH 0
