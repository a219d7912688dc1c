#include "medfm/ssl/mae_objective.h"

#include <torch/torch.h>

#include <set>

#include "medfm/core/error.h"
#include "medfm/models/layers.h"
#include "medfm/ssl/mae.h"

namespace medfm::ssl {

namespace {

torch::Tensor sincos_1d(int dim, const torch::Tensor& pos) {  // pos [M] -> [M, dim]
  auto omega = torch::arange(dim / 2, torch::kFloat64) / (dim / 2.0);
  omega = 1.0 / torch::pow(10000.0, omega);
  auto out = torch::outer(pos.reshape(-1).to(torch::kFloat64), omega);  // [M, dim/2]
  return torch::cat({torch::sin(out), torch::cos(out)}, 1);
}

}  // namespace

torch::Tensor sincos_pos_embed_2d(int dim, int grid, int n_prefix) {
  MEDFM_CHECK_T(ConfigError, dim % 4 == 0, "mae: decoder_dim ", dim, " must be a multiple of 4 (2D sin-cos embedding)");
  auto g = torch::arange(grid, torch::kFloat64);
  auto gw = g.view({1, grid}).expand({grid, grid});  // np.meshgrid(grid_w, grid_h)[0]: the column index
  auto gh = g.view({grid, 1}).expand({grid, grid});
  auto emb = torch::cat({sincos_1d(dim / 2, gw), sincos_1d(dim / 2, gh)}, 1);  // [grid*grid, dim]
  if (n_prefix > 0) emb = torch::cat({torch::zeros({n_prefix, dim}, torch::kFloat64), emb});
  return emb.to(torch::kFloat32);
}

MaeModelImpl::MaeModelImpl(models::Vit enc, const MaeOptions& o) : encoder(std::move(enc)), cfg_(encoder->config()), o_(o) {
  MEDFM_CHECK_T(ConfigError, o_.mask_ratio > 0 && o_.mask_ratio < 1, "mae: mask_ratio ", o_.mask_ratio, " is not in (0, 1)");
  MEDFM_CHECK_T(ConfigError, o_.decoder_dim > 0 && o_.decoder_depth >= 1 && o_.decoder_heads >= 1 &&
                                 o_.decoder_dim % o_.decoder_heads == 0,
                "mae: decoder_dim must be a positive multiple of decoder_heads, decoder_depth >= 1");
  register_module("encoder", encoder);
  build_decoder();
  init_decoder();
}

void MaeModelImpl::reset() {
  // clone(): fresh modules of the same shapes; Cloneable copies the values in afterwards.
  encoder = register_module("encoder", models::Vit(cfg_));
  build_decoder();
}

void MaeModelImpl::build_decoder() {
  const int Dd = o_.decoder_dim, p = cfg_.patch_size;
  decoder_embed = register_module("decoder_embed", torch::nn::Linear(cfg_.embed_dim, Dd));
  mask_token = register_parameter("mask_token", torch::zeros({1, 1, Dd}));
  decoder_pos_embed = register_buffer("decoder_pos_embed", sincos_pos_embed_2d(Dd, cfg_.grid(), cfg_.n_prefix()).unsqueeze(0));
  decoder_blocks = register_module("decoder_blocks", torch::nn::ModuleList());
  for (int i = 0; i < o_.decoder_depth; ++i) {
    models::BlockOptions bo;
    bo.dim = Dd, bo.num_heads = o_.decoder_heads, bo.mlp_hidden = 4 * Dd, bo.qkv_bias = true;
    decoder_blocks->push_back(models::Block(bo));
  }
  decoder_norm = register_module("decoder_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({Dd}).eps(1e-6)));
  decoder_pred = register_module("decoder_pred", torch::nn::Linear(Dd, p * p * cfg_.in_chans));
}

// MAE's _init_weights for the decoder: xavier_uniform linears with zero bias, LayerNorm (1, 0),
// mask token normal(0.02).
void MaeModelImpl::init_decoder() {
  torch::NoGradGuard ng;
  auto init_linear = [](torch::nn::Linear& l) {
    torch::nn::init::xavier_uniform_(l->weight);
    l->bias.zero_();
  };
  init_linear(decoder_embed);
  init_linear(decoder_pred);
  for (size_t i = 0; i < decoder_blocks->size(); ++i) {
    auto& b = *decoder_blocks->ptr<models::BlockImpl>(i);
    for (auto* lin : {&b.attn->qkv, &b.attn->proj, &b.mlp->fc1, &b.mlp->fc2}) init_linear(*lin);
  }
  mask_token.normal_(0, 0.02);
}

std::pair<torch::Tensor, torch::Tensor> MaeModelImpl::forward(const torch::Tensor& imgs, const torch::Tensor& noise) {
  const int64_t P = cfg_.n_prefix();
  auto tokens = encoder->prepare_tokens(imgs);                   // [B, P+L, D]
  auto masked = random_masking(tokens.narrow(1, P, tokens.size(1) - P), o_.mask_ratio, noise);
  auto latent = encoder->forward_tokens(torch::cat({tokens.narrow(1, 0, P), masked.kept}, 1));  // [B, P+keep, D]
  auto x = decoder_embed(latent);                                // [B, P+keep, Dd]
  const int64_t B = x.size(0), L = masked.ids_restore.size(1), Dd = x.size(2);
  auto fill = mask_token.expand({B, L + P - x.size(1), Dd});
  auto x_ = torch::cat({x.narrow(1, P, x.size(1) - P), fill}, 1);  // [B, L, Dd] in shuffled order
  x_ = torch::gather(x_, 1, masked.ids_restore.unsqueeze(-1).expand({B, L, Dd}));  // unshuffle
  x = torch::cat({x.narrow(1, 0, P), x_}, 1) + decoder_pos_embed;
  for (size_t i = 0; i < decoder_blocks->size(); ++i) x = decoder_blocks->ptr<models::BlockImpl>(i)->forward(x);
  x = decoder_pred(decoder_norm(x));
  return {x.narrow(1, P, L), masked.mask};
}

MaeObjective::MaeObjective(models::Vit encoder, MaeOptions options) : o_(options) {
  model_ = MaeModel(std::move(encoder), o_);
}

std::vector<train::ParamGroup> MaeObjective::param_groups() {
  std::set<std::string> no_decay{"mask_token"};
  for (const auto& n : model_->encoder->no_weight_decay()) no_decay.insert("encoder." + n);
  return train::weight_decay_groups(*model_, no_decay);
}

train::StepLoss MaeObjective::loss(const train::Views& views, int64_t) {
  MEDFM_CHECK(!views.crops.empty(), "mae: no view");
  const auto& imgs = views.crops[0];
  const auto& cfg = model_->encoder->config();
  MEDFM_CHECK(imgs.size(2) == cfg.img_size && imgs.size(3) == cfg.img_size, "mae: views of ", imgs.size(2), "x",
              imgs.size(3), " px, the encoder's img_size is ", cfg.img_size, " (views.global_size)");
  const int64_t L = static_cast<int64_t>(cfg.grid()) * cfg.grid();
  // Noise for the whole global batch, this part's rows: the same masks for any number of ranks.
  const int64_t B = imgs.size(0), G = views.global_batch > 0 ? views.global_batch : B;
  MEDFM_CHECK(views.first_slot >= 0 && views.first_slot + B <= G, "mae: slots ", views.first_slot, "+", B, " outside ", G);
  auto noise = torch::rand({G, L}, imgs.options()).narrow(0, views.first_slot, B);
  auto [pred, mask] = model_->forward(imgs, noise);
  auto l = mae_loss(imgs, pred.to(torch::kFloat32), mask, cfg.patch_size, o_.norm_pix_loss);
  return {l, {{"mae", l.item<double>()}}};
}

std::vector<std::pair<std::string, torch::Tensor>> MaeObjective::state() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  train::add_module_state(out, "model.", *model_);
  return out;
}

void MaeObjective::load_state(const std::map<std::string, torch::Tensor>& state) {
  train::load_module_state(*model_, "model.", state);
}

}  // namespace medfm::ssl
