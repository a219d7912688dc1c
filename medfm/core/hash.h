// SHA-256 (OpenSSL EVP) for provenance: weights, inputs and configs are recorded by hash.
#pragma once
#include <cstddef>
#include <string>

namespace medfm {

// Lower-case hex digest of a file's bytes, streamed in 1 MiB chunks. Throws IoError.
std::string sha256_file(const std::string& path);
// Lower-case hex digest of a buffer.
std::string sha256_bytes(const void* data, size_t n);

}  // namespace medfm
