#include "statfs_worker.hpp"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <dlfcn.h>
#include <mutex>
#include <thread>

namespace moni::node {

struct StatfsWorker::Stuck {
  std::mutex m;
  std::vector<std::string> paths;
};

// What the caller and one helper thread share. The helper owns a copy of
// the paths so that an abandoned helper never touches the caller's memory.
struct StatfsWorker::Channel {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::string> paths;
  std::vector<struct statfs> st;
  std::vector<int> err;
  size_t n = 0, done = 0;
  bool has_job = false, quit = false, abandoned = false;
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
      while (ch->done < ch->n) {
        size_t i = ch->done;
        path.assign(ch->paths[i]);
        lk.unlock();
        struct statfs st {};
        int rc = ::statfs(path.c_str(), &st);
        int err = rc == 0 ? 0 : errno;
        lk.lock();
        if (ch->abandoned) {
          std::lock_guard sl(stuck->m);
          auto& p = stuck->paths;
          p.erase(std::remove(p.begin(), p.end(), path), p.end());
          return;  // detached; the shared Channel dies with this lambda
        }
        ch->st[i] = st;
        ch->err[i] = err;
        ch->done = i + 1;
      }
      ch->has_job = false;
      // One wake-up per batch: the caller checks progress when its deadline
      // passes instead of being woken after every mount.
      lk.unlock();
      ch->cv.notify_all();
      lk.lock();
    }
  });
}

void StatfsWorker::stat_all(std::vector<Job>& jobs, size_t n, std::chrono::milliseconds timeout) {
  size_t start = 0;
  while (start < n) {
    std::unique_lock lk(ch_->m);
    size_t m = n - start;
    if (ch_->paths.size() < m) {
      ch_->paths.resize(m);
      ch_->st.resize(m);
      ch_->err.resize(m);
    }
    for (size_t k = 0; k < m; ++k) ch_->paths[k].assign(jobs[start + k].path);
    ch_->n = m;
    ch_->done = 0;
    ch_->has_job = true;
    lk.unlock();
    ch_->cv.notify_all();
    lk.lock();
    // Each mount gets at least `timeout`: on a deadline with progress made,
    // the next mount in line gets a fresh one.
    size_t seen = 0;
    while (ch_->done < m) {
      if (ch_->cv.wait_for(lk, timeout, [&] { return ch_->done == m; })) break;
      if (ch_->done == seen) break;
      seen = ch_->done;
    }
    size_t got = ch_->done;
    for (size_t k = 0; k < got; ++k) {
      Job& j = jobs[start + k];
      j.st = ch_->st[k];
      j.err = ch_->err[k];
      j.outcome = j.err == 0 ? Outcome::Ok : Outcome::Error;
    }
    if (got == m) return;
    // jobs[start + got] did not answer in time: leave its thread behind.
    Job& hung = jobs[start + got];
    hung.outcome = Outcome::TimedOut;
    ch_->abandoned = true;
    {
      std::lock_guard sl(stuck_->m);
      stuck_->paths.push_back(hung.path);
    }
    pin_library();
    ch_->thread.detach();
    lk.unlock();
    spawn();
    start += got + 1;
  }
}

bool StatfsWorker::stuck(const std::string& path) const {
  std::lock_guard sl(stuck_->m);
  return std::find(stuck_->paths.begin(), stuck_->paths.end(), path) != stuck_->paths.end();
}

}  // namespace moni::node
