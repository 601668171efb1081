// moni::Result<T>: errors as values at boundaries. A small type of our own
// because C++20 has no std::expected and Boost.Outcome would leak Boost into
// every out-of-tree plugin's build.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace moni {

/// An error message with its context ("component: what failed: why").
/// Thread-safety: a value type.
struct Error {
  std::string message;
};

/// Either a T or an Error. Check with `ok()` / `operator bool` before `value()`.
/// Thread-safety: a value type.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

/// Success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), failed_(true) {}

  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { assert(failed_); return err_; }

 private:
  Error err_;
  bool failed_ = false;
};

inline Error make_error(std::string message) { return Error{std::move(message)}; }

}  // namespace moni
