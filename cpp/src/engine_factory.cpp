#include "closed_form_engine.h"
#include "engine.h"
#include "error.h"
#ifdef VIDM_RT_WITH_TENSORRT
#include "tensorrt/tensorrt_engine.h"
#endif

namespace vidm {

std::unique_ptr<Engine> make_engine(const Manifest& m, unsigned int flags) {
  if (m.closed_form > 0) return std::make_unique<ClosedFormEngine>(m);
  if (m.kind == "tensorrt") {
#ifdef VIDM_RT_WITH_TENSORRT
    return std::make_unique<TensorRTEngine>(m, flags);
#else
    (void)flags;
    throw Error(VIDM_RT_ERROR_UNSUPPORTED,
                m.dir + ": TensorRT engines need libvidm_rt built with TensorRT and CUDA (see "
                        "the Jetson build in README.md)");
#endif
  }
  throw Error(VIDM_RT_ERROR_UNSUPPORTED,
              m.dir + ": holds '" + m.kind + "' graphs; the C library runs TensorRT engines: "
                      "build them with `vidm-rt build " + m.dir + "`");
}

}  // namespace vidm
