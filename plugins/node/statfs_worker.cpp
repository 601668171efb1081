#include "statfs_worker.hpp"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <dlfcn.h>
#include <mutex>
#include <thread>
#include <vector>

namespace moni::node {

struct StatfsWorker::Stuck {
  std::mutex m;
  std::vector<std::string> paths;
};

struct StatfsWorker::Channel {
  std::mutex m;
  std::condition_variable cv;
  std::string path;
  bool has_job = false, done = false, quit = false, abandoned = false;
  struct statfs st {};
  int err = 0;
  std::thread thread;
};

namespace {

// An abandoned thread may still be blocked in statfs when the host unloads
// the plugin; keep the code it will return into mapped for good.
void pin_library() {
  static std::once_flag once;
  std::call_once(once, [] {
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void*>(&pin_library), &info) && info.dli_fname)
      ::dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  });
}

}  // namespace

StatfsWorker::StatfsWorker() : stuck_(std::make_shared<Stuck>()) { spawn(); }

StatfsWorker::~StatfsWorker() {
  {
    std::lock_guard lk(ch_->m);
    ch_->quit = true;
  }
  ch_->cv.notify_all();
  if (ch_->thread.joinable()) ch_->thread.join();
}

void StatfsWorker::spawn() {
  ch_ = std::make_shared<Channel>();
  ch_->thread = std::thread([ch = ch_, stuck = stuck_] {
    std::unique_lock lk(ch->m);
    std::string path;  // reused: no allocation per call once warm
    for (;;) {
      ch->cv.wait(lk, [&] { return ch->has_job || ch->quit; });
      if (ch->quit) return;
      path.assign(ch->path);
      lk.unlock();
      struct statfs st {};
      int rc = ::statfs(path.c_str(), &st);
      int err = rc == 0 ? 0 : errno;
      lk.lock();
      ch->st = st;
      ch->err = err;
      ch->has_job = false;
      ch->done = true;
      if (ch->abandoned) {
        std::lock_guard sl(stuck->m);
        auto& p = stuck->paths;
        p.erase(std::remove(p.begin(), p.end(), path), p.end());
        return;  // detached; the shared Channel dies with this lambda
      }
      ch->cv.notify_all();
    }
  });
}

StatfsWorker::Outcome StatfsWorker::stat(const std::string& path,
                                         std::chrono::milliseconds timeout, struct statfs& out,
                                         int& err) {
  std::unique_lock lk(ch_->m);
  ch_->path.assign(path);
  ch_->has_job = true;
  ch_->done = false;
  ch_->cv.notify_all();
  if (!ch_->cv.wait_for(lk, timeout, [&] { return ch_->done; })) {
    ch_->abandoned = true;
    {
      std::lock_guard sl(stuck_->m);
      stuck_->paths.push_back(path);
    }
    pin_library();
    ch_->thread.detach();
    lk.unlock();
    spawn();
    return Outcome::TimedOut;
  }
  out = ch_->st;
  err = ch_->err;
  return err == 0 ? Outcome::Ok : Outcome::Error;
}

bool StatfsWorker::stuck(const std::string& path) const {
  std::lock_guard sl(stuck_->m);
  return std::find(stuck_->paths.begin(), stuck_->paths.end(), path) != stuck_->paths.end();
}

}  // namespace moni::node
