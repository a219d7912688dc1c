// Reader throughput, the medfm side of bench/run_reader_bench.sh (peers: series_peer.py,
// region_peer.py). Prints one JSON object.
//   medfm_bench_readers series DIR [repeats] [threads]
//       open_volume(DIR): scan, group, sort, decode every slice, rescale. Best of `repeats`.
//   medfm_bench_readers regions SLIDE POSITIONS SIZE LEVEL [repeats] [threads]
//       POSITIONS: "x y" per line (level-0). Each repeat opens the slide afresh (cold tile cache)
//       and reads every region into RGB bytes from `threads` threads, as the peer does.
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "medfm/core/runtime.h"
#include "medfm/io/formats.h"

using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

static int series(int argc, char** argv) {
  const std::string dir = argv[2];
  const int repeats = argc > 3 ? std::stoi(argv[3]) : 3;
  const int threads = argc > 4 ? std::stoi(argv[4]) : 2;
  medfm::set_threads(threads);
  medfm::io::open_volume(dir);  // warm-up: page cache, GDCM dictionaries
  std::vector<double> times;
  medfm::Image img;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    img = medfm::io::open_volume(dir);
    times.push_back(seconds_since(t0));
  }
  std::sort(times.begin(), times.end());
  auto sz = img.size();
  nlohmann::json j = {{"impl", "medfm"}, {"dir", dir}, {"threads", threads}, {"repeats", repeats},
                      {"shape_zyx", {sz[2], sz[1], sz[0]}}, {"dtype", img.stored_dtype},
                      {"checksum", img.pixels.to(at::kDouble).sum().item<double>()},
                      {"best_s", times.front()}, {"median_s", times[times.size() / 2]},
                      {"files", std::stoll(img.meta.count("files") ? img.meta.at("files") : "0")}};
  std::cout << j.dump() << "\n";
  return 0;
}

static int regions(int argc, char** argv) {
  const std::string path = argv[2];
  std::vector<std::pair<int64_t, int64_t>> xy;
  {
    std::ifstream f(argv[3]);
    int64_t x, y;
    while (f >> x >> y) xy.emplace_back(x, y);
  }
  const int64_t size = std::stoll(argv[4]);
  const int level = std::stoi(argv[5]);
  const int repeats = argc > 6 ? std::stoi(argv[6]) : 3;
  const int threads = argc > 7 ? std::stoi(argv[7]) : 2;
  auto run = [&](size_t n, uint64_t* checksum) {
    auto slide = medfm::io::open_slide(path);
    std::atomic<size_t> next{0};
    std::atomic<uint64_t> sum{0};
    auto t0 = Clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&] {
        std::vector<uint8_t> buf(static_cast<size_t>(size * size * 3));
        uint64_t local = 0;
        for (size_t i; (i = next++) < n;) {
          slide->read_region_rgb(xy[i].first, xy[i].second, level, size, size, buf.data());
          for (uint8_t v : buf) local += v;
        }
        sum += local;
      });
    for (auto& t : pool) t.join();
    double dt = seconds_since(t0);
    *checksum = sum;
    return dt;
  };
  uint64_t checksum = 0;
  run(std::min<size_t>(20, xy.size()), &checksum);  // warm-up
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) times.push_back(run(xy.size(), &checksum));
  std::sort(times.begin(), times.end());
  nlohmann::json j = {{"impl", "medfm"}, {"slide", path}, {"level", level}, {"region", {size, size}},
                      {"n", xy.size()}, {"threads", threads}, {"repeats", repeats}, {"best_s", times.front()},
                      {"median_s", times[times.size() / 2]}, {"regions_per_s", static_cast<double>(xy.size()) / times.front()},
                      {"checksum", checksum}};
  std::cout << j.dump() << "\n";
  return 0;
}

int main(int argc, char** argv) {
  medfm::ensure_fast_blas(argv);
  try {
    if (argc >= 3 && std::string(argv[1]) == "series") return series(argc, argv);
    if (argc >= 6 && std::string(argv[1]) == "regions") return regions(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "medfm_bench_readers: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "usage: medfm_bench_readers series DIR [repeats] [threads]\n"
               "       medfm_bench_readers regions SLIDE POSITIONS SIZE LEVEL [repeats] [threads]\n";
  return 2;
}
