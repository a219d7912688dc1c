// How a model wants its input prepared (timm's pretrained_cfg, in brief). Lives in core because
// the model registry (models/) records it and the transforms (data/) apply it.
#pragma once
#include <array>
#include <string>

namespace medfm {

struct PreprocessSpec {
  int resize_size = 224;                 // shorter side resized to this (0: no resize)
  int input_size = 224;                  // then a centred input_size x input_size crop
  std::string interpolation = "bicubic"; // bicubic | bilinear (antialiased, as torchvision tensors)
  std::array<double, 3> mean{0.485, 0.456, 0.406};
  std::array<double, 3> std{0.229, 0.224, 0.225};
  // DICOM / NIfTI intensities -> [0,1] before mean/std (data/model_input.h IntensitySpec.window):
  // "auto" = the file's VOI window, else min-max (what a DICOM-to-PNG export gives).
  std::string intensity = "auto";
};

}  // namespace medfm
