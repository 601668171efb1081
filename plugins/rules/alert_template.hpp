// Alert label and annotation templates: the subset of Go's text/template that
// Prometheus rule files use ({{ $labels.x }}, {{ $value | humanize }},
// {{ printf "%.2f" $value }}, {{ if ... }}{{ else }}{{ end }}), with
// Prometheus's template functions. Errors are values, never exceptions.
#pragma once

#include <memory>
#include <moni/result.hpp>
#include <moni/sample.hpp>
#include <string>
#include <string_view>

namespace moni::rules {

/// What a template sees: .Labels/$labels, .ExternalLabels/$externalLabels,
/// .ExternalURL/$externalURL and .Value/$value.
struct TemplateData {
  const Labels* labels = nullptr;  // without __name__ as Prometheus passes them
  const Labels* external_labels = nullptr;
  std::string_view external_url;
  double value = 0;
};

/// A parsed template. Thread-safety: immutable after parse; expand() may run
/// concurrently.
class AlertTemplate {
 public:
  /// Parses `text`; the error names line:column and what is wrong.
  static Result<AlertTemplate> parse(std::string_view text);
  /// Expands the template; an error as Go's template would report it.
  Result<std::string> expand(const TemplateData& data) const;
  /// True when the text has no actions (expand returns it as is).
  bool is_literal() const;

  struct Node;

 private:
  std::shared_ptr<const Node> root_;
};

/// Prometheus's template functions, exposed for tests.
std::string humanize(double v);
std::string humanize1024(double v);
std::string humanize_duration(double seconds);
std::string humanize_percentage(double v);
/// Go's fmt %v of a float64: strconv's shortest 'g' (an exponent below 1e-4
/// and from 1e6 on: 1e+06, 1.234567e+06, 123456).
std::string go_float_v(double v);

/// Go's strconv.Quote (%q) of `s` for ASCII: \" and \\, letter escapes,
/// \xNN for other control bytes; bytes >= 0x80 as they are.
std::string go_quoted(std::string_view s);

}  // namespace moni::rules
