// One open database per directory in a process. A config reload starts a
// changed storage instance before it stops the old one; if each opened the
// directory itself, two LMDB environments, two WAL writers and two series-id
// caches would work on one database and corrupt it. They share one Db.
#pragma once

#include <memory>
#include <string>

#include <moni/sdk.hpp>

#include "tsdb.hpp"

namespace moni::tsdb {

struct SharedDb {
  std::shared_ptr<Db> db;
  /// Set when the database was already open in this process (a reload):
  /// then `opened_with` holds the options it was opened with, which stay in
  /// force for everything but retention until the last user closes it.
  bool reused = false;
  Options opened_with;
};

/// Opens `opt.path`, or returns the Db already open on it in this process.
/// The caller holds the directory's DirLock, which refuses other owners.
[[nodiscard]] Result<SharedDb> open_shared(const Options& opt);

/// Names of the options in `now` that differ from `was` and need the
/// database reopened ("sync, chunk_samples"), or "" when none do.
std::string options_needing_restart(const Options& was, const Options& now);

}  // namespace moni::tsdb
