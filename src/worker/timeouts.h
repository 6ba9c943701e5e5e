// How long the worker library waits for other processes: one place for all.
#pragma once

#include <chrono>

namespace sunray {

inline constexpr std::chrono::milliseconds kConnectTimeout{10000};  // ray::Init's calls
inline constexpr std::chrono::milliseconds kControlTimeout{
    30000};  // actor registration, lookup, kill
inline constexpr std::chrono::milliseconds kShortCallTimeout{10000};  // peers, Shutdown's calls
inline constexpr std::chrono::milliseconds kActorPollTimeout{60000};  // one actor-state long poll
// A copy of an object pulled from another node (its whole transfer).
inline constexpr std::chrono::milliseconds kPullTimeout{10 * 60 * 1000};

}  // namespace sunray
