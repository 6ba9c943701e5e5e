#include "src/node/resources.h"

#include <gtest/gtest.h>

namespace sunray {
namespace {

TEST(ResourcesTest, ParsesWholeAndFractionalAmountsInFixedPoint) {
  auto resources = ParseResourcesJson(R"({"custom": 2, "accel": 0.5})");
  ASSERT_TRUE(resources.ok()) << resources.status();
  EXPECT_EQ(resources->at("custom"), 20000);
  EXPECT_EQ(resources->at("accel"), 5000);
  EXPECT_DOUBLE_EQ(FromFixedPoint(resources->at("accel")), 0.5);
}

TEST(ResourcesTest, RejectsMalformedInputNamingTheProblem) {
  EXPECT_TRUE(absl::IsInvalidArgument(ParseResourcesJson("{").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseResourcesJson("[1]").status()));
  auto negative = ParseResourcesJson(R"({"custom": -1})");
  ASSERT_TRUE(absl::IsInvalidArgument(negative.status()));
  EXPECT_NE(negative.status().message().find("custom"), std::string::npos);
  EXPECT_TRUE(absl::IsInvalidArgument(ParseResourcesJson(R"({"custom": "two"})").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseResourcesJson(R"({"": 1})").status()));
}

}  // namespace
}  // namespace sunray
