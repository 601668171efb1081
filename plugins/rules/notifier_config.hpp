// The rules plugin's Alertmanager options, read from its instance table:
//   alertmanagers = ["http://127.0.0.1:9093"]        # shorthand, defaults below
//   [[collectors.rules.alertmanager]]                 # or one table each
//   url = "http://127.0.0.1:9093"   # required; http or https
//   timeout = "10s"                 path_prefix = "/"
//   username = "..."  password = "..." | password_file = "/etc/moni/am.pass"
//   tls_ca_file, tls_cert_file, tls_key_file, tls_server_name, tls_insecure_skip_verify
//   notification_queue_capacity = 10000
//   external_url = "http://moni.example:9095"        # base of generatorURL and
//                                                     # $externalURL (read here only)
#pragma once

#include <moni/config.hpp>

#include "notifier.hpp"

namespace moni::rules {

/// Reads the options above from `cfg` (the instance's root reader). Errors
/// are recorded in `cfg` with their positions; the caller's cfg.finish()
/// reports them together with its own and rejects unknown keys.
NotifierOptions parse_notifier_options(ConfigReader& cfg);

}  // namespace moni::rules
