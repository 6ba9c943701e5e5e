// RAY_REMOTE: makes functions callable as tasks and classes usable as actors.
//
//   int Plus(int a, int b) { return a + b; }
//   RAY_REMOTE(Plus);
//
//   class Counter {
//    public:
//     static Counter *Create(int start);
//     int Add(int x);
//   };
//   RAY_REMOTE(Counter::Create, &Counter::Add);
//
// Write it at namespace scope, normally in a .cc file. Each argument is
// registered under its own source text. RAY_FUNC(f, ArgTypes...) selects one
// overload of f; use the same spelling where you call it.
#pragma once

#include "ray/api/function_manager.h"
#include "ray/api/overload.h"

#define RAY_INTERNAL_CONCAT_(a, b) a##b
#define RAY_INTERNAL_CONCAT(a, b) RAY_INTERNAL_CONCAT_(a, b)

#define RAY_REMOTE(...)                                                                      \
  [[maybe_unused]] static const bool RAY_INTERNAL_CONCAT(ray_remote_registered_, __LINE__) = \
      ray::internal::RegisterRemoteFunctions(#__VA_ARGS__, __VA_ARGS__)

#define RAY_FUNC(f, ...) ray::internal::underload<__VA_ARGS__>(f)
