#include "medfm/core/hash.h"

#include <openssl/evp.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "medfm/core/error.h"

namespace medfm {
namespace {

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

MdCtx new_ctx() {
  MdCtx ctx(EVP_MD_CTX_new());
  MEDFM_ASSERT(ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1, "EVP init");
  return ctx;
}

std::string finish(EVP_MD_CTX* ctx) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  MEDFM_ASSERT(EVP_DigestFinal_ex(ctx, md, &len) == 1, "EVP final");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

}  // namespace

std::string sha256_bytes(const void* data, size_t n) {
  auto ctx = new_ctx();
  MEDFM_ASSERT(EVP_DigestUpdate(ctx.get(), data, n) == 1, "EVP update");
  return finish(ctx.get());
}

std::string sha256_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  MEDFM_CHECK_T(IoError, f != nullptr, "hash: cannot open '", path, "'");
  auto ctx = new_ctx();
  std::vector<unsigned char> buf(1 << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) {
    MEDFM_ASSERT(EVP_DigestUpdate(ctx.get(), buf.data(), n) == 1, "EVP update");
  }
  MEDFM_CHECK_T(IoError, !std::ferror(f.get()), "hash: read error in '", path, "'");
  return finish(ctx.get());
}

}  // namespace medfm
