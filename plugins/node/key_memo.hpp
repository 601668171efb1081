// What was derived from a kernel file's keys (a field filter's verdict, the
// metric name and HELP text built from the key), remembered by position:
// procfs files such as /proc/vmstat, /proc/meminfo and /proc/net/snmp6 list
// the same keys in the same order every cycle, so a warm cycle compares each
// key with the one seen at its position instead of building strings and
// running the filter again.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace moni::node {

/// `T` is what is derived from one key. Thread-safety: none.
template <class T>
class KeyMemo {
 public:
  /// Starts a pass over the file from its first key.
  void rewind() { pos_ = 0; }
  /// The entry of `key` at the next position; `make(T&, key)` fills it when
  /// the key differs from the one seen there last time (first pass, or the
  /// kernel's list changed).
  template <class Make>
  T& next(std::string_view key, Make&& make) {
    if (pos_ == entries_.size()) entries_.emplace_back();
    Entry& e = entries_[pos_++];
    if (!e.valid || e.key != key) {
      e.key.assign(key);
      e.valid = true;
      make(e.value, key);
    }
    return e.value;
  }

 private:
  struct Entry {
    std::string key;
    T value{};
    bool valid = false;
  };
  std::vector<Entry> entries_;
  size_t pos_ = 0;
};

}  // namespace moni::node
