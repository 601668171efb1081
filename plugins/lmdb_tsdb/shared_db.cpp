#include "shared_db.hpp"

#include <filesystem>
#include <map>
#include <mutex>

namespace moni::tsdb {

namespace {

struct Entry {
  std::weak_ptr<Db> db;
  Options opened_with;
};

std::mutex& registry_mu() {
  static std::mutex mu;
  return mu;
}

std::map<std::string, Entry>& registry() {
  static std::map<std::string, Entry> m;
  return m;
}

std::string key_of(const std::string& path) {
  std::error_code ec;
  auto p = std::filesystem::weakly_canonical(path, ec);
  return ec ? path : p.string();
}

}  // namespace

Result<SharedDb> open_shared(const Options& opt) {
  std::lock_guard<std::mutex> l(registry_mu());
  auto& reg = registry();
  std::string key = key_of(opt.path);
  if (auto it = reg.find(key); it != reg.end()) {
    if (auto db = it->second.db.lock()) return SharedDb{std::move(db), true, it->second.opened_with};
    reg.erase(it);
  }
  auto db = Db::open(opt);
  if (!db) return db.error();
  std::shared_ptr<Db> shared = std::move(db.value());
  reg[key] = Entry{shared, opt};
  return SharedDb{std::move(shared), false, opt};
}

std::string options_needing_restart(const Options& was, const Options& now) {
  std::string out;
  auto add = [&](bool differs, const char* name) {
    if (differs) out += (out.empty() ? "" : ", ") + std::string(name);
  };
  add(was.sync != now.sync, "sync");
  add(was.initial_map_size != now.initial_map_size, "map_size");
  add(was.head_chunk_samples != now.head_chunk_samples, "chunk_samples");
  add(was.checkpoint_records != now.checkpoint_records, "checkpoint_records");
  return out;
}

}  // namespace moni::tsdb
