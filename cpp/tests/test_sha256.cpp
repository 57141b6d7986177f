// SHA-256 against FIPS 180-4 example vectors, incremental and one-shot.
#include <string>

#include "check.h"
#include "sha256.h"

int main() {
  CHECK(vidm::sha256_hex("", 0) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(vidm::sha256_hex("abc", 3) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(vidm::sha256_hex(two_blocks.data(), two_blocks.size()) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // One million 'a', fed in uneven pieces so every buffering path runs.
  const std::string a(1000000, 'a');
  vidm::Sha256 h;
  std::size_t pos = 0, piece = 1;
  while (pos < a.size()) {
    const std::size_t n = piece < a.size() - pos ? piece : a.size() - pos;
    h.update(a.data() + pos, n);
    pos += n;
    piece = piece * 3 % 257 + 1;
  }
  CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  return check::report("sha256");
}
