#include "medfm/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "medfm/core/error.h"

namespace medfm {

AtomicFile::AtomicFile(std::string final_path)
    : final_(std::move(final_path)), temp_(final_ + ".tmp." + std::to_string(::getpid())) {}

AtomicFile::~AtomicFile() {
  if (!committed_) std::remove(temp_.c_str());
}

void AtomicFile::commit() {
  int fd = ::open(temp_.c_str(), O_RDONLY);
  MEDFM_CHECK_T(IoError, fd >= 0, "output: temporary file '", temp_, "' is missing: ", std::strerror(errno));
  ::fsync(fd);
  ::close(fd);
  MEDFM_CHECK_T(IoError, std::rename(temp_.c_str(), final_.c_str()) == 0, "output: cannot rename '", temp_,
                "' to '", final_, "': ", std::strerror(errno));
  committed_ = true;
}

void write_text_atomic(const std::string& path, const std::string& text) {
  AtomicFile f(path);
  {
    std::ofstream o(f.temp_path(), std::ios::binary);
    o << text;
    MEDFM_CHECK_T(IoError, o.good(), "output: cannot write ", path);
  }
  f.commit();
}

}  // namespace medfm
