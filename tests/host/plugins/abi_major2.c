/* A plugin of a future ABI major: the host must refuse it, naming both versions. */
#include <moni/plugin_abi.h>

static moni_plugin_descriptor d;

MONI_ABI_EXPORT const moni_plugin_descriptor* moni_plugin_entry(const moni_host_api* host) {
  (void)host;
  d.struct_size = sizeof d + 64;
  d.abi_major = MONI_ABI_MAJOR + 1;
  d.abi_minor = 3;
  d.name.ptr = "future";
  d.name.len = 6;
  d.kind = MONI_KIND_COLLECTOR;
  return &d;
}
