// The C++ noise (vidm_rt/kernels/philox_noise.h) against the known answers and the golden values
// numpy produces (documented in vidm_rt/noise.py and tests/test_noise.py): Random123's Philox
// known-answer vectors, the first 8 normals of gaussian(1234, 0, 1, 2, (3, 4, 4)) bit for bit,
// and the checksum over all 12288 elements of gaussian(1234, 0, 1, 2, (3, 64, 64)).
#include <cstdint>
#include <cstring>
#include <vector>

#include "check.h"
#include "noise.h"
#include "philox_noise.h"

namespace {

std::uint32_t bits(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

}  // namespace

int main() {
  struct Kat {
    unsigned int ctr[4], key[2], out[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8}},
      {{0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF},
       {0xFFFFFFFF, 0xFFFFFFFF},
       {0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD}},
      {{0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344},
       {0xA4093822, 0x299F31D0},
       {0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1}},
  };
  for (const Kat& k : kats) {
    unsigned int out[4];
    vidm_philox4x32_10(k.ctr, k.key[0], k.key[1], out);
    for (int i = 0; i < 4; ++i) CHECK(out[i] == k.out[i]);
  }

  const std::uint32_t golden[8] = {0xBDC3A3C3, 0xBEBB6FA5, 0xBD6DC8D4, 0xBDF2CB9D,
                                   0x3ED2694D, 0xBFAEDB79, 0xBF8CBD8A, 0x3FFAEFF4};
  std::vector<float> v(3 * 4 * 4);
  vidm::gaussian_batch(1234, 0, 1, 1, 2, v.size(), v.data());
  for (int i = 0; i < 8; ++i) CHECK_MSG(bits(v[i]) == golden[i], "element " + std::to_string(i));

  std::vector<float> big(3 * 64 * 64);
  vidm::gaussian_batch(1234, 0, 1, 1, 2, big.size(), big.data());
  std::uint64_t sum = 0;
  for (std::size_t e = 0; e < big.size(); ++e) sum += (e + 1) * std::uint64_t(bits(big[e]));
  CHECK(sum == 0x02393101026AFFE6ull);
  // The value of an element depends on its index only, not on the requested length.
  CHECK(std::memcmp(v.data(), big.data(), v.size() * sizeof(float)) == 0);

  // Video b of a batch is the same as that video alone.
  std::vector<float> pair(2 * 10), single(10);
  vidm::gaussian_batch(99, 4, 2, 3, 5, 10, pair.data());
  vidm::gaussian_batch(99, 5, 1, 3, 5, 10, single.data());
  CHECK(std::memcmp(pair.data() + 10, single.data(), 10 * sizeof(float)) == 0);

  // Rows with their own address (continuous batching): each row equals that address alone, and
  // the whole matches numpy's gaussian_slots([2**63 + 5, 7, 7], [3, 0, 2**32 - 1],
  // [0, 9, 2**31], 4, (50,)) (the checksum above, over all 150 elements).
  std::uint32_t rows[12];
  vidm::noise_row_words((1ull << 63) + 5, 3, 0, rows);
  vidm::noise_row_words(7, 0, 9, rows + 4);
  vidm::noise_row_words(7, 0xFFFFFFFFu, 0x80000000u, rows + 8);
  std::vector<float> slots(3 * 50), alone(50);
  vidm::gaussian_rows(rows, 3, 4, 50, slots.data());
  vidm::gaussian_batch(7, 0, 1, 9, 4, 50, alone.data());
  CHECK(std::memcmp(slots.data() + 50, alone.data(), 50 * sizeof(float)) == 0);
  std::uint64_t slot_sum = 0;
  for (std::size_t e = 0; e < slots.size(); ++e) slot_sum += (e + 1) * std::uint64_t(bits(slots[e]));
  CHECK(slot_sum == 0x168E3D8DF5ECull);
  return check::report("noise_golden");
}
