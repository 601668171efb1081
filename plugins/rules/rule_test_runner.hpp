// `moni rules test FILE...`: unit tests for rules in promtool's test file
// format (rule_files, evaluation_interval, tests with input_series,
// alert_rule_test and promql_expr_test), run by moni's own rule engine.
#pragma once

#include <moni/result.hpp>
#include <ostream>
#include <string>

namespace moni::rules {

/// Runs the tests of one test file, printing promtool-style results to
/// `out`. Returns whether every test passed; an error when the file or its
/// rule files cannot be read.
Result<bool> run_rule_tests(const std::string& file, std::ostream& out);

}  // namespace moni::rules
