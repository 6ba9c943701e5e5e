// Types shared by the function registry and the runtimes.
#pragma once

#include <cstddef>
#include <functional>
#include <msgpack.hpp>
#include <string>
#include <unordered_map>
#include <vector>

namespace ray {
namespace internal {

// A read-only view of one serialized argument.
struct ArgView {
  const char *data = nullptr;
  size_t size = 0;
};
using ArgsViewList = std::vector<ArgView>;

// A registered free or static function: deserializes its arguments, calls
// the function, serializes the result (msgpack nil for void, the address as
// an unsigned integer for an actor factory's pointer).
using RemoteFunction = std::function<msgpack::sbuffer(const ArgsViewList &)>;
using RemoteFunctionMap_t = std::unordered_map<std::string, RemoteFunction>;

// A registered member function, called on the actor object at `actor`.
using RemoteMemberFunction = std::function<msgpack::sbuffer(void *actor, const ArgsViewList &)>;
using RemoteMemberFunctionMap_t = std::unordered_map<std::string, RemoteMemberFunction>;

// Destroys an actor object made by a registered factory.
using ActorDeleter = void (*)(void *);

}  // namespace internal
}  // namespace ray
