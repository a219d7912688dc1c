#include "medfm/data/views.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "medfm/core/config.h"
#include "medfm/core/error.h"
#include "medfm/data/stain.h"
#include "medfm/data/transforms.h"

namespace medfm::data {

namespace {

at::Tensor blend(const at::Tensor& a, const at::Tensor& b, double ratio) {
  return (ratio * a + (1.0 - ratio) * b).clamp(0.0, 1.0);
}

at::Tensor gray1(const at::Tensor& img) {  // [3,H,W] -> [1,H,W]
  return (0.2989 * img[0] + 0.587 * img[1] + 0.114 * img[2]).unsqueeze(0);
}

at::Tensor rgb_to_hsv(const at::Tensor& img) {
  auto r = img[0], g = img[1], b = img[2];
  auto maxc = std::get<0>(img.max(0)), minc = std::get<0>(img.min(0));
  auto eqc = maxc == minc;
  auto cr = maxc - minc;
  auto ones = torch::ones_like(maxc);
  auto s = cr / torch::where(eqc, ones, maxc);
  auto div = torch::where(eqc, ones, cr);
  auto rc = (maxc - r) / div, gc = (maxc - g) / div, bc = (maxc - b) / div;
  auto hr = (maxc == r).to(img.dtype()) * (bc - gc);
  auto hg = ((maxc == g) & (maxc != r)).to(img.dtype()) * (2.0 + rc - bc);
  auto hb = ((maxc != g) & (maxc != r)).to(img.dtype()) * (4.0 + gc - rc);
  auto h = torch::fmod((hr + hg + hb) / 6.0 + 1.0, 1.0);
  return torch::stack({h, s, maxc});
}

at::Tensor hsv_to_rgb(const at::Tensor& hsv) {
  auto h = hsv[0], s = hsv[1], v = hsv[2];
  auto i = torch::floor(h * 6.0);
  auto f = h * 6.0 - i;
  auto ii = i.to(torch::kInt32).remainder(6);
  auto p = (v * (1.0 - s)).clamp(0.0, 1.0);
  auto q = (v * (1.0 - s * f)).clamp(0.0, 1.0);
  auto t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0);
  auto mask = (ii.unsqueeze(0) == torch::arange(6, ii.options()).view({-1, 1, 1})).to(hsv.dtype());  // [6,H,W]
  auto a1 = torch::stack({v, q, p, p, t, v});
  auto a2 = torch::stack({t, v, v, q, p, p});
  auto a3 = torch::stack({p, p, t, v, v, q});
  auto a4 = torch::stack({a1, a2, a3});  // [3,6,H,W]
  return (a4 * mask.unsqueeze(0)).sum(1);
}

at::Tensor as_rgb(const at::Tensor& img) {
  MEDFM_CHECK(img.dim() == 3 && (img.size(0) == 1 || img.size(0) == 3), "views: expected [1 or 3, H, W], got ",
              img.sizes());
  return img.size(0) == 1 ? img.expand({3, -1, -1}) : img;
}

}  // namespace

at::Tensor resized_crop(const at::Tensor& img, int64_t top, int64_t left, int64_t h, int64_t w, int size,
                        const std::string& interpolation) {
  MEDFM_CHECK(top >= 0 && left >= 0 && h > 0 && w > 0 && top + h <= img.size(1) && left + w <= img.size(2),
              "views: crop box outside the image");
  return resize_to(img.narrow(1, top, h).narrow(2, left, w), size, size, interpolation).clamp(0.0, 1.0);
}

at::Tensor adjust_brightness(const at::Tensor& img, double factor) {
  return blend(img, torch::zeros_like(img), factor);
}

at::Tensor adjust_contrast(const at::Tensor& img, double factor) {
  return blend(img, gray1(img).mean(), factor);
}

at::Tensor adjust_saturation(const at::Tensor& img, double factor) {
  return blend(img, gray1(img), factor);
}

at::Tensor adjust_hue(const at::Tensor& img, double shift) {
  MEDFM_CHECK(shift >= -0.5 && shift <= 0.5, "views: hue shift ", shift, " outside [-0.5, 0.5]");
  auto hsv = rgb_to_hsv(img);
  auto h = torch::remainder(hsv[0] + shift, 1.0);
  return hsv_to_rgb(torch::stack({h, hsv[1], hsv[2]}));
}

at::Tensor rgb_to_grayscale(const at::Tensor& img) {
  return gray1(img).expand({3, -1, -1}).contiguous();
}

at::Tensor gaussian_blur(const at::Tensor& img, int kernel, double sigma) {
  MEDFM_CHECK(kernel > 0 && kernel % 2 == 1 && sigma > 0, "views: blur needs an odd kernel and sigma > 0");
  const double half = (kernel - 1) * 0.5;
  auto x = torch::linspace(-half, half, kernel, img.options());
  auto pdf = torch::exp(-0.5 * (x / sigma).pow(2));
  auto k1 = pdf / pdf.sum();
  auto k2 = torch::outer(k1, k1).expand({img.size(0), 1, kernel, kernel});
  const int64_t pad = kernel / 2;
  auto p = torch::nn::functional::pad(img.unsqueeze(0),
                                      torch::nn::functional::PadFuncOptions({pad, pad, pad, pad}).mode(torch::kReflect));
  return torch::conv2d(p, k2, at::Tensor(), at::IntArrayRef{1, 1}, at::IntArrayRef{0, 0}, at::IntArrayRef{1, 1}, img.size(0)).squeeze(0);
}

at::Tensor solarize(const at::Tensor& img, double threshold) {
  return torch::where(img >= threshold, 1.0 - img, img);
}

std::array<int64_t, 4> random_resized_crop_box(int64_t height, int64_t width, double scale_lo, double scale_hi,
                                               Rng& rng, double ratio_lo, double ratio_hi) {
  const double area = static_cast<double>(height) * width;
  const double lr0 = std::log(ratio_lo), lr1 = std::log(ratio_hi);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform(scale_lo, scale_hi);
    const double aspect = std::exp(rng.uniform(lr0, lr1));
    const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(target * aspect)));
    const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(target / aspect)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const int64_t top = rng.below(height - h + 1), left = rng.below(width - w + 1);
      return {top, left, h, w};
    }
  }
  // Fallback: the whole image, cropped centrally to the nearest allowed aspect ratio.
  const double in_ratio = static_cast<double>(width) / height;
  int64_t w = width, h = height;
  if (in_ratio < ratio_lo) {
    h = static_cast<int64_t>(std::nearbyint(w / ratio_lo));
  } else if (in_ratio > ratio_hi) {
    w = static_cast<int64_t>(std::nearbyint(h * ratio_hi));
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

void ViewSpec::bind(Config& cfg) {
  cfg.bind("views.preset", preset, "natural | pathology | radiology | ophthalmology: the defaults of the keys below");
  cfg.bind("views.n_global", n_global, "global crops per image");
  cfg.bind("views.global_size", global_size, "global crop size (pixels)");
  cfg.bind("views.global_scale", global_scale, "global crop area fraction [lo, hi]");
  cfg.bind("views.n_local", n_local, "local crops per image (0: none)");
  cfg.bind("views.local_size", local_size, "local crop size (pixels)");
  cfg.bind("views.local_scale", local_scale, "local crop area fraction [lo, hi]");
  cfg.bind("views.interpolation", interpolation, "bicubic | bilinear");
  cfg.bind("views.flip_h", flip_h, "horizontal flip probability");
  cfg.bind("views.flip_v", flip_v, "vertical flip probability");
  cfg.bind("views.rot90", rot90, "random 90-degree rotations");
  cfg.bind("views.jitter_p", jitter_p, "colour jitter probability");
  cfg.bind("views.brightness", brightness, "colour jitter: brightness factor range 1 +- this");
  cfg.bind("views.contrast", contrast, "colour jitter: contrast factor range 1 +- this");
  cfg.bind("views.saturation", saturation, "colour jitter: saturation factor range 1 +- this");
  cfg.bind("views.hue", hue, "colour jitter: hue shift range +- this (<= 0.5)");
  cfg.bind("views.grayscale_p", grayscale_p, "grayscale probability");
  cfg.bind("views.blur_p", blur_p, "Gaussian blur probability [first global, other globals, locals]");
  cfg.bind("views.solarize_p", solarize_p, "solarisation probability [first global, other globals, locals]");
  cfg.bind("views.blur_sigma", blur_sigma, "Gaussian blur sigma range [lo, hi] (pixels)");
  cfg.bind("views.blur_kernel", blur_kernel, "Gaussian blur kernel size (odd)");
  cfg.bind("views.hed_p", hed_p, "HED stain jitter probability (pathology)");
  cfg.bind("views.hed_sigma", hed_sigma, "HED jitter: stain scale 1 +- this");
  cfg.bind("views.hed_bias", hed_bias, "HED jitter: stain shift +- this");
}

void ViewSpec::validate() const {
  auto range = [](const std::vector<double>& r, const char* key, double lo, double hi) {
    MEDFM_CHECK_T(ConfigError, r.size() == 2 && r[0] > lo && r[0] <= r[1] && r[1] <= hi, "views.", key,
                  ": needs [lo, hi] with ", lo, " < lo <= hi <= ", hi);
  };
  auto prob = [](double p, const char* key) {
    MEDFM_CHECK_T(ConfigError, p >= 0 && p <= 1, "views.", key, ": ", p, " is not a probability");
  };
  auto probs = [&](const std::vector<double>& v, const char* key) {
    MEDFM_CHECK_T(ConfigError, v.size() == 3, "views.", key, ": needs 3 probabilities [first global, other globals, locals]");
    for (double p : v) prob(p, key);
  };
  MEDFM_CHECK_T(ConfigError, n_global >= 1 && n_local >= 0, "views: needs n_global >= 1 and n_local >= 0");
  MEDFM_CHECK_T(ConfigError, global_size >= 8 && (n_local == 0 || local_size >= 8), "views: crop sizes must be >= 8");
  range(global_scale, "global_scale", 0, 1);
  if (n_local > 0) range(local_scale, "local_scale", 0, 1);
  MEDFM_CHECK_T(ConfigError, interpolation == "bicubic" || interpolation == "bilinear",
                "views.interpolation: '", interpolation, "' is not bicubic or bilinear");
  prob(flip_h, "flip_h");
  prob(flip_v, "flip_v");
  prob(jitter_p, "jitter_p");
  prob(grayscale_p, "grayscale_p");
  prob(hed_p, "hed_p");
  probs(blur_p, "blur_p");
  probs(solarize_p, "solarize_p");
  MEDFM_CHECK_T(ConfigError, brightness >= 0 && contrast >= 0 && saturation >= 0 && hue >= 0 && hue <= 0.5,
                "views: jitter strengths must be >= 0 (hue <= 0.5)");
  range(blur_sigma, "blur_sigma", 0, 1e3);
  MEDFM_CHECK_T(ConfigError, blur_kernel > 0 && blur_kernel % 2 == 1, "views.blur_kernel: ", blur_kernel, " is not odd");
  MEDFM_CHECK_T(ConfigError, hed_sigma >= 0 && hed_sigma < 1 && hed_bias >= 0, "views: HED jitter needs 0 <= sigma < 1, bias >= 0");
}

ViewSpec view_preset(const std::string& name) {
  ViewSpec s;  // natural: DINOv2's DataAugmentationDINO
  s.preset = name;
  if (name == "natural") return s;
  if (name == "pathology") {  // orientation-free tissue, stain variation; colour carries meaning
    s.flip_v = 0.5;
    s.rot90 = true;
    s.brightness = 0.2, s.contrast = 0.2, s.saturation = 0.1, s.hue = 0.02;
    s.grayscale_p = 0.0;
    s.solarize_p = {0, 0, 0};
    s.hed_p = 0.5;
    return s;
  }
  if (name == "radiology") {  // gray values: window shifts (brightness / contrast), no colour
    s.saturation = 0, s.hue = 0;
    s.grayscale_p = 0.0;
    s.solarize_p = {0, 0, 0};
    s.blur_p = {0.5, 0.1, 0.2};
    return s;
  }
  if (name == "ophthalmology") {  // fundus: round field of view, any rotation, mild colour change
    s.flip_v = 0.5;
    s.rot90 = true;
    s.brightness = 0.2, s.contrast = 0.2, s.saturation = 0.1, s.hue = 0.02;
    s.grayscale_p = 0.0;
    s.solarize_p = {0, 0, 0};
    return s;
  }
  throw ConfigError("views.preset: '" + name + "' is not natural, pathology, radiology or ophthalmology");
}

namespace {

at::Tensor color_jitter(at::Tensor x, const ViewSpec& s, Rng& rng) {
  int order[4] = {0, 1, 2, 3};
  for (int i = 3; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  const double b = rng.uniform(std::max(0.0, 1 - s.brightness), 1 + s.brightness);
  const double c = rng.uniform(std::max(0.0, 1 - s.contrast), 1 + s.contrast);
  const double sat = rng.uniform(std::max(0.0, 1 - s.saturation), 1 + s.saturation);
  const double h = rng.uniform(-s.hue, s.hue);
  for (int op : order) {
    if (op == 0 && s.brightness > 0) x = adjust_brightness(x, b);
    if (op == 1 && s.contrast > 0) x = adjust_contrast(x, c);
    if (op == 2 && s.saturation > 0) x = adjust_saturation(x, sat);
    if (op == 3 && s.hue > 0) x = adjust_hue(x, h);
  }
  return x;
}

at::Tensor one_view(const at::Tensor& img, const ViewSpec& s, int size, const std::vector<double>& scale, int kind,
                    Rng& rng) {
  auto box = random_resized_crop_box(img.size(1), img.size(2), scale[0], scale[1], rng);
  auto x = resized_crop(img, box[0], box[1], box[2], box[3], size, s.interpolation);
  if (rng.bernoulli(s.flip_h)) x = x.flip({2});
  if (rng.bernoulli(s.flip_v)) x = x.flip({1});
  if (s.rot90) {
    const int k = static_cast<int>(rng.below(4));
    if (k) x = torch::rot90(x, k, {1, 2});
  }
  if (rng.bernoulli(s.hed_p)) {
    std::array<double, 3> a{}, b{};
    for (auto& v : a) v = rng.uniform(1 - s.hed_sigma, 1 + s.hed_sigma);
    for (auto& v : b) v = rng.uniform(-s.hed_bias, s.hed_bias);
    x = hed_adjust(x, a, b);
  }
  if (rng.bernoulli(s.jitter_p)) x = color_jitter(x, s, rng);
  if (rng.bernoulli(s.grayscale_p)) x = rgb_to_grayscale(x);
  if (rng.bernoulli(s.blur_p[kind])) x = gaussian_blur(x, s.blur_kernel, rng.uniform(s.blur_sigma[0], s.blur_sigma[1]));
  if (rng.bernoulli(s.solarize_p[kind])) x = solarize(x, 128.0 / 255.0);
  return x;
}

}  // namespace

std::vector<at::Tensor> make_views(const at::Tensor& img, const ViewSpec& spec, const std::array<double, 3>& mean,
                                   const std::array<double, 3>& std, Rng& rng) {
  auto rgb = as_rgb(img).to(torch::kFloat32);
  std::vector<at::Tensor> out;
  out.reserve(spec.n_global + spec.n_local);
  for (int v = 0; v < spec.n_global; ++v)
    out.push_back(normalize(one_view(rgb, spec, spec.global_size, spec.global_scale, v == 0 ? 0 : 1, rng), mean, std)
                      .contiguous());
  for (int v = 0; v < spec.n_local; ++v)
    out.push_back(normalize(one_view(rgb, spec, spec.local_size, spec.local_scale, 2, rng), mean, std).contiguous());
  return out;
}

}  // namespace medfm::data
