/* A descriptor whose struct_size is smaller than ABI 1.0's: refused. */
#include <moni/plugin_abi.h>

static moni_plugin_descriptor d;

MONI_ABI_EXPORT const moni_plugin_descriptor* moni_plugin_entry(const moni_host_api* host) {
  (void)host;
  d.struct_size = 24;
  d.abi_major = MONI_ABI_MAJOR;
  d.abi_minor = 0;
  return &d;
}
