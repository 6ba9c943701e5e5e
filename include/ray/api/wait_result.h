// ray::WaitResult<T>: what ray::Wait returns.
#pragma once

#include <list>
#include <utility>

#include "ray/api/object_ref.h"

namespace ray {

template <typename T>
class WaitResult {
 public:
  WaitResult() = default;
  WaitResult(std::list<ObjectRef<T>> &&ready_refs, std::list<ObjectRef<T>> &&unready_refs)
      : ready(std::move(ready_refs)), unready(std::move(unready_refs)) {}

  // Both lists keep the order the refs had in Wait's input.
  std::list<ObjectRef<T>> ready;
  std::list<ObjectRef<T>> unready;
};

}  // namespace ray
