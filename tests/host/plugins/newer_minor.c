/* A plugin built against a newer minor (1.7) whose descriptor has extra
 * fields: loaded, and the host reads only the fields it knows (1.2's flags
 * among them). */
#include <moni/plugin_abi.h>
#include <string.h>

struct newer_descriptor {
  moni_plugin_descriptor v1;
  void* future_field[4];
};

static struct newer_descriptor d;

static moni_instance* create(const moni_host_api* host, const moni_config_node* cfg,
                             moni_error* err) {
  (void)host;
  (void)cfg;
  strcpy(err->message, "newer: nothing to create");
  return 0;
}
static int collect(moni_instance* i, int64_t now, moni_emit_fn emit, void* ctx, moni_error* err) {
  (void)i;
  (void)now;
  (void)emit;
  (void)ctx;
  (void)err;
  return MONI_OK;
}
static void destroy(moni_instance* i) { (void)i; }

MONI_ABI_EXPORT const moni_plugin_descriptor* moni_plugin_entry(const moni_host_api* host) {
  (void)host;
  d.v1.struct_size = sizeof d;
  d.v1.abi_major = MONI_ABI_MAJOR;
  d.v1.abi_minor = 7;
  d.v1.name.ptr = "newer";
  d.v1.name.len = 5;
  d.v1.version.ptr = "9.9";
  d.v1.version.len = 3;
  d.v1.kind = MONI_KIND_COLLECTOR;
  d.v1.flags = MONI_PLUGIN_CONCURRENT_WRITE;
  d.v1.create = create;
  d.v1.collect = collect;
  d.v1.destroy = destroy;
  d.future_field[0] = (void*)&d;
  return &d.v1;
}
