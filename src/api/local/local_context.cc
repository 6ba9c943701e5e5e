#include "src/api/local/local_context.h"

#include "ray/api/ray_exception.h"

namespace sunray {
namespace {

// Keeps the serialized result of a call alive as the object's value.
class SbufferObject : public ray::internal::ObjectBuffer {
 public:
  explicit SbufferObject(msgpack::sbuffer buffer) : buffer_(std::move(buffer)) {}
  const char *Data() const override { return buffer_.data(); }
  size_t Size() const override { return buffer_.size(); }

 private:
  msgpack::sbuffer buffer_;
};

}  // namespace

std::optional<ErrorInfo> LocalServices::ResolveArgs(const std::vector<ray::internal::TaskArg> &args,
                                                    ResolvedArgs *resolved) const {
  resolved->views.reserve(args.size());
  for (const auto &arg : args) {
    if (arg.buffer) {
      resolved->views.push_back({arg.buffer->data(), arg.buffer->size()});
      continue;
    }
    absl::StatusOr<std::vector<MemoryStore::Value>> values;
    {
      TaskPool::BlockedScope blocked;
      values = store.Get({arg.object_id}, -1);
    }
    if (!values.ok()) {
      if (std::optional<ErrorInfo> error = ObjectErrorOf(values.status())) return error;
      return ErrorInfo{ErrorType::kWorkerDied, std::string(values.status().message()), "", "", ""};
    }
    MemoryStore::Value &value = values->at(0);
    if (value.error) return *value.error;  // a failed dependency fails the call the same way
    resolved->views.push_back({value.data->Data(), value.data->Size()});
    resolved->keep_alive.push_back(std::move(value.data));
  }
  return std::nullopt;
}

void LocalServices::RetainArgs(const std::vector<ray::internal::TaskArg> &args) const {
  for (const auto &arg : args) {
    if (!arg.buffer) store.AddReference(arg.object_id);
    for (const auto &inner : arg.contained_object_ids) store.AddReference(inner);
  }
}

void LocalServices::ReleaseArgs(const std::vector<ray::internal::TaskArg> &args) const {
  for (const auto &arg : args) {
    if (!arg.buffer) store.RemoveReference(arg.object_id);
    for (const auto &inner : arg.contained_object_ids) store.RemoveReference(inner);
  }
}

void LocalServices::StoreResult(const std::string &return_id, ExecutionResult result) const {
  if (result.error) {
    StoreError(return_id, std::move(*result.error));
    return;
  }
  MemoryStore::Value value;
  value.data = std::make_shared<SbufferObject>(std::move(result.data));
  store.Seal(return_id, std::move(value), result.contained_ids);
  // The executor's references kept them alive until the value held them.
  for (const auto &id : result.contained_ids) store.RemoveReference(id);
}

void LocalServices::StoreError(const std::string &return_id, ErrorInfo error) const {
  MemoryStore::Value value;
  value.error = std::make_shared<const ErrorInfo>(std::move(error));
  store.Seal(return_id, std::move(value), {});
}

}  // namespace sunray
