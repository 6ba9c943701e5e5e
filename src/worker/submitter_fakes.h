// Fakes of the submitters' collaborators, for their unit tests: task
// streams that record what was sent and let the test answer or end them, and
// outcomes that record how each task settled. Single-threaded: the test
// drives every callback.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/worker/pending_task.h"
#include "src/worker/task_stream.h"

namespace sunray {

class FakeStream : public TaskSender {
 public:
  bool Send(std::vector<proto::TaskSpec> tasks) override {
    if (closed) return false;
    for (auto &task : tasks) {
      sent.push_back(task.return_id());
      sequence_numbers.push_back(task.sequence_number());
    }
    return true;
  }
  void Close() override { closed = true; }

  // The worker answers `return_id` (with `value` as its result).
  void Answer(const std::string &return_id, const std::string &value, bool bounced = false,
              bool exception = false) {
    proto::TaskResults results;
    proto::TaskResult *result = results.add_results();
    result->set_return_id(return_id);
    result->mutable_reply()->set_bounced(bounced);
    if (exception) {
      result->mutable_reply()->mutable_result()->set_is_error(true);
      result->mutable_reply()->mutable_result()->mutable_error()->set_type(
          proto::TASK_EXECUTION_EXCEPTION);
    } else {
      result->mutable_reply()->mutable_result()->set_data(value);
    }
    on_results(results);
  }
  void End(absl::Status status) {
    ASSERT_TRUE(on_end) << "the stream ended twice";
    auto end = std::move(on_end);
    on_end = nullptr;
    on_results = nullptr;
    end(status);
  }

  std::string address;
  std::vector<std::string> sent;
  std::vector<int64_t> sequence_numbers;  // of each sent task
  bool closed = false;
  TaskSender::ResultsHandler on_results;
  TaskSender::EndHandler on_end;
};

class FakeStreams : public TaskStreamOpener {
 public:
  // A stream the test never ended lets go of its handlers, as a real one
  // does at shutdown: they hold the submitter's records, which hold it.
  ~FakeStreams() override {
    for (auto &stream : opened) {
      stream->on_results = nullptr;
      stream->on_end = nullptr;
    }
  }

  std::shared_ptr<TaskSender> Open(const std::string &address,
                                   TaskSender::ResultsHandler on_results,
                                   TaskSender::EndHandler on_end) override {
    if (refuse) return nullptr;
    auto stream = std::make_shared<FakeStream>();
    stream->address = address;
    stream->on_results = std::move(on_results);
    stream->on_end = std::move(on_end);
    opened.push_back(stream);
    // A connection refused at once: its end can come before Open returns.
    if (end_at_once) stream->End(absl::UnavailableError("refused"));
    return stream;
  }

  std::vector<std::shared_ptr<FakeStream>> opened;
  bool refuse = false;
  bool end_at_once = false;
};

class FakeOutcomes : public TaskOutcomes {
 public:
  void Succeeded(PendingTask &task, const proto::ObjectValue &result) override {
    EXPECT_FALSE(settled(task.spec.return_id())) << task.spec.return_id() << " settled twice";
    values[task.spec.return_id()] = result.data();
  }
  void Failed(PendingTask &task, ErrorInfo error) override {
    EXPECT_FALSE(settled(task.spec.return_id())) << task.spec.return_id() << " settled twice";
    errors[task.spec.return_id()] = std::move(error);
  }
  bool settled(const std::string &id) const { return values.count(id) + errors.count(id) > 0; }

  std::map<std::string, std::string> values;
  std::map<std::string, ErrorInfo> errors;
};

}  // namespace sunray
