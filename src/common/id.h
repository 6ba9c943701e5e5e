// Strongly typed binary ids.
//
// Sizes follow Ray's layout so ids nest: an ObjectID is the TaskID that made
// it plus a 4-byte index (1.. for returns, puts count on from there), which
// is what lineage reconstruction needs later.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sunray {

template <typename Tag, size_t N>
class BinaryId {
 public:
  static constexpr size_t kSize = N;

  BinaryId() { bytes_.fill(0); }

  static BinaryId FromRandom();
  // Returns the nil id when `binary` has the wrong size.
  static BinaryId FromBinary(std::string_view binary) {
    BinaryId id;
    if (binary.size() == N) std::memcpy(id.bytes_.data(), binary.data(), N);
    return id;
  }

  bool IsNil() const {
    for (uint8_t b : bytes_)
      if (b != 0) return false;
    return true;
  }
  std::string Binary() const {
    return std::string(reinterpret_cast<const char *>(bytes_.data()), N);
  }
  std::string Hex() const;
  const uint8_t *Data() const { return bytes_.data(); }
  uint8_t *MutableData() { return bytes_.data(); }

  bool operator==(const BinaryId &other) const { return bytes_ == other.bytes_; }
  bool operator!=(const BinaryId &other) const { return bytes_ != other.bytes_; }
  bool operator<(const BinaryId &other) const { return bytes_ < other.bytes_; }

  template <typename H>
  friend H AbslHashValue(H h, const BinaryId &id) {
    return H::combine(std::move(h),
                      std::string_view(reinterpret_cast<const char *>(id.bytes_.data()), N));
  }

 private:
  std::array<uint8_t, N> bytes_;
};

// Fills `out` with `size` random bytes (thread-safe).
void FillRandom(uint8_t *out, size_t size);
// Lower-case hex of `size` bytes.
std::string ToHex(const uint8_t *data, size_t size);
// Hex of a binary id string of any size; used in error messages.
std::string BinaryToHex(std::string_view binary);
// The bytes a hex string spells; empty for anything that is not hex.
std::string HexToBinary(std::string_view hex);

template <typename Tag, size_t N>
BinaryId<Tag, N> BinaryId<Tag, N>::FromRandom() {
  BinaryId id;
  FillRandom(id.bytes_.data(), N);
  return id;
}

template <typename Tag, size_t N>
std::string BinaryId<Tag, N>::Hex() const {
  return ToHex(bytes_.data(), N);
}

struct JobIdTag {};
struct ActorIdTag {};
struct TaskIdTag {};
struct ObjectIdTag {};
struct NodeIdTag {};
struct PlacementGroupIdTag {};

using JobID = BinaryId<JobIdTag, 4>;
using ActorID = BinaryId<ActorIdTag, 16>;
using TaskID = BinaryId<TaskIdTag, 24>;
using NodeID = BinaryId<NodeIdTag, 28>;
using PlacementGroupID = BinaryId<PlacementGroupIdTag, 18>;

// Every id travels as its bytes (a proto `bytes` field); hex is for people
// (logs, error messages, the API's runtime context, environment variables).
// Reads the id in a request's `field`: InvalidArgument naming the field and
// what it held when it is not an id of that type.
template <typename Id>
absl::StatusOr<Id> IdFromWire(std::string_view field, std::string_view binary) {
  if (binary.size() != Id::kSize) {
    return absl::InvalidArgumentError(std::string(field) + " must be " + std::to_string(Id::kSize) +
                                      " bytes, got " + std::to_string(binary.size()) + " ('" +
                                      BinaryToHex(binary.substr(0, 64)) + "')");
  }
  return Id::FromBinary(binary);
}

// The `number`-th job of a cluster (the control service counts them from 1,
// as Ray does, so they read well: job 1 is "01000000").
inline JobID JobIdFromNumber(uint32_t number) {
  JobID id;
  std::memcpy(id.MutableData(), &number, sizeof(number));
  return id;
}

class ObjectID : public BinaryId<ObjectIdTag, 28> {
 public:
  using Base = BinaryId<ObjectIdTag, 28>;
  ObjectID() = default;
  ObjectID(const Base &base) : Base(base) {}

  static constexpr size_t kIndexSize = 4;

  // The `index`-th object made by `task` (returns count from 1).
  static ObjectID ForTask(const TaskID &task, uint32_t index);

  TaskID Task() const;
  uint32_t Index() const;
  static ObjectID FromBinary(std::string_view binary) { return Base::FromBinary(binary); }
};

}  // namespace sunray
