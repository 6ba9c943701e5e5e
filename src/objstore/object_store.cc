#include "src/objstore/object_store.h"

#include <boost/interprocess/managed_external_buffer.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/sync/mutex_family.hpp>
#include <new>

namespace sunray {
namespace {

namespace bip = boost::interprocess;

// Only the store process allocates, under mu_, so the allocator needs no
// locks of its own.
using ExternalBuffer =
    bip::basic_managed_external_buffer<char, bip::rbtree_best_fit<bip::null_mutex_family>,
                                       bip::iset_index>;

// Objects start on cache-line boundaries.
constexpr size_t kAlignment = 64;

// Room for the allocator's own bookkeeping, beyond the capacity for objects.
size_t AllocatorOverhead(size_t capacity) { return (1 << 20) + capacity / 64; }

std::string Bytes(size_t bytes) { return std::to_string(bytes) + " bytes"; }

}  // namespace

class ObjectStore::Allocator {
 public:
  Allocator(char *base, size_t size) : buffer_(bip::create_only, base, size) {}
  void *Allocate(size_t size) { return buffer_.allocate_aligned(size, kAlignment, std::nothrow); }
  void Free(void *pointer) { buffer_.deallocate(pointer); }

 private:
  ExternalBuffer buffer_;
};

absl::StatusOr<std::unique_ptr<ObjectStore>> ObjectStore::Create(Options options) {
  if (options.capacity_bytes == 0) {
    return absl::InvalidArgumentError("the object store needs a capacity above zero");
  }
  const size_t segment_size = options.capacity_bytes + AllocatorOverhead(options.capacity_bytes);
  auto segment = SharedMemorySegment::Create(options.segment_name, segment_size);
  if (!segment.ok()) return segment.status();
  auto allocator = std::make_unique<Allocator>((*segment)->base(), (*segment)->size());
  return std::unique_ptr<ObjectStore>(
      new ObjectStore(std::move(options), *std::move(segment), std::move(allocator)));
}

ObjectStore::ObjectStore(Options options, std::unique_ptr<SharedMemorySegment> segment,
                         std::unique_ptr<Allocator> allocator)
    : options_(std::move(options)),
      segment_(std::move(segment)),
      allocator_(std::move(allocator)) {}

ObjectStore::~ObjectStore() {
  absl::MutexLock lock(&mu_);
  objects_.clear();
  allocator_.reset();  // before the segment it lives in is unmapped
}

size_t ObjectStore::PinnedBytesLocked() const {
  size_t pinned = 0;
  for (const auto &[id, entry] : objects_) {
    if (!entry.pins.empty()) pinned += entry.location.data_size + entry.location.metadata_size;
  }
  return pinned;
}

std::string ObjectStore::UsageLocked() const {
  const size_t pinned = PinnedBytesLocked();
  return "capacity " + Bytes(options_.capacity_bytes) + ", in use " + Bytes(used_bytes_) + " by " +
         std::to_string(objects_.size()) + " objects, " + Bytes(pinned) +
         " of them pinned by readers or writers";
}

absl::StatusOr<ObjectStore::Location> ObjectStore::CreateObject(const ObjectID &id,
                                                                size_t data_size,
                                                                size_t metadata_size,
                                                                ClientId creator,
                                                                const std::string &owner_address) {
  const size_t total = data_size + metadata_size;
  absl::MutexLock lock(&mu_);
  if (absl::Status known = CheckClientLocked(creator); !known.ok()) return known;
  if (auto it = objects_.find(id); it != objects_.end()) {
    if (!it->second.sealed && it->second.creator != creator) {
      return absl::AbortedError("object " + id.Hex() + " is still being written by client " +
                                std::to_string(it->second.creator));
    }
    return absl::AlreadyExistsError("object " + id.Hex() + " already exists in the store");
  }
  if (total > options_.capacity_bytes) {
    return absl::ResourceExhaustedError("object store full: object " + id.Hex() + " needs " +
                                        Bytes(total) + ", more than the store's whole " +
                                        UsageLocked());
  }
  if (used_bytes_ + total > options_.capacity_bytes) {
    return absl::ResourceExhaustedError("object store full: object " + id.Hex() + " needs " +
                                        Bytes(total) + "; " + UsageLocked());
  }
  void *pointer = allocator_->Allocate(std::max<size_t>(total, 1));
  if (pointer == nullptr) {
    return absl::ResourceExhaustedError("object store full: no contiguous free block for " +
                                        Bytes(total) + " (object " + id.Hex() + "); " +
                                        UsageLocked());
  }
  Entry entry;
  entry.location.offset = static_cast<size_t>(static_cast<char *>(pointer) - segment_->base());
  entry.location.data_size = data_size;
  entry.location.metadata_size = metadata_size;
  entry.creator = creator;
  entry.owner = owner_address;
  entry.pins[creator] = 1;
  used_bytes_ += total;
  Location location = entry.location;
  objects_.emplace(id, std::move(entry));
  return location;
}

absl::Status ObjectStore::Seal(const ObjectID &id) {
  absl::MutexLock lock(&mu_);
  auto it = objects_.find(id);
  if (it == objects_.end())
    return absl::NotFoundError("object " + id.Hex() + " is not in the store");
  if (it->second.sealed) {
    return absl::FailedPreconditionError("object " + id.Hex() + " is already sealed");
  }
  it->second.sealed = true;
  return absl::OkStatus();
}

absl::Status ObjectStore::Abort(const ObjectID &id, ClientId creator) {
  absl::MutexLock lock(&mu_);
  auto it = objects_.find(id);
  if (it == objects_.end())
    return absl::NotFoundError("object " + id.Hex() + " is not in the store");
  if (it->second.sealed || it->second.creator != creator) {
    return absl::FailedPreconditionError("object " + id.Hex() +
                                         " is sealed or was created by another client");
  }
  FreeLocked(it);
  return absl::OkStatus();
}

void ObjectStore::AddClient(ClientId client) {
  absl::MutexLock lock(&mu_);
  clients_.insert(client);
}

absl::Status ObjectStore::CheckClientLocked(ClientId client) const {
  if (clients_.contains(client)) return absl::OkStatus();
  return absl::FailedPreconditionError("store client " + std::to_string(client) +
                                       " is not connected to this store");
}

absl::StatusOr<ObjectStore::Location> ObjectStore::Get(const ObjectID &id, ClientId client) {
  absl::MutexLock lock(&mu_);
  if (absl::Status known = CheckClientLocked(client); !known.ok()) return known;
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.delete_requested) {
    return absl::NotFoundError("object " + id.Hex() + " is not in the store");
  }
  if (!it->second.sealed) {
    return absl::UnavailableError("object " + id.Hex() + " is not sealed yet");
  }
  ++it->second.pins[client];
  return it->second.location;
}

absl::Status ObjectStore::Release(const ObjectID &id, ClientId client) {
  absl::MutexLock lock(&mu_);
  auto it = objects_.find(id);
  if (it == objects_.end())
    return absl::NotFoundError("object " + id.Hex() + " is not in the store");
  auto pin = it->second.pins.find(client);
  if (pin == it->second.pins.end()) {
    return absl::NotFoundError("the client holds no pin on object " + id.Hex());
  }
  if (--pin->second == 0) it->second.pins.erase(pin);
  MaybeFreeLocked(it);
  return absl::OkStatus();
}

absl::Status ObjectStore::Delete(const ObjectID &id) {
  absl::MutexLock lock(&mu_);
  auto it = objects_.find(id);
  if (it == objects_.end())
    return absl::NotFoundError("object " + id.Hex() + " is not in the store");
  it->second.delete_requested = true;
  MaybeFreeLocked(it);
  return absl::OkStatus();
}

int ObjectStore::DeleteOwnedBy(const std::string &owner_address) {
  if (owner_address.empty()) return 0;
  absl::MutexLock lock(&mu_);
  std::vector<ObjectID> owned;
  for (const auto &[id, entry] : objects_) {
    if (entry.owner == owner_address) owned.push_back(id);
  }
  for (const auto &id : owned) {
    auto it = objects_.find(id);
    it->second.delete_requested = true;
    MaybeFreeLocked(it);
  }
  return static_cast<int>(owned.size());
}

void ObjectStore::ReleaseClient(ClientId client) {
  absl::MutexLock lock(&mu_);
  clients_.erase(client);
  std::vector<ObjectID> touched;
  for (auto &[id, entry] : objects_) {
    if (entry.pins.erase(client) > 0 || (!entry.sealed && entry.creator == client)) {
      touched.push_back(id);
    }
  }
  for (const auto &id : touched) {
    auto it = objects_.find(id);
    if (!it->second.sealed && it->second.creator == client) {
      FreeLocked(it);
    } else {
      MaybeFreeLocked(it);
    }
  }
}

void ObjectStore::MaybeFreeLocked(absl::flat_hash_map<ObjectID, Entry>::iterator it) {
  if (it->second.delete_requested && it->second.pins.empty()) FreeLocked(it);
}

void ObjectStore::FreeLocked(absl::flat_hash_map<ObjectID, Entry>::iterator it) {
  const Location &location = it->second.location;
  allocator_->Free(segment_->base() + location.offset);
  used_bytes_ -= location.data_size + location.metadata_size;
  objects_.erase(it);
}

bool ObjectStore::ContainsSealed(const ObjectID &id) const {
  absl::MutexLock lock(&mu_);
  auto it = objects_.find(id);
  return it != objects_.end() && it->second.sealed && !it->second.delete_requested;
}

ObjectStore::Stats ObjectStore::GetStats() const {
  absl::MutexLock lock(&mu_);
  Stats stats;
  stats.capacity_bytes = options_.capacity_bytes;
  stats.used_bytes = used_bytes_;
  stats.num_objects = objects_.size();
  stats.pinned_bytes = PinnedBytesLocked();
  return stats;
}

}  // namespace sunray
