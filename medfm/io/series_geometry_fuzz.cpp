// libFuzzer target: plan_series (DICOM series geometry, no library) must answer any list of slice
// headers (NaN / inf / huge values, zero vectors, duplicates, gaps, tilt, mixed sizes) with a plan
// or a medfm::Error, and a plan must be usable: indices inside the input, blend weights in [0, 1),
// a finite affine and a positive finite slice step. Built by the `fuzz` preset (clang); run by
// scripts/fuzz.sh series_geometry (ctest `fuzz_series_geometry`, label `slow`).
//
// Input layout (read in order; missing bytes read as 0):
//   flags  u8   bit0 drop_duplicates, bit1 allow_gaps, bit2 allow_tilt, bit3 SliceSpacing::FirstPair,
//               bit4 has_spacing, bit5 unique file names (else names repeat every 3 slices)
//   n      u8   slice count = n % 65
//   base header: orientation 6 x V, pixel spacing 2 x V, slice thickness V, rows u8, cols u8
//   positions: origin 3 x V, step 3 x V; slice i sits at origin + t_i * step (+ jitter)
//   per slice: t i8, mode u8, then what mode asks for, in this order:
//               bit0 jitter 3 x V added to the position   bit1 raw position 3 x V instead
//               bit2 orientation 6 x V                    bit3 pixel spacing 2 x V
//               bit4 rows u8, cols u8                     bit5 no ImagePositionPatient
//               bit6 no ImageOrientationPatient           bit7 frames u8
//   V (a double): selector u8
//     0x00-0x7f  (s - 64) / 4                    (0x40 = 0, 0x44 = 1, 0x3c = -1)
//     0x80-0xef  i16 (LE) * 10^((s - 0x80) % 16 - 8)
//     0xf0 NaN, 0xf1 inf, 0xf2 -inf, 0xf3 1e308, 0xf4 -1e308, 0xf5 denormal, 0xf6 -0.0, 0xf7 DBL_MAX
//     0xf8-0xff  raw f64 (LE)
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "medfm/core/error.h"
#include "medfm/io/series_geometry.h"

namespace {

struct Reader {
  const uint8_t* p;
  size_t n, i = 0;
  uint8_t u8() { return i < n ? p[i++] : 0; }
  int16_t i16() {
    uint16_t lo = u8(), hi = u8();
    return static_cast<int16_t>(lo | (hi << 8));
  }
  double f64() {
    uint8_t b[8];
    for (auto& x : b) x = u8();
    double v;
    std::memcpy(&v, b, 8);
    return v;
  }
  double val() {
    const uint8_t s = u8();
    if (s < 0x80) return (static_cast<int>(s) - 64) / 4.0;
    if (s < 0xf0) return i16() * std::pow(10.0, (s - 0x80) % 16 - 8);
    switch (s) {
      case 0xf0: return std::numeric_limits<double>::quiet_NaN();
      case 0xf1: return std::numeric_limits<double>::infinity();
      case 0xf2: return -std::numeric_limits<double>::infinity();
      case 0xf3: return 1e308;
      case 0xf4: return -1e308;
      case 0xf5: return std::numeric_limits<double>::denorm_min();
      case 0xf6: return -0.0;
      case 0xf7: return std::numeric_limits<double>::max();
      default: return f64();
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace medfm::io;
  Reader r{data, size};
  const uint8_t flags = r.u8();
  SeriesRepair repair;
  repair.drop_duplicates = flags & 1;
  repair.allow_gaps = flags & 2;
  repair.allow_tilt = flags & 4;
  const SliceSpacing spacing = (flags & 8) ? SliceSpacing::FirstPair : SliceSpacing::Mean;
  const size_t n = r.u8() % 65;

  SliceHeader base;
  base.has_position = base.has_orientation = true;
  base.has_spacing = flags & 16;
  for (auto& v : base.orientation) v = r.val();
  for (auto& v : base.pixel_spacing) v = r.val();
  base.slice_thickness = r.val();
  base.rows = r.u8();
  base.cols = r.u8();
  medfm::Vec3 origin, step;
  for (auto& v : origin) v = r.val();
  for (auto& v : step) v = r.val();

  std::vector<SliceHeader> slices;
  for (size_t i = 0; i < n; ++i) {
    SliceHeader s = base;
    s.file = "/series/f" + std::to_string((flags & 32) ? i : i % 3) + ".dcm";
    const double t = static_cast<int8_t>(r.u8());
    const uint8_t mode = r.u8();
    for (int k = 0; k < 3; ++k) s.position[k] = origin[k] + t * step[k];
    if (mode & 1)
      for (auto& v : s.position) v += r.val();
    if (mode & 2)
      for (auto& v : s.position) v = r.val();
    if (mode & 4)
      for (auto& v : s.orientation) v = r.val();
    if (mode & 8)
      for (auto& v : s.pixel_spacing) v = r.val();
    if (mode & 16) s.rows = r.u8(), s.cols = r.u8();
    if (mode & 32) s.has_position = false;
    if (mode & 64) s.has_orientation = false;
    if (mode & 128) s.frames = r.u8();
    slices.push_back(s);
  }

  try {
    SeriesPlan plan = plan_series(slices, repair, "/series", spacing);
    if (plan.slices.empty()) __builtin_trap();
    for (const auto& p : plan.slices) {
      if (p.a >= slices.size() || p.b >= slices.size()) __builtin_trap();
      if (!(p.w >= 0 && p.w < 1)) __builtin_trap();
    }
    for (double v : plan.affine)
      if (!std::isfinite(v)) __builtin_trap();
    if (!(plan.slice_step > 0 && std::isfinite(plan.slice_step))) __builtin_trap();
  } catch (const medfm::Error&) {
  }
  return 0;
}
