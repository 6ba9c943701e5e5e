// Access to the process's runtime, set by ray::Init and cleared by
// ray::Shutdown.
#pragma once

#include <memory>
#include <string>

#include "ray/api/ray_runtime.h"
#include "ray/api/visibility.h"

namespace ray {
namespace internal {

// The current runtime. Throws RayException if ray::Init has not been called.
RAY_EXPORT std::shared_ptr<RayRuntime> GetRayRuntime();

// The current runtime, or null.
RAY_EXPORT std::shared_ptr<RayRuntime> TryGetRayRuntime();

// Reference counting for ObjectRef copies. No-ops when no runtime is running
// (an ObjectRef may outlive ray::Shutdown). Never throw.
RAY_EXPORT void AddLocalReference(const std::string &object_id) noexcept;
RAY_EXPORT void RemoveLocalReference(const std::string &object_id) noexcept;

// Serialization hooks for ObjectRefs nested in values (see ObjectRef).
RAY_EXPORT std::string GetOwnershipInfo(const std::string &object_id);
RAY_EXPORT void AddBorrowedReference(const std::string &object_id, const std::string &owner_info);

}  // namespace internal
}  // namespace ray
