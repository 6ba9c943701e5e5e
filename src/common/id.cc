#include "src/common/id.h"

#include <mutex>
#include <random>

namespace sunray {

void FillRandom(uint8_t *out, size_t size) {
  // One generator per thread, seeded from the OS, so ids from concurrent
  // threads (and processes) do not collide.
  thread_local std::mt19937_64 generator([] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }());
  size_t i = 0;
  while (i < size) {
    uint64_t word = generator();
    size_t n = std::min(sizeof(word), size - i);
    std::memcpy(out + i, &word, n);
    i += n;
  }
}

std::string ToHex(const uint8_t *data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex(size * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    hex[2 * i] = kDigits[data[i] >> 4];
    hex[2 * i + 1] = kDigits[data[i] & 0xf];
  }
  return hex;
}

std::string BinaryToHex(std::string_view binary) {
  return ToHex(reinterpret_cast<const uint8_t *>(binary.data()), binary.size());
}

std::string HexToBinary(std::string_view hex) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return {};
  std::string binary(hex.size() / 2, '\0');
  for (size_t i = 0; i < binary.size(); ++i) {
    const int high = digit(hex[2 * i]);
    const int low = digit(hex[2 * i + 1]);
    if (high < 0 || low < 0) return {};
    binary[i] = static_cast<char>(high << 4 | low);
  }
  return binary;
}

ObjectID ObjectID::ForTask(const TaskID &task, uint32_t index) {
  ObjectID id;
  std::memcpy(id.MutableData(), task.Data(), TaskID::kSize);
  std::memcpy(id.MutableData() + TaskID::kSize, &index, kIndexSize);
  return id;
}

TaskID ObjectID::Task() const {
  return TaskID::FromBinary(
      std::string_view(reinterpret_cast<const char *>(Data()), TaskID::kSize));
}

uint32_t ObjectID::Index() const {
  uint32_t index = 0;
  std::memcpy(&index, Data() + TaskID::kSize, kIndexSize);
  return index;
}

}  // namespace sunray
