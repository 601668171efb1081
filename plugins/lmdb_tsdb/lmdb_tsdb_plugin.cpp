// The lmdb_tsdb storage plugin: config, lifecycle, the background
// housekeeping thread (retention, scheduled backups), self metrics and the
// offline subcommands (backup, restore, import).
#include <sys/stat.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <moni/sdk.hpp>
#include <mutex>
#include <thread>

#include "backup.hpp"
#include "dir_lock.hpp"
#include "importer.hpp"
#include "shared_db.hpp"
#include "tsdb.hpp"

namespace fs = std::filesystem;
using namespace moni;

class LmdbTsdb : public Storage {
 public:
  static constexpr std::string_view plugin_name = "lmdb_tsdb";
  // Db::write() is safe to call from several threads (series resolution
  // and WAL encoding in parallel, group commit): the host need not
  // serialize the batches of its collectors' workers (ABI 1.2).
  static constexpr uint64_t plugin_flags = MONI_PLUGIN_CONCURRENT_WRITE;
  static constexpr std::string_view plugin_version = "1.0.0";
  static constexpr std::string_view plugin_description =
      "time-series storage on LMDB: compressed chunks, label index, retention, backups";
  static constexpr std::string_view sample_config =
      R"(# path = ""                  # default: <data_dir>/<instance>
# sync = "full"              # "full" | "nometasync" | "none"
# retention = "15d"          # delete data older than this ("0": keep)
# retention_size = "0"       # delete oldest data above this size, e.g. "10GiB"
# map_size = "1GiB"          # initial LMDB map size; grows automatically
# housekeeping_interval = "1m"
# chunk_samples = 240        # samples per chunk (the in-memory head is cut at this size)
# checkpoint_records = 480   # WAL records kept at most; older heads are cut early
# [storage.<instance>.backup]
# interval = "24h"
# dir = ""                   # default: <data_dir>/<instance>-backups
# keep = 7)";

  LmdbTsdb(Context& ctx, const ConfigView& cfg) : ctx_(ctx) {
    ConfigReader r(cfg, "lmdb_tsdb[" + std::string(ctx.instance_name()) + "]");
    std::string base = std::string(ctx.data_dir()) + "/" + std::string(ctx.instance_name());
    opt_.path = r.string("path", base);
    if (opt_.path.empty()) opt_.path = base;
    std::string sync = r.choice("sync", "full", {"full", "nometasync", "none"});
    opt_.sync = sync == "none"         ? tsdb::SyncMode::None
                : sync == "nometasync" ? tsdb::SyncMode::NoMetaSync
                                       : tsdb::SyncMode::Full;
    opt_.retention_ms = r.duration_ms("retention", opt_.retention_ms);
    opt_.retention_bytes = r.bytes("retention_size", 0);
    opt_.initial_map_size = r.bytes("map_size", opt_.initial_map_size);
    if (opt_.initial_map_size < (1u << 20)) {
      r.error(r.raw("map_size"), "map_size must be at least 1MiB");
    }
    opt_.head_chunk_samples =
        static_cast<uint32_t>(r.integer("chunk_samples", opt_.head_chunk_samples, 4, 4000));
    opt_.checkpoint_records =
        static_cast<uint32_t>(r.integer("checkpoint_records", opt_.checkpoint_records, 1, 100000));
    housekeeping_ms_ = r.duration_ms("housekeeping_interval", 60000);
    if (housekeeping_ms_ <= 0)
      r.error(r.raw("housekeeping_interval"), "housekeeping_interval must be > 0");
    if (r.has("backup")) {
      ConfigReader b = r.table("backup");
      backup_interval_ms_ = b.duration_ms("interval", 24LL * 3600000);
      backup_dir_ = b.string("dir", base + "-backups");
      if (backup_dir_.empty()) backup_dir_ = base + "-backups";
      backup_keep_ = static_cast<int>(b.integer("keep", 7, 1, 100000));
      if (backup_interval_ms_ <= 0) b.error(b.raw("interval"), "interval must be > 0");
    }
    r.finish();
  }

  ~LmdbTsdb() override { stop(); }

  Result<void> start() override {
    auto lock = tsdb::DirLock::acquire(opt_.path, std::string(ctx_.instance_name()));
    if (!lock) return lock.error();
    auto db = tsdb::open_shared(opt_);
    if (!db) return db.error();
    if (db->reused) {
      std::string fixed = tsdb::options_needing_restart(db->opened_with, opt_);
      if (!fixed.empty())
        ctx_.warn("lmdb_tsdb: " + fixed + " changed: the database at " + opt_.path +
                  " stays open with the previous values until moni restarts");
    }
    lock_ = std::move(lock.value());
    db_ = std::move(db->db);
    if (backup_interval_ms_ > 0) {
      // Schedule from the newest existing backup so restarts keep the period.
      next_backup_ms_ = ctx_.now_ms();
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(backup_dir_, ec))
        if (e.path().filename().string().rfind("backup-", 0) == 0) {
          struct stat stt {};
          if (::stat(e.path().c_str(), &stt) != 0) continue;
          int64_t ms = static_cast<int64_t>(stt.st_mtime) * 1000;
          next_backup_ms_ = std::max(next_backup_ms_, ms + backup_interval_ms_);
        }
    }
    running_ = true;
    thread_ = std::thread([this] { housekeeping(); });
    return {};
  }

  void stop() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      running_ = false;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    db_.reset();
    lock_.reset();  // only once the database is closed
  }

  Result<void> write(const BatchView& batch) override {
    if (!db_) return make_error("lmdb_tsdb: write before start");
    auto r = db_->write(batch);
    if (!r) return r.error();
    return {};
  }

  Result<std::unique_ptr<SeriesCursor>> select(std::span<const Matcher> m, int64_t mint,
                                               int64_t maxt, bool with_samples) override {
    if (!db_) return make_error("lmdb_tsdb: not started");
    return db_->select(m, mint, maxt, with_samples);
  }
  Result<std::vector<std::string>> label_names(std::span<const Matcher> m, int64_t mint,
                                               int64_t maxt) override {
    if (!db_) return make_error("lmdb_tsdb: not started");
    return db_->label_names(m, mint, maxt);
  }
  Result<std::vector<std::string>> label_values(std::string_view name, std::span<const Matcher> m,
                                                int64_t mint, int64_t maxt) override {
    if (!db_) return make_error("lmdb_tsdb: not started");
    return db_->label_values(name, m, mint, maxt);
  }
  Result<std::vector<Metadata>> metadata(std::string_view family) override {
    if (!db_) return make_error("lmdb_tsdb: not started");
    return db_->metadata(family);
  }

  void self_metrics(Batch& out) override {
    if (!db_) return;
    auto& s = db_->stats();
    auto counter = [&](std::string_view name, std::string_view help) {
      out.describe(name, MetricType::Counter, help);
    };
    counter("moni_tsdb_samples_appended_total", "Samples appended to the TSDB.");
    out.add("moni_tsdb_samples_appended_total", {}, double(s.samples_appended));
    counter("moni_tsdb_out_of_order_samples_total",
            "Samples rejected because they are older than the series' newest sample.");
    out.add("moni_tsdb_out_of_order_samples_total", {}, double(s.out_of_order));
    counter("moni_tsdb_duplicate_samples_total",
            "Samples at the series' newest timestamp: ignored when the value is identical, "
            "rejected otherwise.");
    out.add("moni_tsdb_duplicate_samples_total", {{"action", "ignored"}},
            double(s.duplicate_ignored));
    out.add("moni_tsdb_duplicate_samples_total", {{"action", "rejected"}},
            double(s.duplicate_rejected));
    counter("moni_tsdb_invalid_samples_total", "Samples rejected for invalid labels.");
    out.add("moni_tsdb_invalid_samples_total", {}, double(s.invalid));
    counter("moni_tsdb_commits_total", "Write transactions committed (one per batch).");
    out.add("moni_tsdb_commits_total", {}, double(s.commits));
    counter("moni_tsdb_exclusive_commits_total",
            "Batches written while every other writer waited (new series or metadata, a batch "
            "shape seen for the first time, series shared by several shapes, housekeeping).");
    out.add("moni_tsdb_exclusive_commits_total", {}, double(s.exclusive_commits));
    counter("moni_tsdb_chunks_closed_total", "Head chunks closed into stored chunks.");
    out.add("moni_tsdb_chunks_closed_total", {}, double(s.chunks_closed));
    counter("moni_tsdb_write_errors_total", "Batches that could not be stored.");
    out.add("moni_tsdb_write_errors_total", {{"reason", "disk_full"}},
            double(s.write_errors_disk_full));
    out.add("moni_tsdb_write_errors_total", {{"reason", "other"}}, double(s.write_errors_other));
    out.describe("moni_tsdb_series", MetricType::Gauge, "Series in the TSDB.");
    out.add("moni_tsdb_series", {}, double(s.series));
    out.describe("moni_tsdb_db_bytes", MetricType::Gauge, "Bytes of database pages in use.");
    out.add("moni_tsdb_db_bytes", {}, double(db_->used_bytes()));
    out.describe("moni_tsdb_db_file_bytes", MetricType::Gauge, "Size of data.mdb.");
    out.add("moni_tsdb_db_file_bytes", {}, double(db_->file_bytes()));
    out.describe("moni_tsdb_map_size_bytes", MetricType::Gauge, "Current LMDB map size.");
    out.add("moni_tsdb_map_size_bytes", {}, double(db_->map_size()));
    counter("moni_tsdb_map_grows_total", "Times the LMDB map was grown.");
    out.add("moni_tsdb_map_grows_total", {}, double(s.map_grows));
    counter("moni_tsdb_retention_deleted_chunks_total", "Chunks deleted by retention.");
    out.add("moni_tsdb_retention_deleted_chunks_total", {{"reason", "age"}},
            double(s.retention_chunks_age));
    out.add("moni_tsdb_retention_deleted_chunks_total", {{"reason", "size"}},
            double(s.retention_chunks_size));
    counter("moni_tsdb_retention_deleted_series_total", "Series deleted by retention.");
    out.add("moni_tsdb_retention_deleted_series_total", {}, double(s.retention_series));
    counter("moni_tsdb_backups_total", "Backups made.");
    out.add("moni_tsdb_backups_total", {{"result", "success"}}, double(s.backups_ok));
    out.add("moni_tsdb_backups_total", {{"result", "failure"}}, double(s.backups_failed));
    out.describe("moni_tsdb_last_backup_timestamp_seconds", MetricType::Gauge,
                 "When the last scheduled backup finished.");
    out.add("moni_tsdb_last_backup_timestamp_seconds", {}, double(s.last_backup_ms) / 1000.0);
  }

  Result<void> command(std::string_view name, std::span<const std::string_view> args) override {
    auto flag = [&](std::string_view f) -> std::optional<std::string> {
      for (size_t i = 0; i < args.size(); ++i) {
        if (args[i] == f && i + 1 < args.size()) return std::string(args[i + 1]);
        if (args[i].substr(0, f.size() + 1) == std::string(f) + "=")
          return std::string(args[i].substr(f.size() + 1));
      }
      return std::nullopt;
    };
    auto has = [&](std::string_view f) {
      for (auto a : args)
        if (a == f) return true;
      return false;
    };
    if (name == "backup") {
      auto to = flag("--to");
      if (!to) return make_error("lmdb_tsdb: usage: backup --to DIR");
      // Read-only through LMDB's own reader locks: no DirLock, so that a
      // running instance can be backed up.
      tsdb::Options o = opt_;
      o.read_only = true;
      auto db = tsdb::Db::open(o);
      if (!db) return db.error();
      if (auto r = (*db)->backup_to(*to); !r) return r;
      ctx_.info("lmdb_tsdb: backup of " + opt_.path + " written to " + *to);
      return {};
    }
    if (name == "restore") {
      auto from = flag("--from");
      if (!from) return make_error("lmdb_tsdb: usage: restore --from DIR [--force]");
      if (auto r = tsdb::restore_backup(*from, opt_.path, has("--force"),
                                        std::string(ctx_.instance_name()));
          !r)
        return r;
      ctx_.info("lmdb_tsdb: restored " + *from + " into " + opt_.path);
      return {};
    }
    if (name == "import") {
      if (args.empty()) return make_error("lmdb_tsdb: usage: import FILE");
      auto lock = tsdb::DirLock::acquire(opt_.path, std::string(ctx_.instance_name()));
      if (!lock) return lock.error();
      auto db = tsdb::Db::open(opt_);
      if (!db) return db.error();
      auto r = tsdb::import_text_file(**db, std::string(args[0]), ctx_.now_ms());
      if (!r) return r.error();
      ctx_.info("lmdb_tsdb: imported " + std::to_string(*r) + " samples from " +
                std::string(args[0]));
      return {};
    }
    return make_error("lmdb_tsdb: unknown subcommand '" + std::string(name) +
                      "' (supported: backup --to DIR, restore --from DIR [--force], import FILE)");
  }

 private:
  void housekeeping() {
    std::unique_lock<std::mutex> l(mu_);
    int64_t next_retention = ctx_.now_ms() + housekeeping_ms_;
    while (running_) {
      int64_t now = ctx_.now_ms();
      int64_t due = next_retention;
      if (backup_interval_ms_ > 0) due = std::min(due, next_backup_ms_);
      if (due > now) {
        cv_.wait_for(l, std::chrono::milliseconds(std::min<int64_t>(due - now, 1000)));
        continue;
      }
      l.unlock();
      if (now >= next_retention) {
        if (auto r = db_->enforce_retention(opt_.retention_ms, opt_.retention_bytes); !r)
          ctx_.error(r.error().message);
        next_retention = now + housekeeping_ms_;
      }
      if (backup_interval_ms_ > 0 && now >= next_backup_ms_) {
        auto r = tsdb::rotated_backup(*db_, backup_dir_, now, backup_keep_);
        if (!r)
          ctx_.error(r.error().message);
        else
          ctx_.info("lmdb_tsdb: backup written to " + *r);
        next_backup_ms_ = now + backup_interval_ms_;
      }
      l.lock();
    }
  }

  Context& ctx_;
  tsdb::Options opt_;
  int64_t housekeeping_ms_ = 60000;
  int64_t backup_interval_ms_ = 0;
  std::string backup_dir_;
  int backup_keep_ = 7;
  int64_t next_backup_ms_ = 0;
  std::unique_ptr<tsdb::DirLock> lock_;  // declared before db_: released after it
  std::shared_ptr<tsdb::Db> db_;         // shared with a reload's successor (shared_db.hpp)
  std::mutex mu_;
  std::condition_variable cv_;
  bool running_ = false;
  std::thread thread_;
};

MONI_EXPORT_PLUGIN(LmdbTsdb)
