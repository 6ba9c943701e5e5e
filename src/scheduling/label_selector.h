// Label selectors (Ray 2.49's `label_selector`, a Sunray extension of the
// C++ API): a task or actor may run only on a node whose labels match every
// term. A term is written as Ray writes it, per label key:
//
//   {"zone": "a"}              the node's "zone" is "a"
//   {"zone": "!a"}             its "zone" is not "a" (or it has none)
//   {"zone": "in(a,b)"}        its "zone" is "a" or "b"
//   {"zone": "!in(a,b)"}       neither (or none)
//
// Every node carries "ray.io/node_id" (its id in hex), so a selector can
// name nodes too. Parsing happens where the caller submits; matching where
// a node or control places the work.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common.pb.h"
#include "src/common/resources.h"

namespace sunray {

using LabelTerms = google::protobuf::RepeatedPtrField<proto::LabelConstraint>;

// The terms of `selector`, keys sorted. InvalidArgument names the key and
// what is wrong with it: an empty key or value, an empty or malformed
// in(...) list.
absl::StatusOr<std::vector<proto::LabelConstraint>> ParseLabelSelector(
    const std::map<std::string, std::string> &selector);

// Whether `labels` satisfy every term.
bool LabelsMatch(const LabelTerms &terms, const Labels &labels);

// The terms as written ("zone=a, disk in (ssd, nvme)"), for messages.
std::string LabelTermsText(const LabelTerms &terms);

}  // namespace sunray
