/* A plugin built against ABI 1.1: its descriptor ends after `command`, and
 * the memory after it (where 1.2 put `flags`) holds garbage. The host must
 * load it and see flags 0: it reads only struct_size bytes. */
#include <moni/plugin_abi.h>
#include <stddef.h>
#include <string.h>

static union {
  moni_plugin_descriptor d;
  unsigned char bytes[sizeof(moni_plugin_descriptor) + 16];
} u;

static moni_instance* create(const moni_host_api* host, const moni_config_node* cfg,
                             moni_error* err) {
  (void)host;
  (void)cfg;
  strcpy(err->message, "minor1: nothing to create");
  return 0;
}
static int write_batch(moni_instance* i, const moni_batch* b, moni_error* err) {
  (void)i;
  (void)b;
  (void)err;
  return MONI_OK;
}
static void destroy(moni_instance* i) { (void)i; }

MONI_ABI_EXPORT const moni_plugin_descriptor* moni_plugin_entry(const moni_host_api* host) {
  (void)host;
  size_t v11 = offsetof(moni_plugin_descriptor, command) + sizeof(u.d.command);
  memset(u.bytes + v11, 0xff, sizeof u.bytes - v11);
  u.d.struct_size = (uint32_t)v11;
  u.d.abi_major = MONI_ABI_MAJOR;
  u.d.abi_minor = 1;
  u.d.name.ptr = "minor1";
  u.d.name.len = 6;
  u.d.version.ptr = "1.1";
  u.d.version.len = 3;
  u.d.kind = MONI_KIND_STORAGE;
  u.d.create = create;
  u.d.write = write_batch;
  u.d.destroy = destroy;
  return &u.d;
}
