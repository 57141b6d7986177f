// SHA-256 (FIPS 180-4) of a file, as lowercase hex: the manifest's content hashes.
// Self-contained so that the library needs no crypto package on a Jetson image.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vidm {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  std::string hex_digest();  // finishes the hash; call once

 private:
  void block(const unsigned char* p);
  std::uint32_t h_[8];
  unsigned char buf_[64];
  std::size_t buf_len_ = 0;
  std::uint64_t total_ = 0;
};

std::string sha256_hex(const void* data, std::size_t size);
// Throws vidm::Error if the file cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace vidm
