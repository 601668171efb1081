// Query-string escaping as Go's url.QueryEscape does it, for the template
// function `urlquery` and the alerts' generatorURL.
#pragma once

#include <string>
#include <string_view>

namespace moni::rules {

/// Go's url.QueryEscape: letters, digits and -_.~ stay, space becomes '+',
/// every other byte %XX (upper-case hex).
std::string url_query_escape(std::string_view s);

/// Prometheus's generatorURL: <external_url>/graph?g0.expr=<expr>&g0.tab=1
/// (trailing slashes of external_url dropped).
std::string generator_url(std::string_view external_url, std::string_view expr);

}  // namespace moni::rules
