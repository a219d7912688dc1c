// Error hierarchy and checks. Library code throws; only cli/ catches.
//   MEDFM_CHECK(cond, parts...)  validates user input; throws Error (or a subclass via MEDFM_CHECK_T).
//   MEDFM_ASSERT(cond, parts...) guards programmer invariants; always on, never reachable from input.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace medfm {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
class IoError : public Error { using Error::Error; };         // file missing, unreadable, short read
class FormatError : public Error { using Error::Error; };     // bytes that do not follow their format
class ConfigError : public Error { using Error::Error; };     // bad option, key or value
class NotImplemented : public Error { using Error::Error; };  // valid request medfm cannot serve yet

namespace detail {
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace medfm

#define MEDFM_CHECK_T(ErrType, cond, ...)                              \
  do {                                                                 \
    if (!(cond)) throw ErrType(::medfm::detail::concat(__VA_ARGS__));  \
  } while (0)
#define MEDFM_CHECK(cond, ...) MEDFM_CHECK_T(::medfm::Error, cond, __VA_ARGS__)
#define MEDFM_ASSERT(cond, ...)                                                            \
  do {                                                                                     \
    if (!(cond))                                                                           \
      ::medfm::detail::assert_fail(#cond, __FILE__, __LINE__,                              \
                                   ::medfm::detail::concat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)
