// std::any as a value: what Ray's C++ API carries in a std::any, both ways.
//
// Packing: an empty any is nil; bool, every integer type, float and double,
// std::string (and const char *), std::vector<char> (binary) and
// std::vector<std::any> (an array of such values) pack as themselves.
// Anything else throws std::invalid_argument naming the held type.
//
// Unpacking gives: nil -> an empty any, bool -> bool, a non-negative integer
// -> uint64_t, a negative one -> int64_t, float32/float64 -> double, str ->
// std::string, bin -> std::vector<char>, array -> std::vector<std::any>.
// A map is refused with msgpack::type_error.
#pragma once

#include <any>
#include <boost/core/demangle.hpp>
#include <cstdint>
#include <msgpack.hpp>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

namespace ray {
namespace internal {

// Packs `value` if it holds a `T`; whether it did.
template <typename T, typename Stream>
bool PackAnyAs(msgpack::packer<Stream> &packer, const std::any &value) {
  const T *held = std::any_cast<T>(&value);
  if (held == nullptr) return false;
  packer.pack(*held);
  return true;
}

template <typename Stream, typename... Ts>
bool PackAnyAsOneOf(msgpack::packer<Stream> &packer, const std::any &value) {
  return (PackAnyAs<Ts>(packer, value) || ...);
}

}  // namespace internal
}  // namespace ray

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {

  template <>
  struct pack<std::any> {
    template <typename Stream>
    packer<Stream> &operator()(packer<Stream> &out, const std::any &value) const {
      if (!value.has_value()) {
        out.pack_nil();
        return out;
      }
      const bool packed =
          ray::internal::PackAnyAsOneOf<Stream, bool, char, signed char, unsigned char, short,
                                        unsigned short, int, unsigned, long, unsigned long,
                                        long long, unsigned long long, float, double, std::string,
                                        std::vector<char>, std::vector<std::any>>(out, value);
      if (!packed) {
        if (const char *const *text = std::any_cast<const char *>(&value)) {
          out.pack(std::string(*text != nullptr ? *text : ""));
          return out;
        }
        throw std::invalid_argument(
            "A std::any holding " + boost::core::demangle(value.type().name()) +
            " cannot be serialized: it may hold bool, an integer, float, double, std::string, "
            "std::vector<char> or std::vector<std::any>.");
      }
      return out;
    }
  };

  template <>
  struct convert<std::any> {
    const msgpack::object &operator()(const msgpack::object &in, std::any &value) const {
      switch (in.type) {
        case type::NIL:
          value.reset();
          break;
        case type::BOOLEAN:
          value = in.via.boolean;
          break;
        case type::POSITIVE_INTEGER:
          value = in.via.u64;
          break;
        case type::NEGATIVE_INTEGER:
          value = in.via.i64;
          break;
        case type::FLOAT32:
        case type::FLOAT64:
          value = in.via.f64;
          break;
        case type::STR:
          value = std::string(in.via.str.ptr, in.via.str.size);
          break;
        case type::BIN:
          value = std::vector<char>(in.via.bin.ptr, in.via.bin.ptr + in.via.bin.size);
          break;
        case type::ARRAY: {
          std::vector<std::any> items(in.via.array.size);
          for (uint32_t i = 0; i < in.via.array.size; ++i) in.via.array.ptr[i].convert(items[i]);
          value = std::move(items);
          break;
        }
        default:
          throw type_error();
      }
      return in;
    }
  };

  }  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS)
}  // namespace msgpack
