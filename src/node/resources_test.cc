#include "src/common/resources.h"

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

TEST(ResourcesTest, FractionsAddUpExactlyAndFitTheirSum) {
  // 0.1 + 0.2 is not 0.3 in doubles; in fixed point it is.
  const ResourceSet request = ResourceSetFromUnits(std::map<std::string, double>{{"GPU", 0.3}});
  ResourceSet pool = ResourceSetFromUnits(std::map<std::string, double>{{"GPU", 0.1}});
  pool["GPU"] += ToFixedPoint(0.2);
  EXPECT_TRUE(Fits(request, pool));
  pool["GPU"] -= 1;
  EXPECT_FALSE(Fits(request, pool));
}

TEST(ResourcesTest, AResourceThePoolLacksFitsOnlyWhenNoneIsAskedFor) {
  const ResourceSet pool{{"CPU", 2 * kResourceUnit}};
  EXPECT_TRUE(Fits(ResourceSet{{"CPU", kResourceUnit}}, pool));
  EXPECT_FALSE(Fits(ResourceSet{{"accel", 1}}, pool));
  EXPECT_TRUE(Fits(ResourceSet{{"accel", 0}}, pool));
  proto::ResourceMap wire_request;
  proto::ResourceMap wire_pool;
  FillResourceMap(ResourceSet{{"accel", 1}}, &wire_request);
  FillResourceMap(pool, &wire_pool);
  EXPECT_FALSE(Fits(wire_request, wire_pool));  // the same rule on the wire form
  EXPECT_EQ(ResourceSetOf(wire_pool), pool);
}

TEST(ResourcesTest, TheTextFormSortsNamesAndShowsUnits) {
  EXPECT_EQ(
      ResourcesText(ResourceSetFromUnits(std::map<std::string, double>{{"GPU", 0.5}, {"CPU", 2}})),
      "{CPU: 2, GPU: 0.5}");
}

TEST(ResourcesTest, LabelsAreStringsOutsideTheReservedPrefix) {
  auto labels = ParseLabelsJson(R"({"zone": "a", "disk": "ssd"})");
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_EQ(*labels, (Labels{{"disk", "ssd"}, {"zone", "a"}}));
  EXPECT_TRUE(ParseLabelsJson("{}").ok());
  for (const char *bad : {"{", "[1]", R"({"zone": 1})", R"({"": "a"})"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParseLabelsJson(bad).status())) << bad;
  }
  auto reserved = ParseLabelsJson(R"({"ray.io/node_id": "x"})");
  ASSERT_TRUE(absl::IsInvalidArgument(reserved.status()));
  EXPECT_NE(reserved.status().message().find("reserved"), std::string::npos);
  auto number = ParseLabelsJson(R"({"zone": 1})");
  EXPECT_NE(number.status().message().find("'zone' must be a string"), std::string::npos)
      << number.status();
}

}  // namespace
}  // namespace sunray
