#include "src/core/execution_context.h"

#include <utility>

namespace sunray {
namespace {

thread_local ExecutionContext *current_context = nullptr;

}  // namespace

ExecutionContext *CurrentExecutionContext() { return current_context; }

ExecutionContextScope::ExecutionContextScope(ExecutionContext context)
    : context_(std::move(context)), previous_(current_context) {
  current_context = &context_;
}

ExecutionContextScope::~ExecutionContextScope() { current_context = previous_; }

}  // namespace sunray
