// Cross-language function and actor descriptors (Python, Java).
//
//   ray::Task(ray::PyFunction<int>{"my_module", "add"}).Remote(1, 2);
//
// The types exist so that programs written for Ray compile; Sunray does not
// run other languages yet, and Remote() on any of them throws RayException
// saying so.
#pragma once

#include <string>

namespace ray {

namespace internal {
enum class LangType { CPP, PYTHON, JAVA };
}  // namespace internal

template <typename R>
struct PyFunction {
  bool IsPython() const { return true; }
  R operator()() const { return {}; }
  std::string module_name;
  std::string function_name;
};

struct PyActorClass {
  bool IsPython() const { return true; }
  void operator()() const {}
  std::string module_name;
  std::string class_name;
  std::string function_name = "__init__";
};

template <typename R>
struct PyActorMethod {
  bool IsPython() const { return true; }
  R operator()() const { return {}; }
  std::string function_name;
};

template <typename R>
struct JavaFunction {
  bool IsJava() const { return true; }
  R operator()() const { return {}; }
  std::string class_name;
  std::string function_name;
};

struct JavaActorClass {
  bool IsJava() const { return true; }
  void operator()() const {}
  std::string class_name;
  std::string module_name = "";
  std::string function_name = "<init>";
};

template <typename R>
struct JavaActorMethod {
  bool IsJava() const { return true; }
  R operator()() const { return {}; }
  std::string function_name;
};

}  // namespace ray
