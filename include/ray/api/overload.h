// RAY_FUNC support: picks one overload of a function by its parameter types.
//
//   RAY_REMOTE(RAY_FUNC(Compute, int), RAY_FUNC(Compute, std::string));
//   ray::Task(RAY_FUNC(Compute, int)).Remote(1);
#pragma once

namespace ray {
namespace internal {

template <typename... Args>
struct Underload {
  template <typename R>
  constexpr auto operator()(R (*f)(Args...)) const noexcept {
    return f;
  }
  template <typename R, typename C>
  constexpr auto operator()(R (C::*f)(Args...)) const noexcept {
    return f;
  }
  template <typename R, typename C>
  constexpr auto operator()(R (C::*f)(Args...) const) const noexcept {
    return f;
  }
  template <typename R, typename C>
  constexpr auto operator()(R (C::*f)(Args...) volatile) const noexcept {
    return f;
  }
  template <typename R, typename C>
  constexpr auto operator()(R (C::*f)(Args...) const volatile) const noexcept {
    return f;
  }
  template <typename R, typename C>
  constexpr auto operator()(R (C::*f)(Args...) &) const noexcept {
    return f;
  }
  template <typename R, typename C>
  constexpr auto operator()(R (C::*f)(Args...) const &) const noexcept {
    return f;
  }
  template <typename R, typename C>
  constexpr auto operator()(R (C::*f)(Args...) &&) const noexcept {
    return f;
  }
  template <typename R, typename C>
  constexpr auto operator()(R (C::*f)(Args...) const &&) const noexcept {
    return f;
  }
};

template <typename... Args>
inline constexpr Underload<Args...> underload{};

}  // namespace internal
}  // namespace ray
