// What tests share to wait on a condition: deadlines that a sanitizer's
// slowdown stretches, and Eventually, which polls until a condition holds.
// Header-only, for tests and fixtures (through sunray_all_sources).
#pragma once

#include <chrono>
#include <thread>

namespace sunray {

// Whether this build runs under ThreadSanitizer or AddressSanitizer.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
inline constexpr bool kUnderSanitizer = true;
#else
inline constexpr bool kUnderSanitizer = false;
#endif
#else
inline constexpr bool kUnderSanitizer = false;
#endif

// A test's deadline guards against a hang; it does not measure speed (that is
// bench/'s job). Sanitized builds run several times slower, most of all when
// a test starts worker processes (each one a sanitized process: a test that
// takes 3.5 s in the default build takes about 10 s under TSan), so under a
// sanitizer every deadline is this many times longer.
inline constexpr int kSanitizerSlowdown = kUnderSanitizer ? 3 : 1;

// `timeout` as this build should wait it.
template <typename Rep, typename Period>
constexpr std::chrono::duration<Rep, Period> Deadline(std::chrono::duration<Rep, Period> timeout) {
  return timeout * kSanitizerSlowdown;
}

// Polls `condition` every 5 ms until it holds or Deadline(timeout) passed;
// returns whether it held (checked once more at the deadline).
template <typename Condition>
bool Eventually(Condition &&condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + Deadline(timeout);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace sunray
