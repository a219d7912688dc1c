// A small counter-seeded random generator for data pipelines: the draws for sample `index` of
// `epoch` depend only on (seed, epoch, index, stream), never on which thread made them or in what
// order, so batches are identical for any number of loader threads and after a resume.
// SplitMix64 (Steele, Lea & Flood 2014) mixes the key; xoshiro256** (Blackman & Vigna) draws.
// Not thread-safe: one Rng per sample.
#pragma once
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <algorithm>
#include <utility>
#include <vector>

namespace medfm {

class Rng {
 public:
  // The generator for a key of any length, e.g. Rng({seed, epoch, index}).
  explicit Rng(std::initializer_list<uint64_t> key) {
    uint64_t h = 0x6a09e667f3bcc909ULL;
    for (uint64_t k : key) h = splitmix(h ^ splitmix(k + 0x9e3779b97f4a7c15ULL));
    for (auto& w : s_) w = splitmix(h += 0x9e3779b97f4a7c15ULL);
  }
  uint64_t next() {
    const uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Integer in [0, n), n > 0 (Lemire's multiply-shift; the bias is below 2^-32 for n < 2^32).
  int64_t below(int64_t n) { return static_cast<int64_t>((static_cast<unsigned __int128>(next()) * static_cast<uint64_t>(n)) >> 64); }
  bool bernoulli(double p) { return uniform() < p; }
  // A seed for another generator (e.g. torch's) derived from this one.
  uint64_t seed() { return next(); }
  // Fisher-Yates: v in a uniformly drawn order.
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<size_t>(below(static_cast<int64_t>(i)))]);
  }
  // Partial Fisher-Yates: a uniform sample of min(k, size) elements, without replacement, moved to
  // v's front (the rest of v keeps the others).
  template <typename T>
  void sample_front(std::vector<T>& v, size_t k) {
    for (size_t i = 0; i < std::min(k, v.size()); ++i)
      std::swap(v[i], v[i + static_cast<size_t>(below(static_cast<int64_t>(v.size() - i)))]);
  }

 private:
  static uint64_t splitmix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace medfm
