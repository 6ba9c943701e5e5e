// Symbol visibility for Sunray's public API.
//
// The runtime library is built with hidden visibility; everything a program
// links against is marked RAY_EXPORT. Internals stay private, so they cannot
// clash with the user's own copies of the same third-party libraries.
#pragma once

#if defined(_WIN32)
#define RAY_EXPORT
#else
#define RAY_EXPORT __attribute__((visibility("default")))
#endif
