// Writing one RGB/grey frame in [-1, 1] as binary PPM/PGM or PNG (PNG needs zlib).
#pragma once

#include <string>

// Writes planar float pixels (channels x height x width) to `path` (.ppm or .png) through a
// temporary file renamed into place; returns an error message, or "" on success.
std::string write_frame(const std::string& path, const float* planar, int channels, int height,
                        int width);
bool png_supported();
