#include "src/objstore/shared_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"

namespace sunray {
namespace {

absl::Status ErrnoError(const std::string &what) {
  return absl::InternalError(what + ": " + std::strerror(errno));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SharedMemorySegment>> SharedMemorySegment::Create(
    const std::string &name, size_t size) {
  if (size == 0) return absl::InvalidArgumentError("a shared-memory segment needs a size");
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) return ErrnoError("memfd_create(" + name + ")");
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    absl::Status status =
        ErrnoError("sizing the shared-memory segment to " + std::to_string(size) + " bytes");
    close(fd);
    return status;
  }
  void *base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    absl::Status status = ErrnoError("mapping " + std::to_string(size) + " bytes of shared memory");
    close(fd);
    return status;
  }
  return std::unique_ptr<SharedMemorySegment>(
      new SharedMemorySegment(fd, static_cast<char *>(base), size));
}

absl::StatusOr<std::unique_ptr<SharedMemorySegment>> SharedMemorySegment::Attach(int fd) {
  struct stat info {};
  if (fstat(fd, &info) != 0) {
    absl::Status status = ErrnoError("inspecting a shared-memory segment descriptor");
    close(fd);
    return status;
  }
  const size_t size = static_cast<size_t>(info.st_size);
  if (size == 0) {
    close(fd);
    return absl::InvalidArgumentError("the shared-memory segment is empty");
  }
  void *base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    absl::Status status =
        ErrnoError("mapping a shared-memory segment of " + std::to_string(size) + " bytes");
    close(fd);
    return status;
  }
  return std::unique_ptr<SharedMemorySegment>(
      new SharedMemorySegment(fd, static_cast<char *>(base), size));
}

SharedMemorySegment::~SharedMemorySegment() {
  munmap(base_, size_);
  close(fd_);
}

}  // namespace sunray
