#include <gtest/gtest.h>

#include "medfm/core/runtime.h"

int main(int argc, char** argv) {
  medfm::ensure_fast_blas(argv);
  ::testing::InitGoogleTest(&argc, argv);
  medfm::set_threads(0);
  return RUN_ALL_TESTS();
}
