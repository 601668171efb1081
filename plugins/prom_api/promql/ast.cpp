#include "ast.hpp"

#include <array>

namespace moni::promql {

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::Scalar:
      return "scalar";
    case ValueType::Vector:
      return "instant vector";
    case ValueType::Matrix:
      return "range vector";
    case ValueType::String:
      return "string";
    default:
      return "none";
  }
}

const char* op_name(Op op) {
  switch (op) {
    case Op::Add:
      return "+";
    case Op::Sub:
      return "-";
    case Op::Mul:
      return "*";
    case Op::Div:
      return "/";
    case Op::Mod:
      return "%";
    case Op::Pow:
      return "^";
    case Op::Atan2:
      return "atan2";
    case Op::Eql:
      return "==";
    case Op::Neq:
      return "!=";
    case Op::Gtr:
      return ">";
    case Op::Lss:
      return "<";
    case Op::Gte:
      return ">=";
    case Op::Lte:
      return "<=";
    case Op::And:
      return "and";
    case Op::Or:
      return "or";
    case Op::Unless:
      return "unless";
    case Op::Sum:
      return "sum";
    case Op::Avg:
      return "avg";
    case Op::Min:
      return "min";
    case Op::Max:
      return "max";
    case Op::Count:
      return "count";
    case Op::Stddev:
      return "stddev";
    case Op::Stdvar:
      return "stdvar";
    case Op::Topk:
      return "topk";
    case Op::Bottomk:
      return "bottomk";
    case Op::Quantile:
      return "quantile";
    case Op::CountValues:
      return "count_values";
    case Op::Group:
      return "group";
    default:
      return "?";
  }
}

bool is_comparison(Op op) {
  return op == Op::Eql || op == Op::Neq || op == Op::Gtr || op == Op::Lss || op == Op::Gte ||
         op == Op::Lte;
}
bool is_set_op(Op op) { return op == Op::And || op == Op::Or || op == Op::Unless; }

ValueType Expr::type() const {
  switch (kind) {
    case ExprKind::Number:
      return ValueType::Scalar;
    case ExprKind::String:
      return ValueType::String;
    case ExprKind::VectorSelector:
      return ValueType::Vector;
    case ExprKind::MatrixSelector:
    case ExprKind::Subquery:
      return ValueType::Matrix;
    case ExprKind::Paren:
    case ExprKind::Unary:
      return args[0]->type();
    case ExprKind::Binary:
      return args[0]->type() == ValueType::Scalar && args[1]->type() == ValueType::Scalar
                 ? ValueType::Scalar
                 : ValueType::Vector;
    case ExprKind::Aggregate:
      return ValueType::Vector;
    case ExprKind::Call:
      return func->return_type;
  }
  return ValueType::None;
}

namespace {
constexpr ValueType S = ValueType::Scalar, V = ValueType::Vector, M = ValueType::Matrix,
                    Str = ValueType::String;
const FunctionInfo kFunctions[] = {
    {"abs", {V}, 0, V},
    {"absent", {V}, 0, V},
    {"absent_over_time", {M}, 0, V},
    {"acos", {V}, 0, V},
    {"acosh", {V}, 0, V},
    {"asin", {V}, 0, V},
    {"asinh", {V}, 0, V},
    {"atan", {V}, 0, V},
    {"atanh", {V}, 0, V},
    {"avg_over_time", {M}, 0, V},
    {"ceil", {V}, 0, V},
    {"changes", {M}, 0, V},
    {"clamp", {V, S, S}, 0, V},
    {"clamp_max", {V, S}, 0, V},
    {"clamp_min", {V, S}, 0, V},
    {"cos", {V}, 0, V},
    {"cosh", {V}, 0, V},
    {"count_over_time", {M}, 0, V},
    {"days_in_month", {V}, 1, V},
    {"day_of_month", {V}, 1, V},
    {"day_of_week", {V}, 1, V},
    {"day_of_year", {V}, 1, V},
    {"deg", {V}, 0, V},
    {"delta", {M}, 0, V},
    {"deriv", {M}, 0, V},
    {"exp", {V}, 0, V},
    {"floor", {V}, 0, V},
    {"histogram_quantile", {S, V}, 0, V},
    {"holt_winters", {M, S, S}, 0, V},
    {"hour", {V}, 1, V},
    {"idelta", {M}, 0, V},
    {"increase", {M}, 0, V},
    {"irate", {M}, 0, V},
    {"label_replace", {V, Str, Str, Str, Str}, 0, V},
    {"label_join", {V, Str, Str, Str}, -1, V},
    {"last_over_time", {M}, 0, V},
    {"ln", {V}, 0, V},
    {"log10", {V}, 0, V},
    {"log2", {V}, 0, V},
    {"max_over_time", {M}, 0, V},
    {"min_over_time", {M}, 0, V},
    {"minute", {V}, 1, V},
    {"month", {V}, 1, V},
    {"pi", {}, 0, S},
    {"predict_linear", {M, S}, 0, V},
    {"present_over_time", {M}, 0, V},
    {"quantile_over_time", {S, M}, 0, V},
    {"rad", {V}, 0, V},
    {"rate", {M}, 0, V},
    {"resets", {M}, 0, V},
    {"round", {V, S}, 1, V},
    {"scalar", {V}, 0, S},
    {"sgn", {V}, 0, V},
    {"sin", {V}, 0, V},
    {"sinh", {V}, 0, V},
    {"sort", {V}, 0, V},
    {"sort_desc", {V}, 0, V},
    {"sqrt", {V}, 0, V},
    {"stddev_over_time", {M}, 0, V},
    {"stdvar_over_time", {M}, 0, V},
    {"sum_over_time", {M}, 0, V},
    {"tan", {V}, 0, V},
    {"tanh", {V}, 0, V},
    {"time", {}, 0, S},
    {"timestamp", {V}, 0, V},
    {"vector", {S}, 0, V},
    {"year", {V}, 1, V},
};
}  // namespace

const FunctionInfo* find_function(std::string_view name) {
  for (const auto& f : kFunctions)
    if (name == f.name) return &f;
  return nullptr;
}

}  // namespace moni::promql
