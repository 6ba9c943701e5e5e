// A shared-memory segment: an anonymous memory file (memfd) mapped into this
// process. The node daemon creates one per node for its object store; other
// processes on the node map the same file (they receive its descriptor) and
// read objects in place.
//
// The file has no name in any file system, so nothing is left behind when
// the last process holding it exits, however it exits.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace sunray {

class SharedMemorySegment {
 public:
  // Creates and maps a segment of `size` bytes. `name` only labels it (it
  // shows in /proc/<pid>/maps as "memfd:<name>").
  static absl::StatusOr<std::unique_ptr<SharedMemorySegment>> Create(const std::string &name,
                                                                     size_t size);

  // Maps the segment behind `fd` (which this object then owns and closes).
  static absl::StatusOr<std::unique_ptr<SharedMemorySegment>> Attach(int fd);

  ~SharedMemorySegment();
  SharedMemorySegment(const SharedMemorySegment &) = delete;
  SharedMemorySegment &operator=(const SharedMemorySegment &) = delete;

  char *base() const { return base_; }
  size_t size() const { return size_; }
  // The descriptor to hand to other processes.
  int fd() const { return fd_; }

 private:
  SharedMemorySegment(int fd, char *base, size_t size) : fd_(fd), base_(base), size_(size) {}

  int fd_;
  char *base_;
  size_t size_;
};

}  // namespace sunray
