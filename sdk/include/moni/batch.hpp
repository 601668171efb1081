// Batch: the owning, reusable builder of what a collector or processor emits,
// and BatchView: read access to a batch received over the ABI.
#pragma once

#include <moni/plugin_abi.h>
#include <moni/sample.hpp>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moni {

/// A label given by reference while building a batch.
struct LabelRef {
  std::string_view name;
  std::string_view value;
};

/// Builds a batch of samples with one arena for all strings, so that a
/// collector that reuses its Batch across cycles allocates nothing per sample
/// once warm. Labels are sorted here; empty-valued labels are dropped (in
/// Prometheus an empty label equals an absent one).
/// Thread-safety: none; one thread at a time.
class Batch {
 public:
  /// Timestamp used by the add() overloads without one (the cycle's time).
  void set_default_timestamp(int64_t ts_ms) { default_ts_ = ts_ms; }
  int64_t default_timestamp() const { return default_ts_; }

  void add(std::string_view metric, std::initializer_list<LabelRef> labels, double value) {
    add(metric, std::span<const LabelRef>(labels.begin(), labels.size()), value, default_ts_);
  }
  void add(std::string_view metric, std::initializer_list<LabelRef> labels, double value,
           int64_t ts_ms) {
    add(metric, std::span<const LabelRef>(labels.begin(), labels.size()), value, ts_ms);
  }
  void add(std::string_view metric, std::span<const LabelRef> labels, double value) {
    add(metric, labels, value, default_ts_);
  }
  /// Adds one sample of `metric` with `labels` (any order, no "__name__").
  void add(std::string_view metric, std::span<const LabelRef> labels, double value,
           int64_t ts_ms) {
    scratch_.clear();
    scratch_.push_back({kMetricNameLabel, metric});
    for (const auto& l : labels)
      if (!l.value.empty()) scratch_.push_back(l);
    std::sort(scratch_.begin(), scratch_.end(),
              [](const LabelRef& a, const LabelRef& b) { return a.name < b.name; });
    // A duplicate name keeps its last value, as a relabel "replace" would.
    auto last = std::unique(scratch_.rbegin(), scratch_.rend(),
                            [](const LabelRef& a, const LabelRef& b) { return a.name == b.name; });
    scratch_.erase(scratch_.begin(), last.base());
    push(scratch_.data(), scratch_.size(), value, ts_ms);
  }
  /// Adds a sample whose labels are already sorted, unique and include
  /// "__name__" (e.g. passed through from another batch).
  void add_sorted(std::span<const LabelRef> sorted_labels, double value, int64_t ts_ms) {
    push(sorted_labels.data(), sorted_labels.size(), value, ts_ms);
  }
  void add_sorted(const moni_label* labels, uint32_t count, double value, int64_t ts_ms) {
    Stored s{static_cast<uint32_t>(labels_.size()), count, value, ts_ms};
    for (uint32_t i = 0; i < count; ++i)
      labels_.push_back({intern(sv(labels[i].name)), intern(sv(labels[i].value))});
    samples_.push_back(s);
  }

  /// Records TYPE/HELP/UNIT of a family; call once per family per batch.
  void describe(std::string_view family, MetricType type, std::string_view help,
                std::string_view unit = {}) {
    meta_.push_back({intern(family), type, intern(help), intern(unit)});
  }

  size_t size() const { return samples_.size(); }
  bool empty() const { return samples_.empty(); }
  /// Forgets the contents, keeps the capacity.
  void clear() {
    arena_.clear();
    labels_.clear();
    samples_.clear();
    meta_.clear();
  }

  /// The ABI view; valid until the batch is next modified.
  const moni_batch& view() {
    label_view_.resize(labels_.size());
    for (size_t i = 0; i < labels_.size(); ++i)
      label_view_[i] = {str(labels_[i].first), str(labels_[i].second)};
    sample_view_.resize(samples_.size());
    for (size_t i = 0; i < samples_.size(); ++i) {
      const auto& s = samples_[i];
      sample_view_[i] = {label_view_.data() + s.first_label, s.label_count, s.value, s.ts};
    }
    meta_view_.resize(meta_.size());
    for (size_t i = 0; i < meta_.size(); ++i)
      meta_view_[i] = {str(meta_[i].family), static_cast<uint32_t>(meta_[i].type),
                       str(meta_[i].help), str(meta_[i].unit)};
    batch_ = {sample_view_.data(), sample_view_.size(), meta_view_.data(), meta_view_.size()};
    return batch_;
  }

  /// Hands the contents to the host now and clears (for collectors that
  /// emit several batches per cycle, e.g. one per scrape target).
  bool emit() {
    if (!emit_fn_) return false;
    if (samples_.empty() && meta_.empty()) return true;
    bool ok = emit_fn_(emit_ctx_, &view()) == MONI_OK;
    clear();
    return ok;
  }
  void set_emitter(moni_emit_fn fn, void* ctx) {
    emit_fn_ = fn;
    emit_ctx_ = ctx;
  }
  /// Makes this batch emit where `other` does, with its default timestamp:
  /// a collector building batches on several threads (one Batch each) during
  /// collect() when Context::concurrent_emit() allows it.
  void share_emitter(const Batch& other) {
    emit_fn_ = other.emit_fn_;
    emit_ctx_ = other.emit_ctx_;
    default_ts_ = other.default_ts_;
  }

 private:
  struct Span {
    uint32_t off, len;
  };
  struct Stored {
    uint32_t first_label, label_count;
    double value;
    int64_t ts;
  };
  struct StoredMeta {
    Span family;
    MetricType type;
    Span help, unit;
  };

  Span intern(std::string_view s) {
    Span sp{static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(s.size())};
    arena_.append(s);
    return sp;
  }
  moni_str str(Span s) const { return {arena_.data() + s.off, s.len}; }
  void push(const LabelRef* l, size_t n, double value, int64_t ts) {
    Stored s{static_cast<uint32_t>(labels_.size()), static_cast<uint32_t>(n), value, ts};
    for (size_t i = 0; i < n; ++i) labels_.push_back({intern(l[i].name), intern(l[i].value)});
    samples_.push_back(s);
  }

  int64_t default_ts_ = 0;
  std::string arena_;
  std::vector<std::pair<Span, Span>> labels_;
  std::vector<Stored> samples_;
  std::vector<StoredMeta> meta_;
  std::vector<LabelRef> scratch_;
  std::vector<moni_label> label_view_;
  std::vector<moni_sample> sample_view_;
  std::vector<moni_metadata> meta_view_;
  moni_batch batch_{};
  moni_emit_fn emit_fn_ = nullptr;
  void* emit_ctx_ = nullptr;
};

/// One sample of a received batch. Thread-safety: a view; valid while the
/// batch is.
class SampleView {
 public:
  explicit SampleView(const moni_sample& s) : s_(&s) {}
  std::string_view name() const { return label(kMetricNameLabel); }
  std::string_view label(std::string_view n) const {
    return find_label(s_->labels, s_->label_count, n);
  }
  std::span<const moni_label> labels() const { return {s_->labels, s_->label_count}; }
  double value() const { return s_->value; }
  int64_t timestamp_ms() const { return s_->timestamp_ms; }
  const moni_sample& raw() const { return *s_; }

 private:
  const moni_sample* s_;
};

/// Read access to a batch received over the ABI. Thread-safety: a view.
class BatchView {
 public:
  explicit BatchView(const moni_batch& b) : b_(&b) {}
  size_t size() const { return b_->sample_count; }
  SampleView operator[](size_t i) const { return SampleView(b_->samples[i]); }
  std::span<const moni_sample> samples() const { return {b_->samples, b_->sample_count}; }
  std::span<const moni_metadata> metadata() const { return {b_->metadata, b_->metadata_count}; }
  const moni_batch& raw() const { return *b_; }

  struct iterator {
    const moni_sample* p;
    SampleView operator*() const { return SampleView(*p); }
    iterator& operator++() { ++p; return *this; }
    bool operator!=(const iterator& o) const { return p != o.p; }
  };
  iterator begin() const { return {b_->samples}; }
  iterator end() const { return {b_->samples + b_->sample_count}; }

 private:
  const moni_batch* b_;
};

}  // namespace moni
