// A minimal test harness: CHECK records a failure and goes on; main returns report().
#pragma once

#include <cstdio>
#include <string>

namespace check {
inline int& failures() {
  static int n = 0;
  return n;
}
inline int report(const char* suite) {
  if (failures() == 0) {
    std::printf("%s: all checks passed\n", suite);
    return 0;
  }
  std::printf("%s: %d check(s) failed\n", suite, failures());
  return 1;
}
}  // namespace check

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      ++check::failures();                                                       \
      std::printf("%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);       \
    }                                                                            \
  } while (0)

#define CHECK_MSG(cond, msg)                                                                \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      ++check::failures();                                                                  \
      std::printf("%s:%d: CHECK failed: %s (%s)\n", __FILE__, __LINE__, #cond,             \
                  std::string(msg).c_str());                                                \
    }                                                                                       \
  } while (0)
