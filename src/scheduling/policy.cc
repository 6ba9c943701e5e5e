#include "src/scheduling/policy.h"

#include <algorithm>

#include "src/scheduling/label_selector.h"

namespace sunray {
namespace {

// The largest share in use of any resource the request asks for, below
// kSpreadThreshold counted as 0.
double Use(const ResourceSet &request, const NodeView &node) {
  double use = 0;
  for (const auto &[name, amount] : request) {
    if (amount <= 0) continue;
    auto total = node.total.find(name);
    if (total == node.total.end() || total->second <= 0) continue;
    auto available = node.available.find(name);
    const int64_t free = available == node.available.end() ? 0 : available->second;
    use = std::max(use, static_cast<double>(total->second - free) / total->second);
  }
  return use < kSpreadThreshold ? 0 : use;
}

Placement At(Placement::Kind kind, size_t index) {
  return Placement{kind, static_cast<int>(index), ""};
}

}  // namespace

bool SchedulingPolicy::Feasible(const ResourceSet &request,
                                const proto::SchedulingStrategy &strategy, const NodeView &node) {
  return node.alive && Fits(request, node.total) &&
         LabelsMatch(strategy.label_selector(), node.labels);
}

Placement SchedulingPolicy::Place(const ResourceSet &request,
                                  const proto::SchedulingStrategy &strategy,
                                  const std::vector<NodeView> &nodes, int local) {
  switch (strategy.kind()) {
    case proto::SchedulingStrategy::SPREAD:
      return Spread(request, strategy, nodes, local);
    case proto::SchedulingStrategy::NODE_AFFINITY:
      return Affinity(request, strategy, nodes, local);
    default:
      return Hybrid(request, strategy, nodes, local);
  }
}

Placement SchedulingPolicy::Hybrid(const ResourceSet &request,
                                   const proto::SchedulingStrategy &strategy,
                                   const std::vector<NodeView> &nodes, int local) const {
  int best = -1;
  double best_use = 0;
  // Where to wait if none fits now: the local node if it can ever fit it,
  // else the least used.
  int wait_at = -1;
  double wait_use = 0;
  // The local node first, so it wins ties.
  auto consider = [&](size_t index) {
    const NodeView &node = nodes[index];
    if (!Feasible(request, strategy, node)) return;
    const double use = Use(request, node);
    if (wait_at < 0 || (wait_at != local && use < wait_use)) {
      wait_at = static_cast<int>(index);
      wait_use = use;
    }
    if (!Fits(request, node.available)) return;
    if (best < 0 || use < best_use) {
      best = static_cast<int>(index);
      best_use = use;
    }
  };
  if (local >= 0 && static_cast<size_t>(local) < nodes.size()) consider(local);
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (static_cast<int>(i) != local) consider(i);
  }
  if (best >= 0) return At(Placement::kRun, best);
  if (wait_at >= 0) return At(Placement::kWait, wait_at);
  return Placement{Placement::kInfeasible, -1, ""};
}

Placement SchedulingPolicy::Spread(const ResourceSet &request,
                                   const proto::SchedulingStrategy &strategy,
                                   const std::vector<NodeView> &nodes, int local) {
  if (nodes.empty()) return Placement{Placement::kInfeasible, -1, ""};
  for (size_t step = 0; step < nodes.size(); ++step) {
    const size_t index = (spread_next_ + step) % nodes.size();
    const NodeView &node = nodes[index];
    if (Feasible(request, strategy, node) && Fits(request, node.available)) {
      spread_next_ = index + 1;
      return At(Placement::kRun, index);
    }
  }
  // None fits now: wait where the hybrid policy would.
  return Hybrid(request, strategy, nodes, local);
}

Placement SchedulingPolicy::Affinity(const ResourceSet &request,
                                     const proto::SchedulingStrategy &strategy,
                                     const std::vector<NodeView> &nodes, int local) {
  const std::string hex = BinaryToHex(strategy.node_id());
  auto target = std::find_if(nodes.begin(), nodes.end(), [&](const NodeView &node) {
    return node.id.Binary() == strategy.node_id();
  });
  const bool usable = target != nodes.end() && Feasible(request, strategy, *target);
  if (usable) {
    const size_t index = target - nodes.begin();
    return At(Fits(request, target->available) ? Placement::kRun : Placement::kWait, index);
  }
  if (strategy.soft()) return Hybrid(request, strategy, nodes, local);
  if (target == nodes.end()) {
    return Placement{
        Placement::kUnknownNode, -1,
        "The task asks to run on node " + hex + " (hard affinity), which is not in this cluster"};
  }
  if (!target->alive) {
    return Placement{Placement::kUnschedulable, -1,
                     "The task asks to run on node " + hex + " (hard affinity), which is dead"};
  }
  // Alive but it can never fit the request: it waits, as infeasible.
  return Placement{Placement::kInfeasible, -1, ""};
}

}  // namespace sunray
