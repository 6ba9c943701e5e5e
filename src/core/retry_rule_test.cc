// The retry rule both runtimes share.
#include "src/core/retry_rule.h"

#include <gtest/gtest.h>

namespace sunray {
namespace {

TEST(RetryBudgetTest, ALimitAllowsThatManyRetriesAndNoMore) {
  RetryBudget budget(2);
  EXPECT_TRUE(budget.Spend());
  EXPECT_TRUE(budget.Spend());
  EXPECT_FALSE(budget.CanRetry());
  EXPECT_FALSE(budget.Spend());
  EXPECT_EQ(budget.spent(), 2);
}

TEST(RetryBudgetTest, NoneByDefaultAndMinusOneMeansNoLimit) {
  RetryBudget none;
  EXPECT_FALSE(none.Spend());
  RetryBudget unlimited(-1);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(unlimited.Spend());
  EXPECT_TRUE(unlimited.CanRetry());
  EXPECT_TRUE(RetryBudget(-5).CanRetry()) << "any negative limit is none";
}

TEST(RetryBudgetTest, ALimitLearnedLaterCountsWhatWasSpent) {
  RetryBudget budget(-1);
  EXPECT_TRUE(budget.Spend());
  budget.set_max(1);
  EXPECT_FALSE(budget.Spend());
  budget.set_max(3);
  EXPECT_TRUE(budget.Spend());
  EXPECT_EQ(budget.spent(), 2);
}

TEST(RetriedForTest, ADeadWorkerAlwaysAnExceptionOnlyWhenAsked) {
  EXPECT_TRUE(RetriedFor(/*worker_died=*/true, false, false));
  EXPECT_FALSE(RetriedFor(false, /*function_threw=*/true, /*retry_exceptions=*/false));
  EXPECT_TRUE(RetriedFor(false, true, true));
  EXPECT_FALSE(RetriedFor(false, false, true));
}

}  // namespace
}  // namespace sunray
