// The cluster runtime's objects: the public API's puts, reads and waits go
// to the ObjectProvider (object_provider.h); reference counting (local
// refs, borrowing, the owner's borrowers) is the ReferenceCounter's. Here
// the provider's errors become the API's exceptions.
#include "src/worker/runtime_state.h"

namespace sunray {

std::string ClusterRuntime::Put(std::shared_ptr<msgpack::sbuffer> data,
                                const std::vector<std::string> &contained_ids) {
  absl::StatusOr<std::string> id = objects_->Put(std::move(data), contained_ids);
  if (!id.ok()) ThrowStatus(id.status());
  return *std::move(id);
}

std::string ClusterRuntime::PutDirect(size_t size, const std::function<void(char *)> &write,
                                      const std::vector<std::string> &contained_ids) {
  absl::StatusOr<std::string> id = objects_->PutDirect(size, write, contained_ids);
  if (!id.ok()) ThrowStatus(id.status());
  return *std::move(id);
}

std::vector<std::shared_ptr<ray::internal::ObjectBuffer>> ClusterRuntime::Get(
    const std::vector<std::string> &ids, int timeout_ms) {
  auto values = objects_->Get(ids, timeout_ms);
  if (!values.ok()) ThrowStatus(values.status());
  return *std::move(values);
}

std::vector<bool> ClusterRuntime::Wait(const std::vector<std::string> &ids, int num_objects,
                                       int timeout_ms) {
  return objects_->Wait(ids, num_objects, timeout_ms);
}

void ClusterRuntime::AddLocalReference(const std::string &id) { refs_->AddLocalReference(id); }

void ClusterRuntime::RemoveLocalReference(const std::string &id) {
  refs_->RemoveLocalReference(id);
}

std::string ClusterRuntime::GetOwnershipInfo(const std::string &id) { return refs_->OwnerOf(id); }

void ClusterRuntime::AddBorrowedReference(const std::string &id, const std::string &owner_info) {
  refs_->AddBorrowedReference(id, owner_info);
}

}  // namespace sunray
