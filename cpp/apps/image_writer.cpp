#include "image_writer.h"

#include <cstdint>
#include <cstdio>
#include <vector>

#ifdef VIDM_RT_HAVE_ZLIB
#include <zlib.h>
#endif

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Interleaved 8-bit pixels, 1 channel (grey) or 3 (RGB; extra channels are dropped).
std::vector<unsigned char> to_bytes(const float* planar, int channels, int height, int width,
                                    int out_channels) {
  std::vector<unsigned char> px(static_cast<std::size_t>(height) * width * out_channels);
  const std::size_t plane = static_cast<std::size_t>(height) * width;
  for (std::size_t p = 0; p < plane; ++p) {
    for (int c = 0; c < out_channels; ++c) {
      float v = (planar[plane * c + p] + 1.0f) * 127.5f;
      v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
      px[p * out_channels + c] = static_cast<unsigned char>(v + 0.5f);
    }
  }
  (void)channels;
  return px;
}

void put_u32(std::vector<unsigned char>& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
}

#ifdef VIDM_RT_HAVE_ZLIB
void chunk(std::vector<unsigned char>& out, const char* type, const std::vector<unsigned char>& data) {
  put_u32(out, static_cast<std::uint32_t>(data.size()));
  const std::size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_u32(out, static_cast<std::uint32_t>(
                   crc32(0L, out.data() + start, static_cast<uInt>(out.size() - start))));
}

bool encode_png(const std::vector<unsigned char>& px, int oc, int height, int width,
                std::vector<unsigned char>& out) {
  std::vector<unsigned char> raw;
  const std::size_t row = static_cast<std::size_t>(width) * oc;
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);  // filter: none
    raw.insert(raw.end(), px.begin() + row * y, px.begin() + row * (y + 1));
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<unsigned char> z(size);
  if (compress2(z.data(), &size, raw.data(), static_cast<uLong>(raw.size()), 6) != Z_OK) return false;
  z.resize(size);
  const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  out.assign(sig, sig + 8);
  std::vector<unsigned char> ihdr;
  put_u32(ihdr, static_cast<std::uint32_t>(width));
  put_u32(ihdr, static_cast<std::uint32_t>(height));
  ihdr.insert(ihdr.end(), {8, static_cast<unsigned char>(oc == 3 ? 2 : 0), 0, 0, 0});
  chunk(out, "IHDR", ihdr);
  chunk(out, "IDAT", z);
  chunk(out, "IEND", {});
  return true;
}
#endif

}  // namespace

bool png_supported() {
#ifdef VIDM_RT_HAVE_ZLIB
  return true;
#else
  return false;
#endif
}

std::string write_frame(const std::string& path, const float* planar, int channels, int height,
                        int width) {
  const int oc = channels >= 3 ? 3 : 1;
  const auto px = to_bytes(planar, channels, height, width, oc);
  std::vector<unsigned char> data;
  if (ends_with(path, ".png")) {
#ifdef VIDM_RT_HAVE_ZLIB
    if (!encode_png(px, oc, height, width, data)) return "PNG compression failed";
#else
    return "this build has no zlib: write .ppm frames (--format ppm)";
#endif
  } else {
    const std::string header = std::string(oc == 3 ? "P6" : "P5") + "\n" + std::to_string(width) +
                               " " + std::to_string(height) + "\n255\n";
    data.assign(header.begin(), header.end());
    data.insert(data.end(), px.begin(), px.end());
  }
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return "cannot write " + tmp;
  const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    return "cannot write " + tmp;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return "cannot rename " + tmp + " to " + path;
  }
  return "";
}
