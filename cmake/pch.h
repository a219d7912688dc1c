// Precompiled header: LibTorch costs ~30 s per translation unit without it.
#pragma once
#include <torch/torch.h>
#include <string>
#include <vector>
#include <memory>
#include <optional>
#include <spdlog/spdlog.h>
