// PromQL values: points, samples, series, vectors and matrices. Label sets
// are shared (immutable) so selectors hand them out per step without copies.
#pragma once

#include <cstdint>
#include <memory>
#include <moni/sample.hpp>
#include <string>
#include <vector>

namespace moni::promql {

using LabelsPtr = std::shared_ptr<const Labels>;

struct Point {
  int64_t t = 0;
  double v = 0;
};

/// One element of an instant vector. `t` is the sample's own timestamp
/// (timestamp() needs it); results carry the evaluation time.
struct Sample {
  LabelsPtr labels;
  double v = 0;
  int64_t t = 0;
};
using Vector = std::vector<Sample>;

struct Series {
  LabelsPtr labels;
  std::vector<Point> points;
};
using Matrix = std::vector<Series>;

enum class ValueType { None, Scalar, Vector, Matrix, String };
const char* value_type_name(ValueType t);

/// The result of evaluating an expression at one step (or a whole query).
/// Thread-safety: a value type.
struct Value {
  ValueType type = ValueType::None;
  double scalar = 0;
  std::string str;
  Vector vec;
  Matrix mat;
};

/// Label helpers over sorted label sets.
std::string_view get_label(const Labels& ls, std::string_view name);
Labels drop_metric_name(const Labels& ls);
bool has_label(const Labels& ls, std::string_view name);
/// Sets (or, with an empty value, deletes) a label, keeping the set sorted.
void set_label(Labels& ls, std::string_view name, std::string_view value);
/// A compact key for hashing a label set (names and values, separated).
std::string labels_key(const Labels& ls);
std::string labels_string(const Labels& ls);  // {a="b", c="d"}
bool valid_label_name(std::string_view s);

}  // namespace moni::promql
