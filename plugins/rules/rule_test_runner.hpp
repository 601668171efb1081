// `moni rules test FILE...`: unit tests for rules in promtool's test file
// format (rule_files, evaluation_interval, tests with input_series,
// alert_rule_test and promql_expr_test), run by moni's own rule engine.
#pragma once

#include <moni/result.hpp>
#include <ostream>
#include <string>

namespace moni::rules {

/// Runs the tests of one test file, printing promtool-style results to
/// `out` ("Unit Testing:  FILE", then "  SUCCESS" or "  FAILED:" with the
/// failing cases) and warnings to `err` (a rule_files pattern that matches
/// nothing, a file without test cases: both pass, as with promtool). Returns
/// whether every test passed; an error when the file or its rule files
/// cannot be read (the caller prints it after "  FAILED:", as promtool).
Result<bool> run_rule_tests(const std::string& file, std::ostream& out, std::ostream& err);
inline Result<bool> run_rule_tests(const std::string& file, std::ostream& out) {
  return run_rule_tests(file, out, out);
}

}  // namespace moni::rules
