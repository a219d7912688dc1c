#include "medfm/train/distributed.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <sstream>

#include "medfm/core/error.h"

#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace medfm::train {

struct Dist::Group {
#ifdef USE_C10D_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
#endif
};

Dist::Dist() = default;
Dist::~Dist() = default;

namespace {

int env_int(const char* name, int fallback, bool required) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    MEDFM_CHECK_T(ConfigError, !required, "distributed: ", name, " is not set (launch with `medfm launch -n N -- ...` or torchrun)");
    return fallback;
  }
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  MEDFM_CHECK_T(ConfigError, end && *end == 0 && x >= 0 && x < (1L << 20), "distributed: ", name, "='", v, "' is not a count");
  return static_cast<int>(x);
}

#ifdef USE_C10D_GLOO
// Gathers rows from every rank; the backward pass sums the gradient over ranks and keeps this
// rank's rows (the gradient of the mean of every rank's loss, once gradients are averaged).
class GatherRows : public torch::autograd::Function<GatherRows> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, Dist* d) {
    ctx->saved_data["rank"] = static_cast<int64_t>(d->rank());
    ctx->saved_data["n"] = x.size(0);
    ctx->saved_data["dist"] = reinterpret_cast<int64_t>(d);
    return d->all_gather(x.detach());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list g) {
    auto* d = reinterpret_cast<Dist*>(ctx->saved_data["dist"].toInt());
    auto grad = g[0].contiguous().clone();
    d->all_reduce_sum(grad);
    return {grad.narrow(0, ctx->saved_data["rank"].toInt() * ctx->saved_data["n"].toInt(), ctx->saved_data["n"].toInt()),
            torch::Tensor()};
  }
};
#endif

}  // namespace

std::shared_ptr<Dist> Dist::from_env(double timeout_s) {
  auto d = std::make_shared<Dist>();
  const int world = env_int("WORLD_SIZE", 1, false);
  if (world <= 1) return d;
#ifndef USE_C10D_GLOO
  throw NotImplemented("distributed: WORLD_SIZE=" + std::to_string(world) +
                       " but this LibTorch has no Gloo process group (c10d); run one process");
#else
  d->world_ = world;
  d->rank_ = env_int("RANK", 0, true);
  d->local_rank_ = env_int("LOCAL_RANK", d->rank_, false);
  MEDFM_CHECK_T(ConfigError, d->rank_ < world, "distributed: RANK ", d->rank_, " is not below WORLD_SIZE ", world);
  const char* addr = std::getenv("MASTER_ADDR");
  MEDFM_CHECK_T(ConfigError, addr && *addr, "distributed: MASTER_ADDR is not set");
  const int port = env_int("MASTER_PORT", 0, true);
  MEDFM_CHECK_T(ConfigError, port > 0 && port < 65536, "distributed: MASTER_PORT ", port, " is not a port");
  d->addr_ = std::string(addr) + ":" + std::to_string(port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(port);
    so.isServer = d->rank_ == 0;
    so.numWorkers = world;
    so.waitWorkers = true;
    so.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    auto store = c10::make_intrusive<c10d::TCPStore>(addr, so);
    auto opts = c10d::ProcessGroupGloo::Options::create();
    opts->timeout = so.timeout;
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(addr));
    d->g_ = std::make_unique<Group>();
    d->g_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, d->rank_, world, opts);
  } catch (const c10::Error& e) {
    throw Error("distributed: rank " + std::to_string(d->rank_) + " of " + std::to_string(world) + " could not join " +
                d->addr_ + ": " + e.what_without_backtrace());
  }
  return d;
#endif
}

std::string Dist::describe() const {
  if (!active()) return "one process";
  std::ostringstream s;
  s << "rank " << rank_ << " of " << world_ << " (gloo, " << addr_ << ")";
  return s.str();
}

void Dist::all_reduce_sum(torch::Tensor& t) {
  if (!active()) return;
#ifdef USE_C10D_GLOO
  std::vector<torch::Tensor> v{t};
  g_->pg->allreduce(v)->wait();
#endif
}

torch::Tensor Dist::all_gather(const torch::Tensor& t) {
  if (!active()) return t;
#ifdef USE_C10D_GLOO
  if (t.requires_grad()) return GatherRows::apply(t, this);
  auto x = t.contiguous();
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int r = 0; r < world_; ++r) out[0].push_back(torch::empty_like(x));
  std::vector<torch::Tensor> in{x};
  g_->pg->allgather(out, in)->wait();
  return torch::cat(out[0]);
#else
  return t;
#endif
}

void Dist::broadcast(torch::Tensor& t, int root) {
  if (!active()) return;
#ifdef USE_C10D_GLOO
  std::vector<torch::Tensor> v{t};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  g_->pg->broadcast(v, o)->wait();
#endif
}

void Dist::broadcast_module(torch::nn::Module& m) {
  if (!active()) return;
  torch::NoGradGuard ng;
  for (auto& p : m.parameters()) {
    auto c = p.detach().contiguous();
    broadcast(c);
    p.copy_(c);
  }
  for (auto& b : m.buffers()) {
    auto c = b.contiguous();
    broadcast(c);
    b.copy_(c);
  }
}

void Dist::average_gradients(torch::nn::Module& m) {
  if (!active()) return;
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> grads;
  for (auto& p : m.parameters())
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return;
  std::vector<torch::Tensor> flat;
  for (auto& g : grads) flat.push_back(g.reshape(-1));
  auto buf = torch::cat(flat);
  all_reduce_sum(buf);
  buf.div_(world_);
  int64_t off = 0;
  for (auto& g : grads) {
    g.copy_(buf.narrow(0, off, g.numel()).view_as(g));
    off += g.numel();
  }
}

double Dist::mean(double v) {
  if (!active()) return v;
  auto t = torch::tensor({v}, torch::kFloat64);
  all_reduce_sum(t);
  return t.item<double>() / world_;
}

void Dist::barrier() {
  if (!active()) return;
  auto t = torch::zeros({1});
  all_reduce_sum(t);
}

}  // namespace medfm::train
