// Backups (consistent compacted LMDB copies, rotated) and restores.
#pragma once

#include <moni/result.hpp>
#include <string>

#include "tsdb.hpp"

namespace moni::tsdb {

/// Copies `db` into a new directory `<dir>/backup-<UTC time>` (written as a
/// temporary directory and renamed, so a listed backup is always complete),
/// then removes the oldest backups beyond `keep`. Returns the new path.
Result<std::string> rotated_backup(Db& db, const std::string& dir, int64_t now_ms, int keep);

/// Installs the database in `from` (a backup directory holding data.mdb)
/// as the database in `to`. Refuses when `to` holds series unless `force`,
/// and, before touching `to`, when another process (or another instance
/// than `owner` in this one) holds its DirLock, i.e. moni runs on it.
Result<void> restore_backup(const std::string& from, const std::string& to, bool force,
                            const std::string& owner = "restore");

}  // namespace moni::tsdb
