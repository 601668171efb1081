// The database directory lock: a second process is refused with the
// holder's pid, one instance reloaded in the same process shares it, the
// kernel releases it when the holder is SIGKILLed; and through the real
// binary, `moni import`, `moni restore` and a second `moni run` are refused
// (touching nothing) while `moni run` holds it, `moni backup` still works.
#include "dir_lock.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "subprocess.hpp"

using moni::tsdb::DirLock;
using namespace moni::test;
namespace fs = std::filesystem;

namespace {

// A child process that takes the lock on `dir` (owner "tsdb") and holds it
// until killed. Returns its pid once it holds the lock.
pid_t lock_in_child(const std::string& dir) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    auto l = DirLock::acquire(dir, "tsdb");
    char c = l ? '1' : '0';
    (void)!::write(fds[1], &c, 1);
    for (;;) ::pause();
  }
  ::close(fds[1]);
  char c = 0;
  bool ok = ::read(fds[0], &c, 1) == 1 && c == '1';
  ::close(fds[0]);
  if (!ok) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return -1;
  }
  return pid;
}

// Whether another process could take the lock on `dir` right now (a plain
// flock: a forked child would find the parent's locks in its copy of
// DirLock's registry).
bool lockable_from_another_process(const std::string& dir) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open((dir + "/LOCK").c_str(), O_RDONLY | O_CLOEXEC);
    ::_exit(fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : 1);
  }
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

std::string in_use(const std::string& dir, long pid) {
  return "lmdb_tsdb: database directory " + dir + " is in use by pid " + std::to_string(pid) +
         " (another moni run or import?); stop it first";
}

std::set<std::string> entries(const std::string& dir) {
  std::set<std::string> s;
  for (const auto& e : fs::directory_iterator(dir)) s.insert(e.path().filename().string());
  return s;
}

}  // namespace

TEST(DirLock, SecondProcessRefusedWithPidAndSigkillReleasesIt) {
  TempDir d;
  std::string dir = d.file("db");
  pid_t holder = lock_in_child(dir);
  ASSERT_GT(holder, 0);
  EXPECT_EQ(read_file(dir + "/LOCK"), std::to_string(holder) + "\n");
  auto refused = DirLock::acquire(dir, "tsdb");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, in_use(dir, holder));

  // The kernel drops the flock of a killed process; its LOCK file stays
  // behind, with its pid, and must not block.
  ::kill(holder, SIGKILL);
  ::waitpid(holder, nullptr, 0);
  EXPECT_EQ(read_file(dir + "/LOCK"), std::to_string(holder) + "\n");
  {
    auto l = DirLock::acquire(dir, "tsdb");
    ASSERT_TRUE(l) << l.error().message;
    EXPECT_EQ(read_file(dir + "/LOCK"), std::to_string(::getpid()) + "\n");
    EXPECT_FALSE(lockable_from_another_process(dir));
  }
  EXPECT_EQ(read_file(dir + "/LOCK"), "");  // emptied on release
  EXPECT_TRUE(lockable_from_another_process(dir));
}

TEST(DirLock, ReloadedInstanceSharesItAnotherInstanceIsRefused) {
  TempDir d;
  std::string dir = d.file("db");
  auto old_inst = DirLock::acquire(dir, "tsdb");
  ASSERT_TRUE(old_inst) << old_inst.error().message;
  // A reload starts the changed instance before it stops the old one.
  auto new_inst = DirLock::acquire(dir, "tsdb");
  ASSERT_TRUE(new_inst) << new_inst.error().message;
  auto other = DirLock::acquire(dir, "other");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().message, "lmdb_tsdb: database directory " + dir +
                                       " is already used by storage instance 'tsdb' of this "
                                       "moni; give each storage instance its own path");
  old_inst.value().reset();
  EXPECT_FALSE(lockable_from_another_process(dir));  // the new instance still holds it
  EXPECT_EQ(read_file(dir + "/LOCK"), std::to_string(::getpid()) + "\n");
  new_inst.value().reset();
  EXPECT_TRUE(lockable_from_another_process(dir));
  // The same directory spelled differently is the same lock.
  auto a = DirLock::acquire(dir, "a");
  ASSERT_TRUE(a);
  auto b = DirLock::acquire(d.path + "/./db", "b");
  EXPECT_FALSE(b);
}

#ifdef MONI_BIN
TEST(DirLock, RunningMoniRefusesImportRestoreAndSecondRunBackupWorks) {
  const std::string moni = MONI_BIN;
  TempDir d;
  std::string data = d.file("data");
  std::string db = data + "/tsdb";
  d.write("c.toml", "[host]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"" + data +
                        "\"\n[storage.tsdb]\nplugin = \"lmdb_tsdb\"\n"
                        "[pipelines.p]\ncollectors = [\"self\"]\nsinks = [\"tsdb\"]\n");
  d.write("in.prom",
          "imported_total{job=\"x\"} 1 1700000000000\n"
          "imported_total{job=\"x\"} 2 1700000015000\n");
  Child live({moni, "run", "--config", d.file("c.toml")});
  int port = live.port();
  ASSERT_GT(port, 0) << live.err();
  for (int i = 0; i < 200 && http_get(port, "/-/ready").status != 200; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(http_get(port, "/-/ready").status, 200) << live.err();
  std::set<std::string> before = entries(db);
  ASSERT_TRUE(before.count("data.mdb") && before.count("lock.mdb") && before.count("LOCK"));
  std::string refusal = in_use(db, live.pid());

  auto imp = run({moni, "import", "--config", d.file("c.toml"), d.file("in.prom")});
  EXPECT_NE(imp.exit_code, 0);
  EXPECT_NE(imp.err.find(refusal), std::string::npos) << imp.err;
  EXPECT_EQ(imp.out.find("imported"), std::string::npos) << imp.out;

  // A backup reads through LMDB's snapshot: allowed while moni runs.
  auto bk = run({moni, "backup", "--config", d.file("c.toml"), "--to", d.file("bk")});
  EXPECT_EQ(bk.exit_code, 0) << bk.err;
  EXPECT_TRUE(fs::exists(d.file("bk") + "/data.mdb"));

  auto rs = run({moni, "restore", "--config", d.file("c.toml"), "--from", d.file("bk"), "--force"});
  EXPECT_NE(rs.exit_code, 0);
  EXPECT_NE(rs.err.find(refusal), std::string::npos) << rs.err;
  EXPECT_EQ(entries(db), before);  // lock.mdb and the WAL kept

  d.write("c2.toml", read_file(d.file("c.toml")));
  Child second({moni, "run", "--config", d.file("c2.toml")});
  EXPECT_NE(second.wait(20000), 0);
  EXPECT_NE(second.err().find(refusal), std::string::npos) << second.err();
  EXPECT_EQ(http_get(port, "/-/ready").status, 200);  // the first one is unharmed

  // SIGKILL leaves the LOCK file with the dead pid: it does not block.
  live.signal(SIGKILL);
  EXPECT_EQ(live.wait(10000), 128 + SIGKILL);
  EXPECT_EQ(read_file(db + "/LOCK"), std::to_string(live.pid()) + "\n");
  imp = run({moni, "import", "--config", d.file("c.toml"), d.file("in.prom")});
  EXPECT_EQ(imp.exit_code, 0) << imp.err;
  EXPECT_NE(imp.err.find("imported 2 samples"), std::string::npos) << imp.err;
  EXPECT_EQ(read_file(db + "/LOCK"), "");
}
#endif
