// The PromQL abstract syntax tree. One node struct with a kind tag keeps the
// parser and evaluator small; byte positions point into the query text.
#pragma once

#include <cstdint>
#include <memory>
#include <moni/storage.hpp>
#include <optional>
#include <string>
#include <vector>

#include "value.hpp"

namespace moni::promql {

enum class ExprKind {
  Number,
  String,
  VectorSelector,
  MatrixSelector,
  Subquery,
  Paren,
  Unary,
  Binary,
  Aggregate,
  Call
};

enum class Op {
  None,
  Add,
  Sub,
  Mul,
  Div,
  Mod,
  Pow,
  Atan2,
  Eql,
  Neq,
  Gtr,
  Lss,
  Gte,
  Lte,
  And,
  Or,
  Unless,
  // aggregations
  Sum,
  Avg,
  Min,
  Max,
  Count,
  Stddev,
  Stdvar,
  Topk,
  Bottomk,
  Quantile,
  CountValues,
  Group
};
const char* op_name(Op op);
bool is_comparison(Op op);
bool is_set_op(Op op);

enum class Card { OneToOne, ManyToOne, OneToMany, ManyToMany };

struct VectorMatching {
  Card card = Card::OneToOne;
  bool on = false;  // on(...) rather than ignoring(...)
  std::vector<std::string> labels;
  std::vector<std::string> include;  // group_left/right(...) labels
};

enum class AtKind { None, Fixed, Start, End };

struct FunctionInfo;

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::Number;
  size_t pos = 0, end = 0;  // byte range in the query
  // Number / String
  double number = 0;
  std::string str;
  // VectorSelector
  std::string metric_name;
  std::vector<Matcher> matchers;
  // VectorSelector and Subquery
  int64_t offset_ms = 0;
  AtKind at = AtKind::None;
  int64_t at_ms = 0;
  // MatrixSelector / Subquery
  int64_t range_ms = 0;
  int64_t step_ms = 0;  // 0: the default subquery step
  // Unary / Binary / Aggregate
  Op op = Op::None;
  bool return_bool = false;
  std::optional<VectorMatching> matching;
  std::vector<std::string> grouping;
  bool without = false;
  ExprPtr param;  // aggregation parameter
  // Call
  const FunctionInfo* func = nullptr;
  // Children: Unary/Paren/MatrixSelector/Subquery: [0]; Binary: [0],[1];
  // Aggregate: [0]; Call: the arguments.
  std::vector<ExprPtr> args;
  // Levels of nodes from here down (1: a leaf); the parser bounds it so
  // that evaluating, printing and destroying the tree cannot run out of stack.
  uint32_t height = 1;

  ValueType type() const;

  // The time a selector or subquery evaluated at `ts` reads at (before its
  // offset): `@` pins it, `@ start()` / `@ end()` to the query's range.
  int64_t at_time(int64_t ts, int64_t start, int64_t end) const {
    switch (at) {
      case AtKind::Fixed:
        return at_ms;
      case AtKind::Start:
        return start;
      case AtKind::End:
        return end;
      default:
        return ts;
    }
  }
};

struct FunctionInfo {
  const char* name;
  std::vector<ValueType> arg_types;
  int variadic;  // 0: fixed; >0: up to that many optional trailing args; -1: unlimited
  ValueType return_type;
};
const FunctionInfo* find_function(std::string_view name);

}  // namespace moni::promql
