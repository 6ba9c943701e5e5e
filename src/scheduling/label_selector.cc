#include "src/scheduling/label_selector.h"

#include <algorithm>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace sunray {
namespace {

absl::Status Malformed(const std::string &key, const std::string &value, const std::string &why) {
  return absl::InvalidArgumentError("label selector \"" + key + "\": \"" + value + "\": " + why);
}

}  // namespace

absl::StatusOr<std::vector<proto::LabelConstraint>> ParseLabelSelector(
    const std::map<std::string, std::string> &selector) {
  std::vector<proto::LabelConstraint> terms;
  for (const auto &[key, value] : selector) {
    if (key.empty()) return absl::InvalidArgumentError("label selector: a key is empty");
    proto::LabelConstraint term;
    term.set_key(key);
    absl::string_view rest = value;
    term.set_negated(absl::ConsumePrefix(&rest, "!"));
    if (absl::ConsumePrefix(&rest, "in(")) {
      if (!absl::ConsumeSuffix(&rest, ")")) return Malformed(key, value, "in( without )");
      for (absl::string_view item : absl::StrSplit(rest, ',')) {
        item = absl::StripAsciiWhitespace(item);
        if (item.empty()) return Malformed(key, value, "an empty value in the list");
        term.add_values(std::string(item));
      }
    } else {
      if (rest.empty()) return Malformed(key, value, "no value");
      term.add_values(std::string(rest));
    }
    terms.push_back(std::move(term));
  }
  return terms;
}

bool LabelsMatch(const LabelTerms &terms, const Labels &labels) {
  for (const proto::LabelConstraint &term : terms) {
    auto it = labels.find(term.key());
    const bool listed = it != labels.end() && std::find(term.values().begin(), term.values().end(),
                                                        it->second) != term.values().end();
    if (listed == term.negated()) return false;
  }
  return true;
}

std::string LabelTermsText(const LabelTerms &terms) {
  std::vector<std::string> parts;
  for (const proto::LabelConstraint &term : terms) {
    const std::string values = absl::StrJoin(term.values(), ", ");
    if (term.values_size() == 1) {
      parts.push_back(term.key() + (term.negated() ? "!=" : "=") + values);
    } else {
      parts.push_back(term.key() + (term.negated() ? " not in (" : " in (") + values + ")");
    }
  }
  return absl::StrJoin(parts, ", ");
}

}  // namespace sunray
