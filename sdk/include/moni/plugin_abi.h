/*
 * moni plugin ABI: the only contract between the moni host and a plugin
 * shared object. Plain C so that plugins built with another compiler or
 * standard library keep loading. C++ authors use <moni/sdk.hpp> instead.
 *
 * Versioning: a plugin and a host talk only when MONI_ABI_MAJOR matches.
 * A minor version appends fields to the end of the structs below; each
 * struct starts with `struct_size`, and a reader touches a field only when
 * struct_size says it is present.
 *
 * Ownership: every pointer handed across is borrowed for the duration of
 * the call unless stated otherwise. Strings are {ptr,len}, not
 * NUL-terminated.
 */
#ifndef MONI_PLUGIN_ABI_H
#define MONI_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MONI_ABI_MAJOR 1
#define MONI_ABI_MINOR 2

/* The one symbol every plugin exports. */
#define MONI_PLUGIN_ENTRY_SYMBOL "moni_plugin_entry"

#if defined(__GNUC__)
#define MONI_ABI_EXPORT __attribute__((visibility("default")))
#else
#define MONI_ABI_EXPORT
#endif

/* ---------------------------------------------------------------- basics */

typedef struct moni_str {
  const char* ptr;
  size_t len;
} moni_str;

/* A plugin reports failure by filling this; the host copies the message. */
typedef struct moni_error {
  char message[1024];
} moni_error;

/* Return codes of every fallible ABI function. */
enum { MONI_OK = 0, MONI_ERR = -1 };

typedef enum moni_log_level {
  MONI_LOG_DEBUG = 0,
  MONI_LOG_INFO = 1,
  MONI_LOG_WARN = 2,
  MONI_LOG_ERROR = 3
} moni_log_level;

/* ----------------------------------------------------------- sample model */

typedef struct moni_label {
  moni_str name;
  moni_str value;
} moni_label;

/*
 * One sample of one series. `labels` are sorted by name, unique, and
 * include "__name__" (the metric name), as in Prometheus.
 * `value` may be NaN or +-Inf; the Prometheus staleness marker is the NaN
 * with bit pattern MONI_STALE_NAN_BITS and is distinct from other NaNs.
 */
typedef struct moni_sample {
  const moni_label* labels;
  uint32_t label_count;
  double value;
  int64_t timestamp_ms;
} moni_sample;

#define MONI_STALE_NAN_BITS 0x7ff0000000000002ULL

typedef enum moni_metric_type {
  MONI_METRIC_UNKNOWN = 0,
  MONI_METRIC_COUNTER = 1,
  MONI_METRIC_GAUGE = 2,
  MONI_METRIC_HISTOGRAM = 3,
  MONI_METRIC_SUMMARY = 4,
  MONI_METRIC_INFO = 5,
  MONI_METRIC_STATESET = 6,
  MONI_METRIC_GAUGE_HISTOGRAM = 7
} moni_metric_type;

/* TYPE/HELP/UNIT of one metric family (the metric name without suffixes
 * such as _bucket/_sum/_count for histograms and summaries). */
typedef struct moni_metadata {
  moni_str family;
  uint32_t type; /* moni_metric_type */
  moni_str help;
  moni_str unit;
} moni_metadata;

/* What flows through a pipeline: a batch of samples plus family metadata. */
typedef struct moni_batch {
  const moni_sample* samples;
  size_t sample_count;
  const moni_metadata* metadata;
  size_t metadata_count;
} moni_batch;

/* A sink for batches; the callee copies what it keeps. */
typedef int (*moni_emit_fn)(void* emit_ctx, const moni_batch* batch);

/* ------------------------------------------------------------ config view */

/* A read-only node of the plugin instance's TOML table, owned by the host
 * and valid until the instance is destroyed. */
typedef struct moni_config_node moni_config_node;

typedef enum moni_config_type {
  MONI_CFG_NONE = 0,
  MONI_CFG_TABLE = 1,
  MONI_CFG_ARRAY = 2,
  MONI_CFG_STRING = 3,
  MONI_CFG_INTEGER = 4,
  MONI_CFG_FLOAT = 5,
  MONI_CFG_BOOLEAN = 6,
  MONI_CFG_DATETIME = 7 /* dates and times; read them with as_string */
} moni_config_type;

typedef struct moni_source_pos {
  moni_str file;
  uint32_t line;   /* 1-based; 0 when unknown */
  uint32_t column; /* 1-based; 0 when unknown */
} moni_source_pos;

typedef struct moni_config_api {
  uint32_t struct_size;
  uint32_t (*type)(const moni_config_node* node); /* moni_config_type */
  /* Table lookup; NULL when absent. */
  const moni_config_node* (*get)(const moni_config_node* table, moni_str key);
  /* Entry count of a table or array, 0 otherwise. */
  size_t (*size)(const moni_config_node* node);
  /* i-th entry of a table (key returned through key_out) or array. */
  const moni_config_node* (*at)(const moni_config_node* node, size_t i, moni_str* key_out);
  moni_str (*as_string)(const moni_config_node* node);
  int64_t (*as_integer)(const moni_config_node* node);
  double (*as_float)(const moni_config_node* node); /* integers convert */
  int (*as_boolean)(const moni_config_node* node);
  moni_source_pos (*position)(const moni_config_node* node);
} moni_config_api;

/* ------------------------------------------------------------------ HTTP */

typedef struct moni_http_request {
  moni_str method;
  moni_str target; /* path plus "?query" as received */
  moni_str path;   /* percent-decoded path without the query */
  moni_str query;  /* raw query string without '?' */
  const moni_label* headers; /* names lower-cased */
  size_t header_count;
  moni_str body;
  moni_str remote_addr;
} moni_http_request;

typedef struct moni_http_response moni_http_response; /* host-owned */

/* Handlers run on a host worker thread, possibly concurrently with each
 * other and with the instance's collect/process/write calls. */
typedef void (*moni_http_handler_fn)(void* user, const moni_http_request* req,
                                     moni_http_response* resp);

/* --------------------------------------------------------- storage query */

typedef enum moni_match_type {
  MONI_MATCH_EQUAL = 0,
  MONI_MATCH_NOT_EQUAL = 1,
  MONI_MATCH_REGEX = 2,     /* fully anchored RE2 syntax */
  MONI_MATCH_NOT_REGEX = 3
} moni_match_type;

typedef struct moni_matcher {
  uint32_t type; /* moni_match_type */
  moni_str name;
  moni_str value;
} moni_matcher;

/* One series of a selection: its labels and its samples in [mint, maxt],
 * ascending by time. Valid until the next cursor call. */
typedef struct moni_series_view {
  const moni_label* labels;
  uint32_t label_count;
  const int64_t* timestamps_ms;
  const double* values;
  size_t sample_count;
} moni_series_view;

typedef struct moni_series_cursor moni_series_cursor; /* storage-owned */

typedef int (*moni_str_fn)(void* user, moni_str s);
typedef int (*moni_metadata_fn)(void* user, const moni_metadata* m);

/* The read side of a storage plugin. Every function may be called from any
 * thread, concurrently with appends. */
typedef struct moni_storage_reader {
  uint32_t struct_size;
  void* self;
  /* Series matching all matchers with at least one sample in [mint,maxt].
   * With samples == 0 only labels are produced (sample_count 0). */
  int (*select)(void* self, const moni_matcher* matchers, size_t matcher_count,
                int64_t mint_ms, int64_t maxt_ms, int samples, moni_series_cursor** out,
                moni_error* err);
  /* 1: *out holds the next series; 0: end; MONI_ERR: error. */
  int (*next)(moni_series_cursor* cursor, moni_series_view* out, moni_error* err);
  void (*close)(moni_series_cursor* cursor);
  /* Label names (or values of `name`) of matching series, sorted, unique. */
  int (*label_names)(void* self, const moni_matcher* matchers, size_t matcher_count,
                     int64_t mint_ms, int64_t maxt_ms, moni_str_fn fn, void* user,
                     moni_error* err);
  int (*label_values)(void* self, moni_str name, const moni_matcher* matchers,
                      size_t matcher_count, int64_t mint_ms, int64_t maxt_ms, moni_str_fn fn,
                      void* user, moni_error* err);
  /* Metadata of families; empty `family` lists all. */
  int (*metadata)(void* self, moni_str family, moni_metadata_fn fn, void* user,
                  moni_error* err);
} moni_storage_reader;

/* ------------------------------------------------------------- host API */

/* What the host offers a plugin instance. `ctx` identifies the instance and
 * is passed back on every call. */
typedef struct moni_host_api {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;
  void* ctx;
  moni_str instance_name;
  moni_str data_dir; /* the host's data directory */
  const moni_config_api* config;

  void (*log)(void* ctx, uint32_t level, moni_str message);

  /* Registers a handler for GET/POST/... on `path` (exact match, or a
   * prefix when it ends in '/'). Fails when another instance owns it. */
  int (*http_route)(void* ctx, moni_str path, moni_http_handler_fn fn, void* user,
                    moni_error* err);
  void (*http_status)(moni_http_response* resp, uint32_t status);
  void (*http_header)(moni_http_response* resp, moni_str name, moni_str value);
  void (*http_body)(moni_http_response* resp, moni_str chunk); /* appends */

  /* The reader of a storage instance by name; an empty name picks the only
   * storage instance configured. NULL when there is none. Valid until the
   * calling instance is stopped. */
  const moni_storage_reader* (*storage)(void* ctx, moni_str storage_instance);

  /* Wall clock in ms since the epoch, as the host sees it. */
  int64_t (*now_ms)(void* ctx);

  /* ---- ABI 1.1: check struct_size (MONI_HOST_HAS) before calling these. */

  /* Like http_route, but a default: it serves `path` only while no instance
   * registers the same path with http_route (e.g. an empty rule list that a
   * rules plugin replaces). A second fallback for a path is ignored. */
  int (*http_route_fallback)(void* ctx, moni_str path, moni_http_handler_fn fn, void* user,
                             moni_error* err);
  /* Runs one collection cycle of every pipeline the calling instance is a
   * sink of, and returns once those batches were written to it, or fails
   * after timeout_ms. For outputs that collect on scrape; call it from an
   * HTTP handler, never from write(). */
  int (*collect_now)(void* ctx, int64_t timeout_ms, moni_error* err);

  /* ---- ABI 1.2: check struct_size (MONI_HOST_HAS) before calling these. */

  /* Calls fn once per listener of the host's HTTP server with its URL,
   * "scheme://host:port" ("http" or "https"; the bound port; an IPv6 host in
   * brackets; the host as configured, so 0.0.0.0 for a wildcard), e.g. for
   * a plugin that links to the host's own API. Returns the number of URLs
   * (0 when the host serves no HTTP, e.g. offline commands). From start()
   * on; the address and port change only on restart, the scheme also when a
   * reload turns TLS on or off. */
  int (*listen_urls)(void* ctx, moni_str_fn fn, void* user);
} moni_host_api;

/* Whether a host API struct has member `field` (added in a later minor). */
#define MONI_HOST_HAS(api, field) \
  ((api)->struct_size >= offsetof(moni_host_api, field) + sizeof((api)->field))

/* --------------------------------------------------------- plugin entry */

typedef enum moni_plugin_kind {
  MONI_KIND_COLLECTOR = 1,
  MONI_KIND_PROCESSOR = 2,
  MONI_KIND_STORAGE = 3,
  MONI_KIND_OUTPUT = 4
} moni_plugin_kind;

typedef struct moni_instance moni_instance; /* plugin-owned */

/* Descriptor flags (ABI 1.2, moni_plugin_descriptor.flags). */
/* write() may be called from several threads at once (on different batches). */
#define MONI_PLUGIN_CONCURRENT_WRITE (1u << 0)
/* process() may be called from several threads at once (on different batches). */
#define MONI_PLUGIN_CONCURRENT_PROCESS (1u << 1)

/*
 * Lifecycle: create (parse and validate config, no side effects: it also
 * runs for `moni check-config`) -> start (open files, bind routes) ->
 * collect/process/write any number of times -> stop (flush) -> destroy.
 * The host never runs two of collect/process/write/flush on one instance at
 * once, with one exception: write() of an instance flagged
 * MONI_PLUGIN_CONCURRENT_WRITE (process() with MONI_PLUGIN_CONCURRENT_PROCESS)
 * may run on several threads at once, though never concurrently with its
 * start/flush/stop/destroy (those wait for calls in flight). HTTP handlers
 * and storage readers may run concurrently with all of them.
 * Optional functions are NULL.
 *
 * Concurrent emit (ABI 1.2): during collect() a collector may call `emit`
 * from several threads at once, provided every call has returned before
 * collect() returns; check the host's abi_minor >= 2 first (a 1.0/1.1 host
 * requires one emit at a time). Each emitted batch passes through the
 * pipeline on the emitting thread; the host serializes calls per processor
 * or sink only for instances without the matching flag above.
 */
typedef struct moni_plugin_descriptor {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;
  moni_str name;
  moni_str version;
  moni_str description;
  uint32_t kind; /* moni_plugin_kind */
  moni_str sample_config; /* TOML snippet documenting the options */

  moni_instance* (*create)(const moni_host_api* host, const moni_config_node* config,
                           moni_error* err);
  int (*start)(moni_instance* inst, moni_error* err);
  /* Collectors: gather one cycle; call emit one or more times. */
  int (*collect)(moni_instance* inst, int64_t now_ms, moni_emit_fn emit, void* emit_ctx,
                 moni_error* err);
  /* Processors: transform `in` and emit the result. */
  int (*process)(moni_instance* inst, const moni_batch* in, moni_emit_fn emit, void* emit_ctx,
                 moni_error* err);
  /* Storage and outputs: consume a batch. For storage, MONI_OK means
   * durable. */
  int (*write)(moni_instance* inst, const moni_batch* batch, moni_error* err);
  int (*flush)(moni_instance* inst, moni_error* err);
  void (*stop)(moni_instance* inst);
  void (*destroy)(moni_instance* inst);
  /* The instance's own metrics (moni_<plugin>_*), rendered by the host. */
  int (*self_metrics)(moni_instance* inst, moni_emit_fn emit, void* emit_ctx);
  /* Storage only: the read side, valid from start to stop. */
  const moni_storage_reader* (*reader)(moni_instance* inst);
  /* An offline subcommand of the CLI (`moni backup`, `moni restore`,
   * `moni import`) run on a created instance that was not started; `args`
   * are the remaining command-line arguments. Messages for the user go
   * through the host's log. */
  int (*command)(moni_instance* inst, moni_str name, const moni_str* args, size_t arg_count,
                 moni_error* err);

  /* ---- ABI 1.2: the host reads these only when struct_size covers them. */

  /* MONI_PLUGIN_CONCURRENT_*; other bits are reserved and must be 0. */
  uint64_t flags;
} moni_plugin_descriptor;

typedef const moni_plugin_descriptor* (*moni_plugin_entry_fn)(const moni_host_api* host);

#ifdef __cplusplus
}
#endif

#endif /* MONI_PLUGIN_ABI_H */
