// ray::ObjectRef<T>: a distributed future for a value of type T.
//
//   ray::ObjectRef<int> ref = ray::Task(Plus).Remote(1, 2);
//   std::shared_ptr<int> value = ref.Get();    // blocks until the task ran
//
// Copies share one object: every live ObjectRef (in any process) keeps the
// object alive, and when the last one goes away the runtime frees it. An
// ObjectRef may be passed to tasks, returned from them, or stored inside
// other values (it is serialized by id).
#pragma once

#include <memory>
#include <msgpack.hpp>
#include <string>
#include <utility>
#include <vector>

#include "ray/api/ray_runtime_holder.h"
#include "ray/api/serializer.h"

namespace ray {

namespace internal {

// Throws unless the runtime's buffer list has the expected size.
inline void CheckBufferCount(size_t got, size_t expected) {
  if (got != expected) {
    throw RayException("Get object error: expected " + std::to_string(expected) +
                       " values, the runtime returned " + std::to_string(got) + ".");
  }
}

template <typename T>
std::shared_ptr<T> GetFromRuntime(const std::string &id, int timeout_ms) {
  auto buffers = GetRayRuntime()->Get({id}, timeout_ms);
  CheckBufferCount(buffers.size(), 1);
  return Serializer::DeserializeShared<T>(buffers[0]->Data(), buffers[0]->Size());
}

// Shared by ObjectRef<T> and ObjectRef<void>: the id and its reference count.
class ObjectRefBase {
 public:
  ObjectRefBase() = default;
  ObjectRefBase(const std::string &id) : id_(id) { AddLocalReference(id_); }
  ObjectRefBase(const ObjectRefBase &other) : id_(other.id_) { AddLocalReference(id_); }
  ObjectRefBase(ObjectRefBase &&other) noexcept : id_(std::move(other.id_)) { other.id_.clear(); }
  ObjectRefBase &operator=(const ObjectRefBase &other) {
    if (this != &other && id_ != other.id_) {
      Release();
      id_ = other.id_;
      AddLocalReference(id_);
    }
    return *this;
  }
  ObjectRefBase &operator=(ObjectRefBase &&other) noexcept {
    if (this != &other) {
      Release();
      id_ = std::move(other.id_);
      other.id_.clear();
    }
    return *this;
  }
  ~ObjectRefBase() { Release(); }

  // The binary object id.
  const std::string &ID() const { return id_; }

  // Serialized as [id, owner info]; records the id as contained in the value
  // being serialized.
  template <typename Packer>
  void msgpack_pack(Packer &packer) const {
    RecordContainedObjectRef(id_);
    packer.pack_array(2);
    packer.pack_bin(static_cast<uint32_t>(id_.size()));
    packer.pack_bin_body(id_.data(), static_cast<uint32_t>(id_.size()));
    std::string owner = id_.empty() ? std::string() : GetOwnershipInfo(id_);
    packer.pack_bin(static_cast<uint32_t>(owner.size()));
    packer.pack_bin_body(owner.data(), static_cast<uint32_t>(owner.size()));
  }

  void msgpack_unpack(const msgpack::object &object) {
    if (object.type != msgpack::type::ARRAY || object.via.array.size != 2 ||
        object.via.array.ptr[0].type != msgpack::type::BIN ||
        object.via.array.ptr[1].type != msgpack::type::BIN) {
      throw msgpack::type_error();
    }
    const auto &id = object.via.array.ptr[0].via.bin;
    const auto &owner = object.via.array.ptr[1].via.bin;
    Release();
    id_.assign(id.ptr, id.size);
    if (!id_.empty()) AddBorrowedReference(id_, std::string(owner.ptr, owner.size));
  }

 protected:
  void Release() noexcept {
    if (!id_.empty()) {
      RemoveLocalReference(id_);
      id_.clear();
    }
  }

  std::string id_;
};

}  // namespace internal

template <typename T>
class ObjectRef : public internal::ObjectRefBase {
 public:
  using ObjectRefBase::ObjectRefBase;
  ObjectRef() = default;

  bool operator==(const ObjectRef<T> &other) const { return id_ == other.id_; }
  bool operator!=(const ObjectRef<T> &other) const { return id_ != other.id_; }

  // Blocks until the value exists and returns a fresh copy of it. Throws the
  // exception the producing task failed with, if any.
  std::shared_ptr<T> Get() const { return internal::GetFromRuntime<T>(id_, -1); }
  // As Get(), but throws RayTimeoutException after `timeout_ms`.
  std::shared_ptr<T> Get(const int &timeout_ms) const {
    return internal::GetFromRuntime<T>(id_, timeout_ms);
  }

  static bool IsObjectRef() { return true; }
};

// The result of a function returning void: Get() only waits (and rethrows).
template <>
class ObjectRef<void> : public internal::ObjectRefBase {
 public:
  using ObjectRefBase::ObjectRefBase;
  ObjectRef() = default;

  bool operator==(const ObjectRef<void> &other) const { return id_ == other.id_; }
  bool operator!=(const ObjectRef<void> &other) const { return id_ != other.id_; }

  void Get() const { Get(-1); }
  void Get(const int &timeout_ms) const {
    auto buffers = internal::GetRayRuntime()->Get({id_}, timeout_ms);
    internal::CheckBufferCount(buffers.size(), 1);
  }

  static bool IsObjectRef() { return true; }
};

}  // namespace ray
