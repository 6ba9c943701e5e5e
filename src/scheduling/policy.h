// Where a lease (a task's worker, an actor) goes, given a view of the
// cluster's nodes: Ray's policies, as pure decisions a node daemon (for
// tasks) and control (for actors) take under their own locks.
//
//   SchedulingPolicy policy;
//   Placement where = policy.Place(resources, strategy, nodes, /*local=*/0);
//   switch (where.kind) { case Placement::kRun: ... }
//
// Policies (proto::SchedulingStrategy):
// - DEFAULT, Ray's hybrid policy: among the nodes that fit the request now,
//   the one used least, where any use below half (kSpreadThreshold) counts
//   as none; ties go to the local node, then to the first in `nodes`. So a
//   node is packed to half its use before work spreads, then the least
//   loaded node gets it.
// - SPREAD: round robin over the nodes that fit it now (the policy keeps
//   its place between calls).
// - NODE_AFFINITY: that node (waiting there while it is busy); hard: dead
//   or unknown is unschedulable; soft: a dead node, or one that can never
//   fit the request, falls back to DEFAULT.
// Every policy considers only alive nodes whose labels match the label
// selector and whose totals fit the request (feasible nodes). "Use" is the
// largest share in use of any resource the request asks for.
//
// Not thread-safe: the caller serializes calls (its own lock).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common.pb.h"
#include "src/common/id.h"
#include "src/common/resources.h"

namespace sunray {

// A node as a scheduler sees it.
struct NodeView {
  NodeID id;
  std::string address;  // its NodeService
  ResourceSet total;
  ResourceSet available;
  Labels labels;
  bool alive = true;
};

// Below this share in use a node counts as unused (Ray's
// scheduler_spread_threshold).
inline constexpr double kSpreadThreshold = 0.5;

struct Placement {
  enum Kind {
    kRun,            // nodes[index] fits it now
    kWait,           // nodes[index] can fit it, not now: wait there
    kInfeasible,     // no alive node can ever fit it (resources, labels): wait for one
    kUnschedulable,  // its strategy can never be met: `reason`
    kUnknownNode,    // hard affinity to a node the view does not know (yet?)
  };
  Kind kind = kInfeasible;
  int index = -1;
  std::string reason;
};

class SchedulingPolicy {
 public:
  // `local`: the index in `nodes` of the deciding node, or -1 (control).
  Placement Place(const ResourceSet &request, const proto::SchedulingStrategy &strategy,
                  const std::vector<NodeView> &nodes, int local);

  // Whether `node` is one the request may use at all: alive, labels
  // matching, totals fitting.
  static bool Feasible(const ResourceSet &request, const proto::SchedulingStrategy &strategy,
                       const NodeView &node);

 private:
  Placement Hybrid(const ResourceSet &request, const proto::SchedulingStrategy &strategy,
                   const std::vector<NodeView> &nodes, int local) const;
  Placement Spread(const ResourceSet &request, const proto::SchedulingStrategy &strategy,
                   const std::vector<NodeView> &nodes, int local);
  Placement Affinity(const ResourceSet &request, const proto::SchedulingStrategy &strategy,
                     const std::vector<NodeView> &nodes, int local);

  size_t spread_next_ = 0;  // where SPREAD's round robin goes on
};

}  // namespace sunray
