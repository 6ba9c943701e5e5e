// Serialization of user values: msgpack-c, Ray's contract.
//
// Any type msgpack-c can pack and convert works: arithmetic types, bool,
// std::string, std containers, tuples, std::vector<std::byte>, and user
// structs with MSGPACK_DEFINE(fields...). Each task argument and each return
// value is one msgpack blob.
//
// ObjectRefs and ActorHandles inside a value are serialized by id; while a
// value is being serialized, the ids of the ObjectRefs in it are collected so
// the runtime can keep those objects alive as long as the value exists.
#pragma once

#include <boost/core/demangle.hpp>
#include <cstddef>
#include <cstring>
#include <memory>
#include <msgpack.hpp>
#include <string>
#include <typeinfo>
#include <vector>

#include "ray/api/msgpack_adaptor.h"
#include "ray/api/ray_exception.h"
#include "ray/api/visibility.h"

namespace ray {
namespace internal {

// While alive on a thread, records every ObjectRef serialized on that thread.
// Scopes nest; the innermost one collects. With hold_references, each
// recorded id also gains a local reference, which the caller must drop
// (RemoveLocalReference) once the value is stored: a task's return value may
// be the only holder of a ref, and it is destroyed right after serializing.
class RAY_EXPORT ContainedRefCollector {
 public:
  explicit ContainedRefCollector(std::vector<std::string> *ids, bool hold_references = false);
  ~ContainedRefCollector();
  ContainedRefCollector(const ContainedRefCollector &) = delete;
  ContainedRefCollector &operator=(const ContainedRefCollector &) = delete;

 private:
  std::vector<std::string> *previous_;
  bool previous_hold_;
};

// Called by ObjectRef's serializer: records `object_id` in the innermost
// collector of this thread, if any.
RAY_EXPORT void RecordContainedObjectRef(const std::string &object_id);

// A serialized object the runtime hands out: bytes that stay valid as long as
// the buffer lives (they may be a view into shared memory).
class RAY_EXPORT ObjectBuffer {
 public:
  virtual ~ObjectBuffer() = default;
  virtual const char *Data() const = 0;
  virtual size_t Size() const = 0;
};

class Serializer {
 private:
  // msgpack streams: one that only counts, one that writes to a place of
  // known size.
  struct ByteCounter {
    size_t size = 0;
    void write(const char *, size_t n) { size += n; }
  };
  struct FixedWriter {
    char *at;
    void write(const char *data, size_t n) {
      std::memcpy(at, data, n);
      at += n;
    }
  };

 public:
  template <typename T>
  static msgpack::sbuffer Serialize(const T &value) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, value);
    return buffer;
  }

  // `size` bytes at `data` as a msgpack string (Deserialize<std::string>
  // reads them back); `data` may be null when `size` is 0.
  static msgpack::sbuffer Serialize(const char *data, size_t size) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> packer(buffer);
    packer.pack_str(static_cast<uint32_t>(size));
    if (size > 0) packer.pack_str_body(data, static_cast<uint32_t>(size));
    return buffer;
  }
  static msgpack::sbuffer Serialize(char *data, size_t size) {
    return Serialize(static_cast<const char *>(data), size);
  }
  static msgpack::sbuffer Serialize(std::nullptr_t, size_t size) {
    return Serialize(static_cast<const char *>(nullptr), size);
  }

  // Serializes `value` and appends the ids of ObjectRefs found inside it.
  template <typename T>
  static msgpack::sbuffer SerializeCollectingRefs(const T &value,
                                                  std::vector<std::string> *contained_ids) {
    ContainedRefCollector collector(contained_ids);
    return Serialize(value);
  }

  // How many bytes Serialize(value) produces (refs inside are not recorded).
  template <typename T>
  static size_t SerializedSize(const T &value) {
    std::vector<std::string> ignored;
    ContainedRefCollector collector(&ignored);
    ByteCounter counter;
    msgpack::pack(counter, value);
    return counter.size;
  }

  // Serializes `value` into `destination`, which has SerializedSize(value)
  // bytes, and appends the ids of ObjectRefs found inside it.
  template <typename T>
  static void SerializeInto(const T &value, char *destination,
                            std::vector<std::string> *contained_ids) {
    ContainedRefCollector collector(contained_ids);
    FixedWriter writer{destination};
    msgpack::pack(writer, value);
  }

  template <typename T>
  static T Deserialize(const char *data, size_t size) {
    T value;
    DeserializeInto(data, size, &value);
    return value;
  }

  template <typename T>
  static T Deserialize(const char *data, size_t size, size_t offset) {
    return Deserialize<T>(data + offset, size - offset);
  }

  // Converts the msgpack value in [data, data+size) into *out. Strings and
  // binaries are read in place (no intermediate copy). Throws
  // msgpack::type_error when the value does not convert to T.
  template <typename T>
  static void DeserializeInto(const char *data, size_t size, T *out) {
    msgpack::object_handle handle =
        msgpack::unpack(data, size, &Serializer::ReferenceInPlace, nullptr);
    handle.get().convert(*out);
  }

  // Deserializes a value read back from the runtime. Throws RayException
  // naming T when the bytes are not a T.
  template <typename T>
  static std::shared_ptr<T> DeserializeShared(const char *data, size_t size) {
    auto value = std::make_shared<T>();
    try {
      DeserializeInto(data, size, value.get());
    } catch (const RayException &) {
      throw;
    } catch (const std::exception &e) {
      throw RayException(std::string("The object's value could not be read as the requested "
                                     "type (") +
                         boost::core::demangle(typeid(T).name()) + "): " + e.what());
    }
    return value;
  }

  // Whether the blob is msgpack nil (what void functions return).
  static bool IsNil(const char *data, size_t size) {
    return size == 1 && static_cast<unsigned char>(data[0]) == 0xc0;
  }

 private:
  static bool ReferenceInPlace(msgpack::type::object_type, std::size_t, void *) { return true; }
};

}  // namespace internal
}  // namespace ray
