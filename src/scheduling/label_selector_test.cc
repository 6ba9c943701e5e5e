#include "src/scheduling/label_selector.h"

#include <gtest/gtest.h>

namespace sunray {
namespace {

LabelTerms Terms(const std::map<std::string, std::string> &selector) {
  auto parsed = ParseLabelSelector(selector);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  LabelTerms terms;
  for (auto &term : parsed.value_or(std::vector<proto::LabelConstraint>{})) *terms.Add() = term;
  return terms;
}

TEST(LabelSelectorTest, EqualsAndNotEquals) {
  const LabelTerms terms = Terms({{"zone", "a"}, {"disk", "!hdd"}});
  EXPECT_TRUE(LabelsMatch(terms, {{"zone", "a"}, {"disk", "ssd"}}));
  EXPECT_TRUE(LabelsMatch(terms, {{"zone", "a"}}));  // no disk label: not hdd
  EXPECT_FALSE(LabelsMatch(terms, {{"zone", "b"}, {"disk", "ssd"}}));
  EXPECT_FALSE(LabelsMatch(terms, {{"zone", "a"}, {"disk", "hdd"}}));
  EXPECT_FALSE(LabelsMatch(terms, {{"disk", "ssd"}}));  // no zone at all
  EXPECT_EQ(LabelTermsText(terms), "disk!=hdd, zone=a");
}

TEST(LabelSelectorTest, InAndNotIn) {
  const LabelTerms in = Terms({{"region", "in(us, eu)"}});
  EXPECT_TRUE(LabelsMatch(in, {{"region", "eu"}}));
  EXPECT_FALSE(LabelsMatch(in, {{"region", "ap"}}));
  EXPECT_FALSE(LabelsMatch(in, {}));
  const LabelTerms not_in = Terms({{"region", "!in(us,eu)"}});
  EXPECT_FALSE(LabelsMatch(not_in, {{"region", "us"}}));
  EXPECT_TRUE(LabelsMatch(not_in, {{"region", "ap"}}));
  EXPECT_TRUE(LabelsMatch(not_in, {}));
  EXPECT_EQ(LabelTermsText(not_in), "region not in (us, eu)");
}

TEST(LabelSelectorTest, AnEmptySelectorMatchesEveryNode) {
  EXPECT_TRUE(LabelsMatch(Terms({}), {}));
  EXPECT_TRUE(LabelsMatch(Terms({}), {{"zone", "a"}}));
}

TEST(LabelSelectorTest, MalformedTermsAreRefusedNamingTheKey) {
  for (const auto &[key, value] : std::map<std::string, std::string>{
           {"a", ""}, {"b", "!"}, {"c", "in(x,"}, {"d", "in(x,,y)"}, {"e", "!in()"}}) {
    auto parsed = ParseLabelSelector({{key, value}});
    ASSERT_FALSE(parsed.ok()) << key << "=" << value;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("\"" + key + "\""), std::string::npos)
        << parsed.status();
  }
  EXPECT_FALSE(ParseLabelSelector({{"", "x"}}).ok());
}

}  // namespace
}  // namespace sunray
