// ThreadSanitizer builds only: tells TSan about absl::Mutex.
//
// Debian's Abseil is not built with -fsanitize=thread, so absl::Mutex locks
// inside libabsl_synchronization where TSan cannot see it, and every access
// guarded by one reads as a race. This library defines the Mutex and CondVar
// entry points itself: each calls Abseil's own (found with dlsym RTLD_NEXT)
// and reports the lock or unlock to TSan through its mutex annotations
// (sanitizer/tsan_interface.h). It is linked into every target of a tsan
// build ahead of Abseil, so its definitions interpose on Abseil's for our
// code and for gRPC's (which locks with absl::Mutex too). Abseil's own
// calls between these entry points (AwaitWithTimeout calls AwaitWithDeadline)
// come here too: only the outermost reports. Its waits release and retake
// the mutex inside Abseil; the wrappers of Await and CondVar::Wait report
// those.
//
// What it cannot give TSan: an absl::Condition evaluated inside Abseil
// while it holds the mutex, and synchronization gRPC does with its own
// atomics (scripts/tsan.supp says what is suppressed for them).
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

// The mangled names below spell Debian's inline namespace.
#define SUNRAY_STRINGIFY(x) #x
#define SUNRAY_NAME(x) SUNRAY_STRINGIFY(x)
static_assert(std::string_view(SUNRAY_NAME(ABSL_OPTION_INLINE_NAMESPACE_NAME)) == "debian3",
              "tsan_absl_mutex.cc names Debian 12's Abseil symbols (absl::debian3)");

namespace {

// Abseil's definition of the function whose mangled name is `name`.
template <typename Function>
Function Real(const char *name) {
  void *symbol = dlsym(RTLD_NEXT, name);
  if (symbol == nullptr) {
    std::fprintf(stderr, "tsan_absl_mutex: no %s after this library: %s\n", name, dlerror());
    std::abort();
  }
  return reinterpret_cast<Function>(symbol);
}

// `real`: Abseil's definition, looked up once.
#define SUNRAY_REAL(type, mangled) static const auto real = Real<type>(mangled)

// Whether this call is the outermost of these entry points on its thread
// (the one that reports to TSan).
thread_local int depth = 0;
class Entry {
 public:
  Entry() : outermost_(depth++ == 0) {}
  ~Entry() { --depth; }
  bool outermost() const { return outermost_; }

 private:
  const bool outermost_;
};

// CondVar waits release the mutex and take it back inside Abseil.
void Released(absl::Mutex *mu) {
  __tsan_mutex_pre_unlock(mu, 0);
  __tsan_mutex_post_unlock(mu, 0);
}
void Retaken(absl::Mutex *mu) {
  __tsan_mutex_pre_lock(mu, 0);
  __tsan_mutex_post_lock(mu, 0, 0);
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

// No destructor here: a destroy reported to TSan counts as a write to the
// mutex, and gRPC frees objects holding one after a reference count it keeps
// with atomics TSan cannot see, so every such destroy read as a race. TSan
// forgets a mutex when its memory is freed.

void Mutex::Lock() {
  SUNRAY_REAL(void (*)(Mutex *), "_ZN4absl7debian35Mutex4LockEv");
  const Entry entry;
  if (entry.outermost()) __tsan_mutex_pre_lock(this, 0);
  real(this);
  if (entry.outermost()) __tsan_mutex_post_lock(this, 0, 0);
}

void Mutex::ReaderLock() {
  SUNRAY_REAL(void (*)(Mutex *), "_ZN4absl7debian35Mutex10ReaderLockEv");
  const Entry entry;
  if (entry.outermost()) __tsan_mutex_pre_lock(this, __tsan_mutex_read_lock);
  real(this);
  if (entry.outermost()) __tsan_mutex_post_lock(this, __tsan_mutex_read_lock, 0);
}

bool Mutex::TryLock() {
  SUNRAY_REAL(bool (*)(Mutex *), "_ZN4absl7debian35Mutex7TryLockEv");
  const Entry entry;
  if (entry.outermost()) __tsan_mutex_pre_lock(this, __tsan_mutex_try_lock);
  const bool locked = real(this);
  if (entry.outermost())
    __tsan_mutex_post_lock(this,
                           __tsan_mutex_try_lock | (locked ? 0 : __tsan_mutex_try_lock_failed), 0);
  return locked;
}

bool Mutex::ReaderTryLock() {
  SUNRAY_REAL(bool (*)(Mutex *), "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  const Entry entry;
  if (entry.outermost()) __tsan_mutex_pre_lock(this, __tsan_mutex_try_read_lock);
  const bool locked = real(this);
  if (entry.outermost())
    __tsan_mutex_post_lock(
        this, __tsan_mutex_try_read_lock | (locked ? 0 : __tsan_mutex_try_read_lock_failed), 0);
  return locked;
}

void Mutex::Unlock() {
  SUNRAY_REAL(void (*)(Mutex *), "_ZN4absl7debian35Mutex6UnlockEv");
  const Entry entry;
  if (entry.outermost()) __tsan_mutex_pre_unlock(this, 0);
  real(this);
  if (entry.outermost()) __tsan_mutex_post_unlock(this, 0);
}

void Mutex::ReaderUnlock() {
  SUNRAY_REAL(void (*)(Mutex *), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  const Entry entry;
  if (entry.outermost()) __tsan_mutex_pre_unlock(this, __tsan_mutex_read_lock);
  real(this);
  if (entry.outermost()) __tsan_mutex_post_unlock(this, __tsan_mutex_read_lock);
}

void Mutex::LockWhen(const Condition &cond) {
  SUNRAY_REAL(void (*)(Mutex *, const Condition &),
              "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  const Entry entry;
  if (entry.outermost()) __tsan_mutex_pre_lock(this, 0);
  real(this, cond);
  if (entry.outermost()) __tsan_mutex_post_lock(this, 0, 0);
}

bool Mutex::LockWhenWithDeadline(const Condition &cond, absl::Time deadline) {
  SUNRAY_REAL(bool (*)(Mutex *, const Condition &, absl::Time),
              "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const Entry entry;
  if (entry.outermost()) __tsan_mutex_pre_lock(this, 0);
  const bool met = real(this, cond, deadline);
  if (entry.outermost()) __tsan_mutex_post_lock(this, 0, 0);  // held either way
  return met;
}

bool Mutex::LockWhenWithTimeout(const Condition &cond, absl::Duration timeout) {
  SUNRAY_REAL(bool (*)(Mutex *, const Condition &, absl::Duration),
              "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const Entry entry;
  if (entry.outermost()) __tsan_mutex_pre_lock(this, 0);
  const bool met = real(this, cond, timeout);
  if (entry.outermost()) __tsan_mutex_post_lock(this, 0, 0);
  return met;
}

// Waits: held before and after, released meanwhile (other threads take it).
void Mutex::Await(const Condition &cond) {
  SUNRAY_REAL(void (*)(Mutex *, const Condition &),
              "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  const Entry entry;
  if (entry.outermost()) Released(this);
  real(this, cond);
  if (entry.outermost()) Retaken(this);
}

bool Mutex::AwaitWithTimeout(const Condition &cond, absl::Duration timeout) {
  SUNRAY_REAL(bool (*)(Mutex *, const Condition &, absl::Duration),
              "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const Entry entry;
  if (entry.outermost()) Released(this);
  const bool met = real(this, cond, timeout);
  if (entry.outermost()) Retaken(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition &cond, absl::Time deadline) {
  SUNRAY_REAL(bool (*)(Mutex *, const Condition &, absl::Time),
              "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const Entry entry;
  if (entry.outermost()) Released(this);
  const bool met = real(this, cond, deadline);
  if (entry.outermost()) Retaken(this);
  return met;
}

void CondVar::Wait(Mutex *mu) {
  SUNRAY_REAL(void (*)(CondVar *, Mutex *), "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  const Entry entry;
  if (entry.outermost()) Released(mu);
  real(this, mu);
  if (entry.outermost()) Retaken(mu);
}

bool CondVar::WaitWithTimeout(Mutex *mu, absl::Duration timeout) {
  SUNRAY_REAL(bool (*)(CondVar *, Mutex *, absl::Duration),
              "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  const Entry entry;
  if (entry.outermost()) Released(mu);
  const bool timed_out = real(this, mu, timeout);
  if (entry.outermost()) Retaken(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex *mu, absl::Time deadline) {
  SUNRAY_REAL(bool (*)(CondVar *, Mutex *, absl::Time),
              "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  const Entry entry;
  if (entry.outermost()) Released(mu);
  const bool timed_out = real(this, mu, deadline);
  if (entry.outermost()) Retaken(mu);
  return timed_out;
}

// A Notification's waiter may see it notified through an atomic flag alone
// (Abseil's fast path, uninstrumented): Notify releases on the object and a
// wait that saw it notified acquires. (HasBeenNotified is inline, so a
// caller that only polls it is not covered.)
void Notification::Notify() {
  SUNRAY_REAL(void (*)(Notification *), "_ZN4absl7debian312Notification6NotifyEv");
  __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  SUNRAY_REAL(void (*)(const Notification *),
              "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  __tsan_acquire(const_cast<Notification *>(this));
}

bool Notification::WaitForNotificationWithTimeout(absl::Duration timeout) const {
  SUNRAY_REAL(bool (*)(const Notification *, absl::Duration),
              "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  const bool notified = real(this, timeout);
  if (notified) __tsan_acquire(const_cast<Notification *>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(absl::Time deadline) const {
  SUNRAY_REAL(bool (*)(const Notification *, absl::Time),
              "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  const bool notified = real(this, deadline);
  if (notified) __tsan_acquire(const_cast<Notification *>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
