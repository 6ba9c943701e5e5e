// A process's connection to its node's object store (see StoreServer).
//
//   auto client = StoreClient::Connect({socket_path, rpc_address, token});
//   client->Put(id, bytes);
//   auto view = client->Get(id);   // zero-copy: points into shared memory
//   use(view->data(), view->size());
//
// Connect maps the store's segment once; objects are then read and written
// in place. A view pins its object until the view is destroyed. Closing the
// client (or the process dying) releases everything it still pins.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "objstore.grpc.pb.h"
#include "src/common/id.h"
#include "src/objstore/shared_memory.h"

namespace sunray {

class StoreClient {
 public:
  struct Options {
    std::string socket_path;  // the store's handshake socket
    std::string rpc_address;  // the node daemon's gRPC address
    std::string token;
    // Fault a new object's pages in with one madvise(MADV_POPULATE_WRITE)
    // before handing it to the writer: on VMs where each page fault costs
    // microseconds this is several times faster than faulting page by page
    // (docs/benchmarks.md).
    bool populate_on_create = true;
  };

  // A pinned, sealed object.
  class ObjectView {
   public:
    ~ObjectView();
    ObjectView(const ObjectView &) = delete;
    ObjectView &operator=(const ObjectView &) = delete;
    const char *data() const { return data_; }
    size_t size() const { return data_size_; }
    std::string_view metadata() const { return {data_ + data_size_, metadata_size_}; }

   private:
    friend class StoreClient;
    struct Core;
    ObjectView(std::shared_ptr<Core> core, ObjectID id, const char *data, size_t data_size,
               size_t metadata_size)
        : core_(std::move(core)),
          id_(id),
          data_(data),
          data_size_(data_size),
          metadata_size_(metadata_size) {}
    std::shared_ptr<Core> core_;
    ObjectID id_;
    const char *data_;
    size_t data_size_;
    size_t metadata_size_;
  };

  // PermissionDenied when the store refuses the token; Unavailable when it
  // cannot be reached.
  static absl::StatusOr<std::unique_ptr<StoreClient>> Connect(const Options &options);
  ~StoreClient();

  // Creates, fills and seals an object. ResourceExhausted ("object store
  // full: ...") when it does not fit; AlreadyExists for a taken id.
  absl::Status Put(const ObjectID &id, std::string_view data, std::string_view metadata = {},
                   const std::string &owner_address = {});
  // Put of an id that an earlier attempt may have written already: a task's
  // return value, whose id every attempt of the task shares. A sealed copy
  // already there is the earlier attempt's result and counts as this put
  // (OK); one another client is still writing is waited for, up to `wait`,
  // until it is sealed (OK) or aborted because its writer went away (then
  // this one writes). DeadlineExceeded if it is still being written then.
  absl::Status PutIdempotent(const ObjectID &id, std::string_view data,
                             const std::string &owner_address,
                             absl::Duration wait = absl::Seconds(30));
  // For writing in place: returns where data_size + metadata_size bytes go.
  absl::StatusOr<char *> Create(const ObjectID &id, size_t data_size, size_t metadata_size,
                                const std::string &owner_address = {});
  // Seals an object made with Create and drops the creator's pin.
  absl::Status Seal(const ObjectID &id);
  // Pins a sealed object. NotFound if absent, Unavailable if not sealed.
  absl::StatusOr<std::shared_ptr<ObjectView>> Get(const ObjectID &id);
  // Frees the objects once nobody pins them.
  absl::Status Delete(const std::vector<ObjectID> &ids);

  uint64_t client_id() const;

 private:
  explicit StoreClient(std::shared_ptr<ObjectView::Core> core) : core_(std::move(core)) {}
  std::shared_ptr<ObjectView::Core> core_;
};

}  // namespace sunray
