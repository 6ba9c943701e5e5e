#include "src/control/placement_groups.h"

#include <algorithm>

#include "absl/synchronization/blocking_counter.h"
#include "node.grpc.pb.h"
#include "src/common/id.h"
#include "src/common/log.h"
#include "src/scheduling/bundles.h"

namespace sunray {
namespace {

// This file's logger.
spdlog::logger &Logger() {
  static const auto *logger =
      new std::shared_ptr<spdlog::logger>(log::Get("control.placement_groups"));
  return **logger;
}

std::string AddressOf(const proto::NodeInfo &node) {
  return node.address().ip() + ":" + std::to_string(node.address().port());
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

std::string Describe(const proto::PlacementGroupInfo &info) {
  std::string text = "placement group " + BinaryToHex(info.placement_group_id());
  if (!info.name().empty()) text += " ('" + info.name() + "')";
  return text;
}

}  // namespace

PlacementGroupDirectory::PlacementGroupDirectory(Options options, NodeLister nodes)
    : options_(std::move(options)), list_nodes_(std::move(nodes)), calls_(options_.token) {
  scheduler_ = std::thread([this] { ScheduleLoop(); });
}

PlacementGroupDirectory::~PlacementGroupDirectory() { Stop(); }

void PlacementGroupDirectory::Stop() {
  std::map<int64_t, Waiter> waiters;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    waiters.swap(waiters_);
    wake_.Signal();
  }
  if (scheduler_.joinable()) scheduler_.join();
  calls_.Stop();
  for (auto &[id, waiter] : waiters) {
    waiter.answer(absl::UnavailableError("the control service is stopping"));
  }
}

absl::Status PlacementGroupDirectory::Create(const proto::PlacementGroupInfo &group) {
  if (group.placement_group_id().size() != PlacementGroupID::kSize) {
    return absl::InvalidArgumentError("placement_group_id must be " +
                                      std::to_string(PlacementGroupID::kSize) + " bytes");
  }
  if (group.bundles().empty()) {
    return absl::InvalidArgumentError("a placement group needs at least one bundle");
  }
  for (int i = 0; i < group.bundles_size(); ++i) {
    const ResourceSet bundle = ResourceSetOf(group.bundles(i).resources());
    bool any = false;
    for (const auto &[name, amount] : bundle) {
      if (name.empty() || amount < 0 || GroupOfResource(name)) {
        return absl::InvalidArgumentError("bundle " + std::to_string(i) + " asks for " +
                                          ResourcesText(bundle) + ": '" + name +
                                          "' is not a resource a bundle can hold");
      }
      any |= amount > 0;
    }
    if (!any) {
      return absl::InvalidArgumentError("bundle " + std::to_string(i) + " asks for no resources");
    }
  }
  if (!proto::PlacementGroupInfo::Strategy_IsValid(group.strategy())) {
    return absl::InvalidArgumentError("unknown placement strategy " +
                                      std::to_string(group.strategy()));
  }
  absl::MutexLock lock(&mu_);
  if (groups_.contains(group.placement_group_id())) {
    return absl::AlreadyExistsError(Describe(group) + " exists already");
  }
  if (!group.name().empty()) {
    for (const auto &[id, other] : groups_) {
      if (other.info.name() == group.name() &&
          other.info.ray_namespace() == group.ray_namespace() &&
          other.info.state() != proto::PlacementGroupInfo::REMOVED) {
        return absl::AlreadyExistsError("a placement group named '" + group.name() +
                                        "' already exists in namespace '" + group.ray_namespace() +
                                        "'");
      }
    }
  }
  Group &added = groups_[group.placement_group_id()];
  added.info = group;
  added.info.set_state(proto::PlacementGroupInfo::PENDING);
  added.info.set_create_time_ms(NowMs());
  for (auto &bundle : *added.info.mutable_bundles()) {
    bundle.clear_node_id();
    bundle.clear_node_address();
  }
  pending_.push_back(group.placement_group_id());
  wake_.Signal();
  return absl::OkStatus();
}

absl::Status PlacementGroupDirectory::Remove(const std::string &group_id) {
  Work work;
  {
    absl::MutexLock lock(&mu_);
    auto it = groups_.find(group_id);
    if (it == groups_.end()) {
      return absl::NotFoundError("no placement group " + BinaryToHex(group_id));
    }
    RemoveLocked(it->second, &work);
  }
  for (auto &run : work) run();
  return absl::OkStatus();
}

void PlacementGroupDirectory::RemoveLocked(Group &group, Work *work) {
  if (group.info.state() == proto::PlacementGroupInfo::REMOVED) return;
  group.info.set_state(proto::PlacementGroupInfo::REMOVED);
  group.info.set_remove_time_ms(NowMs());
  removed_.emplace_back(absl::Now(), group.info.placement_group_id());
  std::erase(pending_, group.info.placement_group_id());
  if (!group.placing) {
    // The scheduler gives back what a placement in flight took when it ends.
    // Its bundles' nodes, each once (a dead node's bundles have none).
    std::vector<std::string> addresses;
    for (const proto::BundleInfo &bundle : group.info.bundles()) {
      const std::string &address = bundle.node_address();
      if (!address.empty() &&
          std::find(addresses.begin(), addresses.end(), address) == addresses.end()) {
        addresses.push_back(address);
      }
    }
    if (!addresses.empty()) {
      work->push_back([this, info = group.info, addresses] {
        ReturnBundles(info, addresses, /*removed=*/true);
      });
    }
  }
  ChangedLocked(group, work);
}

std::optional<proto::PlacementGroupInfo> PlacementGroupDirectory::Get(const std::string &group_id) {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(group_id);
  if (it == groups_.end()) return std::nullopt;
  return it->second.info;
}

std::optional<proto::PlacementGroupInfo> PlacementGroupDirectory::GetNamed(
    const std::string &name, const std::string &ray_namespace) {
  absl::MutexLock lock(&mu_);
  for (const auto &[id, group] : groups_) {
    if (group.info.name() == name && group.info.ray_namespace() == ray_namespace &&
        group.info.state() != proto::PlacementGroupInfo::REMOVED) {
      return group.info;
    }
  }
  return std::nullopt;
}

std::vector<proto::PlacementGroupInfo> PlacementGroupDirectory::All() {
  absl::MutexLock lock(&mu_);
  std::vector<proto::PlacementGroupInfo> all;
  all.reserve(groups_.size());
  for (const auto &[id, group] : groups_) all.push_back(group.info);
  return all;
}

int64_t PlacementGroupDirectory::WaitReady(const std::string &group_id, absl::Duration timeout,
                                           Answer answer) {
  absl::StatusOr<proto::PlacementGroupInfo> now;
  int64_t wait_id;
  {
    absl::MutexLock lock(&mu_);
    wait_id = next_wait_id_++;
    auto it = groups_.find(group_id);
    if (it == groups_.end()) {
      now = absl::NotFoundError("no placement group " + BinaryToHex(group_id));
    } else if (stopping_) {
      now = absl::UnavailableError("the control service is stopping");
    } else {
      const auto state = it->second.info.state();
      if (state == proto::PlacementGroupInfo::CREATED ||
          state == proto::PlacementGroupInfo::REMOVED || timeout <= absl::ZeroDuration()) {
        now = it->second.info;
      } else {
        waiters_[wait_id] = Waiter{group_id, absl::Now() + timeout, std::move(answer)};
        wake_.Signal();  // its deadline may come first
        return wait_id;
      }
    }
  }
  answer(std::move(now));
  return wait_id;
}

void PlacementGroupDirectory::CancelWait(int64_t wait_id) {
  Answer answer;
  {
    absl::MutexLock lock(&mu_);
    auto it = waiters_.find(wait_id);
    if (it == waiters_.end()) return;  // answered already
    answer = std::move(it->second.answer);
    waiters_.erase(it);
  }
  answer(absl::CancelledError("the caller stopped waiting"));
}

absl::StatusOr<std::vector<std::string>> PlacementGroupDirectory::BundleNodes(
    const std::string &group_id, int index) {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(group_id);
  if (it == groups_.end()) {
    return absl::FailedPreconditionError("no placement group " + BinaryToHex(group_id));
  }
  const proto::PlacementGroupInfo &info = it->second.info;
  if (info.state() == proto::PlacementGroupInfo::REMOVED) {
    return absl::FailedPreconditionError("its " + Describe(info) + " was removed");
  }
  if (index >= info.bundles_size()) {
    return absl::FailedPreconditionError("its " + Describe(info) + " has no bundle " +
                                         std::to_string(index));
  }
  if (info.state() != proto::PlacementGroupInfo::CREATED) {
    return absl::UnavailableError("its " + Describe(info) + " is not placed yet");
  }
  std::vector<std::string> nodes;
  for (int i = 0; i < info.bundles_size(); ++i) {
    const std::string &node = info.bundles(i).node_id();
    if ((index < 0 || index == i) && std::find(nodes.begin(), nodes.end(), node) == nodes.end()) {
      nodes.push_back(node);
    }
  }
  return nodes;
}

std::vector<std::string> PlacementGroupDirectory::RecentlyRemoved() {
  absl::MutexLock lock(&mu_);
  const absl::Time oldest = absl::Now() - options_.removed_kept;
  while (!removed_.empty() && removed_.front().first < oldest) {
    // Forgotten too: the table does not grow with every group ever made.
    auto it = groups_.find(removed_.front().second);
    if (it != groups_.end() && !it->second.placing) groups_.erase(it);
    removed_.pop_front();
  }
  std::vector<std::string> ids;
  ids.reserve(removed_.size());
  for (const auto &[when, id] : removed_) ids.push_back(id);
  return ids;
}

void PlacementGroupDirectory::OnNodesChanged(const std::string &reporting_node) {
  absl::MutexLock lock(&mu_);
  if (!reporting_node.empty()) {
    const absl::Time counted = absl::Now() - kReportLatency;
    std::erase_if(reserved_, [&](const Reserved &reserved) {
      return reserved.node_id == reporting_node && reserved.made < counted;
    });
  }
  ++nodes_epoch_;
  if (!pending_.empty()) wake_.Signal();
}

void PlacementGroupDirectory::OnNodeDead(const std::string &node_id) {
  Work work;
  {
    absl::MutexLock lock(&mu_);
    for (auto &[id, group] : groups_) {
      if (group.info.state() != proto::PlacementGroupInfo::CREATED) continue;
      bool lost = false;
      for (auto &bundle : *group.info.mutable_bundles()) {
        if (bundle.node_id() != node_id) continue;
        bundle.clear_node_id();
        bundle.clear_node_address();
        lost = true;
      }
      if (!lost) continue;
      // Placing the lost bundles again is recovery's (the next issue).
      group.info.set_state(proto::PlacementGroupInfo::RESCHEDULING);
      Logger().warn("{} lost bundles on dead node {}", Describe(group.info), BinaryToHex(node_id));
      ChangedLocked(group, &work);
    }
  }
  for (auto &run : work) run();
}

std::vector<std::string> PlacementGroupDirectory::OnJobFinished(const std::string &job_id) {
  Work work;
  std::vector<std::string> removed;
  {
    absl::MutexLock lock(&mu_);
    for (auto &[id, group] : groups_) {
      if (group.info.job_id() != job_id ||
          group.info.state() == proto::PlacementGroupInfo::REMOVED) {
        continue;
      }
      RemoveLocked(group, &work);
      removed.push_back(id);
    }
  }
  for (auto &run : work) run();
  return removed;
}

void PlacementGroupDirectory::ChangedLocked(Group &group, Work *work) {
  const auto state = group.info.state();
  if (state != proto::PlacementGroupInfo::CREATED && state != proto::PlacementGroupInfo::REMOVED) {
    return;
  }
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second.group_id != group.info.placement_group_id()) {
      ++it;
      continue;
    }
    work->push_back([answer = std::move(it->second.answer), info = group.info] { answer(info); });
    it = waiters_.erase(it);
  }
}

void PlacementGroupDirectory::AnswerDueWaitsLocked(absl::Time now, Work *work) {
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    auto group = groups_.find(it->second.group_id);
    absl::StatusOr<proto::PlacementGroupInfo> answer =
        group == groups_.end()
            ? absl::NotFoundError("no placement group " + BinaryToHex(it->second.group_id))
            : absl::StatusOr<proto::PlacementGroupInfo>(group->second.info);
    work->push_back([answer = std::move(it->second.answer), info = std::move(answer)]() mutable {
      answer(std::move(info));
    });
    it = waiters_.erase(it);
  }
}

std::vector<std::string> PlacementGroupDirectory::DueLocked(absl::Time now, absl::Time *next) {
  std::vector<std::string> due;
  for (const std::string &id : pending_) {
    const Group &group = groups_.at(id);
    if (group.placing) continue;
    // Nothing fit it, and the nodes have not changed since it was tried.
    if (group.waiting_for_change && group.tried_epoch == nodes_epoch_) continue;
    if (group.not_before > now) {
      *next = std::min(*next, group.not_before);
      continue;
    }
    due.push_back(id);
    if (due.size() == kMaxBatch) break;
  }
  return due;
}

void PlacementGroupDirectory::ScheduleLoop() {
  while (true) {
    std::vector<std::string> due;
    Work work;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        if (stopping_) return;
        const absl::Time now = absl::Now();
        AnswerDueWaitsLocked(now, &work);
        if (!work.empty()) break;
        absl::Time next = absl::InfiniteFuture();
        due = DueLocked(now, &next);
        if (!due.empty()) break;
        for (const auto &[id, waiter] : waiters_) next = std::min(next, waiter.deadline);
        wake_.WaitWithTimeout(&mu_, next - now);
      }
      for (const std::string &id : due) {
        Group &group = groups_.at(id);
        group.placing = true;
        group.waiting_for_change = false;
        group.tried_epoch = nodes_epoch_;
      }
    }
    for (auto &run : work) run();
    if (!due.empty()) Place(due, list_nodes_());
  }
}

namespace {

// Calls `method` on every (address, request) at once and waits for all.
template <typename Request, typename Reply>
std::vector<grpc::Status> CallAll(
    rpc::AsyncCaller &calls,
    rpc::AsyncCaller::AsyncMethod<proto::NodeService, Request, Reply> method,
    const std::vector<std::pair<std::string, Request>> &requests,
    std::chrono::milliseconds timeout) {
  std::vector<grpc::Status> statuses(requests.size());
  if (requests.empty()) return statuses;
  absl::BlockingCounter done(static_cast<int>(requests.size()));
  for (size_t i = 0; i < requests.size(); ++i) {
    calls.Call<proto::NodeService>(
        requests[i].first, method, requests[i].second, timeout,
        [&statuses, &done, i](const grpc::Status &status, const Reply &) {
          statuses[i] = status;
          done.DecrementCount();
        });
  }
  done.Wait();
  return statuses;
}

}  // namespace

void PlacementGroupDirectory::Place(const std::vector<std::string> &group_ids,
                                    const std::vector<proto::NodeInfo> &nodes) {
  std::vector<NodeView> views;
  views.reserve(nodes.size());
  for (const proto::NodeInfo &node : nodes) {
    views.push_back(NodeView{NodeID::FromBinary(node.node_id()), AddressOf(node),
                             ResourceSetOf(node.total()), ResourceSetOf(node.available()),
                             Labels(node.labels().begin(), node.labels().end()),
                             node.state() == proto::NodeInfo::ALIVE});
  }
  // One attempt per group: where its bundles go, and how its calls went.
  struct Attempt {
    proto::PlacementGroupInfo info;
    std::vector<ResourceSet> bundles;
    BundlePlacement placement;
    std::vector<std::string> addresses;  // its chosen nodes, in first-use order
    std::string refused;                 // why it rolled back ("": it did not)
  };
  std::vector<Attempt> attempts(group_ids.size());
  {
    absl::MutexLock lock(&mu_);
    // What was reserved lately is not in those nodes' reports yet.
    const absl::Time oldest = absl::Now() - kReservedHold;
    std::erase_if(reserved_, [&](const Reserved &reserved) { return reserved.made < oldest; });
    for (const Reserved &reserved : reserved_) {
      for (size_t n = 0; n < nodes.size(); ++n) {
        if (nodes[n].node_id() != reserved.node_id) continue;
        for (const auto &[name, amount] : reserved.resources) views[n].available[name] -= amount;
      }
    }
    for (size_t g = 0; g < group_ids.size(); ++g) attempts[g].info = groups_.at(group_ids[g]).info;
  }

  // Decided in creation order, each seeing what the ones before it took;
  // then every group's prepares go out at once, then its commits.
  std::vector<std::pair<std::string, proto::PrepareBundlesRequest>> prepares;
  std::vector<size_t> prepare_group;  // prepares[i] is for attempts[prepare_group[i]]
  for (size_t g = 0; g < attempts.size(); ++g) {
    Attempt &attempt = attempts[g];
    for (const auto &bundle : attempt.info.bundles()) {
      attempt.bundles.push_back(ResourceSetOf(bundle.resources()));
    }
    attempt.placement =
        PlaceBundles(attempt.bundles, static_cast<BundleStrategy>(attempt.info.strategy()), views);
    if (attempt.placement.kind != BundlePlacement::kPlaced) continue;
    std::vector<int> chosen;
    const size_t first = prepares.size();
    for (size_t i = 0; i < attempt.bundles.size(); ++i) {
      const int node = attempt.placement.node_of[i];
      for (const auto &[name, amount] : attempt.bundles[i]) views[node].available[name] -= amount;
      auto at = std::find(chosen.begin(), chosen.end(), node);
      if (at == chosen.end()) {
        chosen.push_back(node);
        attempt.addresses.push_back(views[node].address);
        proto::PrepareBundlesRequest request;
        request.set_placement_group_id(attempt.info.placement_group_id());
        prepares.emplace_back(views[node].address, std::move(request));
        prepare_group.push_back(g);
        at = chosen.end() - 1;
      }
      proto::BundleReservation *reservation =
          prepares[first + (at - chosen.begin())].second.add_bundles();
      reservation->set_index(static_cast<int>(i));
      *reservation->mutable_resources() = attempt.info.bundles(static_cast<int>(i)).resources();
    }
  }
  const std::vector<grpc::Status> prepared = CallAll(
      calls_, &proto::NodeService::Stub::async::PrepareBundles, prepares, options_.call_timeout);
  for (size_t i = 0; i < prepares.size(); ++i) {
    Attempt &attempt = attempts[prepare_group[i]];
    if (!prepared[i].ok() && attempt.refused.empty()) {
      attempt.refused = "node at " + prepares[i].first + ": " + prepared[i].error_message();
    }
  }
  std::vector<std::pair<std::string, proto::CommitBundlesRequest>> commits;
  std::vector<size_t> commit_group;
  for (size_t i = 0; i < prepares.size(); ++i) {
    if (!attempts[prepare_group[i]].refused.empty()) continue;
    proto::CommitBundlesRequest commit;
    commit.set_placement_group_id(prepares[i].second.placement_group_id());
    commits.emplace_back(prepares[i].first, std::move(commit));
    commit_group.push_back(prepare_group[i]);
  }
  const std::vector<grpc::Status> committed = CallAll(
      calls_, &proto::NodeService::Stub::async::CommitBundles, commits, options_.call_timeout);
  for (size_t i = 0; i < commits.size(); ++i) {
    Attempt &attempt = attempts[commit_group[i]];
    if (!committed[i].ok() && attempt.refused.empty()) {
      attempt.refused = "node at " + commits[i].first + ": " + committed[i].error_message();
    }
  }
  for (const Attempt &attempt : attempts) {
    if (attempt.placement.kind != BundlePlacement::kPlaced || attempt.refused.empty()) continue;
    // All or nothing: every chosen node gives back what it took (a node
    // that took nothing answers OK).
    Logger().info("{} rolled back ({}); it will be tried again", Describe(attempt.info),
                  attempt.refused);
    ReturnBundles(attempt.info, attempt.addresses, /*removed=*/false);
  }

  Work work;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (const Attempt &attempt : attempts) {
      Group &group = groups_.at(attempt.info.placement_group_id());
      group.placing = false;
      const BundlePlacement &placement = attempt.placement;
      const bool placed = placement.kind == BundlePlacement::kPlaced && attempt.refused.empty();
      if (group.info.state() == proto::PlacementGroupInfo::REMOVED) {
        // Removed while its calls were out: what they took goes back.
        if (placed) {
          work.push_back([this, info = group.info, addresses = attempt.addresses] {
            ReturnBundles(info, addresses, /*removed=*/true);
          });
        }
      } else if (placed) {
        group.info.set_state(proto::PlacementGroupInfo::CREATED);
        group.info.set_ready_time_ms(NowMs());
        group.info.clear_infeasible_reason();
        group.rollbacks = 0;
        for (size_t i = 0; i < attempt.bundles.size(); ++i) {
          const NodeView &node = views[placement.node_of[i]];
          proto::BundleInfo *bundle = group.info.mutable_bundles(static_cast<int>(i));
          bundle->set_node_id(node.id.Binary());
          bundle->set_node_address(node.address);
          reserved_.push_back(Reserved{node.id.Binary(), attempt.bundles[i], now});
        }
        std::erase(pending_, attempt.info.placement_group_id());
        ChangedLocked(group, &work);
      } else if (placement.kind == BundlePlacement::kPlaced) {
        // Rolled back: again after a delay that grows while it keeps failing.
        group.not_before =
            now +
            std::min(options_.retry_delay * (1 << std::min(group.rollbacks, 10)), kMaxRetryDelay);
        ++group.rollbacks;
      } else {
        if (placement.kind == BundlePlacement::kInfeasible &&
            group.info.infeasible_reason() != placement.reason) {
          Logger().warn("{} cannot be placed: {}. It waits for a node that fits it.",
                        Describe(group.info), placement.reason);
        }
        group.info.set_infeasible_reason(
            placement.kind == BundlePlacement::kInfeasible ? placement.reason : "");
        group.waiting_for_change = true;
      }
    }
  }
  for (auto &run : work) run();
}

void PlacementGroupDirectory::ReturnBundles(const proto::PlacementGroupInfo &info,
                                            const std::vector<std::string> &addresses,
                                            bool removed) {
  std::vector<std::pair<std::string, proto::ReturnBundlesRequest>> requests;
  for (const std::string &address : addresses) {
    proto::ReturnBundlesRequest request;
    request.set_placement_group_id(info.placement_group_id());
    request.set_removed(removed);
    requests.emplace_back(address, std::move(request));
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    calls_.Call<proto::NodeService>(
        requests[i].first, &proto::NodeService::Stub::async::ReturnBundles, requests[i].second,
        options_.call_timeout,
        [address = requests[i].first, what = Describe(info)](const grpc::Status &status,
                                                             const proto::ReturnBundlesReply &) {
          if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
            // A dead node's resources are gone with it.
            Logger().warn("could not give back the bundles of {} on the node at {}: {}", what,
                          address, status.error_message());
          }
        });
  }
}

}  // namespace sunray
