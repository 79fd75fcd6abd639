// Errors. Library code reports every failure by throwing bimamba::Error (or a subclass); it never exits or
// prints. Messages name what is wrong (the file, tensor, shape or value), and BIMAMBA_CHECK adds the
// failing condition and file:line.
//
//   BIMAMBA_CHECK(x.size(0) == w.size(1), "rms_norm: x has ", x.size(1), " columns, weight ", w.size(0));
//   BIMAMBA_FAIL("safetensors ", path, ": unknown dtype '", name, "'");
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace bimamba {

// Base of every exception the library throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file (checkpoint, tokenizer, config, token file) is malformed or does not match what was asked.
class FormatError : public Error {
 public:
  using Error::Error;
};

// A precondition on shapes or arguments does not hold.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// The numbers went bad: NaN or Inf where a finite value is required.
class NumericError : public Error {
 public:
  using Error::Error;
};

namespace detail {

template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

[[noreturn]] inline void throw_check_failure(const char* condition, const char* file, int line,
                                             const std::string& message) {
  throw InvalidArgument(concat(message, " [", condition,
                               " at ", file, ":", line, "]"));
}

}  // namespace detail
}  // namespace bimamba

// Throws bimamba::InvalidArgument with the message (one or more streamable pieces, required), the
// condition and file:line.
#define BIMAMBA_CHECK(condition, ...)                                                                       \
  do {                                                                                                      \
    if (!(condition))                                                                                       \
      ::bimamba::detail::throw_check_failure(#condition, __FILE__, __LINE__,                                \
                                             ::bimamba::detail::concat(__VA_ARGS__));                       \
  } while (0)

// Throws an exception of the given type with the concatenated message.
#define BIMAMBA_THROW(ExceptionType, ...) throw ExceptionType(::bimamba::detail::concat(__VA_ARGS__))

// Throws bimamba::Error with the concatenated message.
#define BIMAMBA_FAIL(...) BIMAMBA_THROW(::bimamba::Error, __VA_ARGS__)
