// The network-thread fast path: a route answered on a network thread (after
// fast runs on the pool) that turns slow must not stall the server: other
// requests are answered promptly while its one slow run holds a network
// thread, and the route goes back to the worker pool afterwards.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "subprocess.hpp"

using namespace moni::test;
using Clock = std::chrono::steady_clock;

namespace {

// "<calls> <thread name>" from test_sink's thread route.
std::string thread_of(const HttpReply& r) {
  auto sp = r.body.find(' ');
  return sp == std::string::npos ? "" : r.body.substr(sp + 1, r.body.find('\n') - sp - 1);
}

int64_t ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

}  // namespace

TEST(FastPath, ARouteTurningSlowHoldsOneNetworkThreadAndGoesBackToThePool) {
  TempDir d;
  d.write("c.toml", "[host]\nlisten = \"127.0.0.1:0\"\nplugin_dirs = [\"" HOST_TEST_PLUGIN_DIR
                    "\"]\n[outputs.out]\nplugin = \"test_sink\"\npath = \"/dev/null\"\n"
                    "thread_route = \"/probe/thread\"\nslow = \"1500ms\"\n");
  Child moni({MONI_BIN, "run", "--config", d.file("c.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();

  // Fast runs on the pool first, then on a network thread ("moni-http").
  std::string first = thread_of(http_get(port, "/probe/thread"));
  EXPECT_NE(first, "moni-http") << "the first run is on the pool";
  bool on_network = false;
  for (int i = 0; i < 200 && !on_network; ++i)
    on_network = thread_of(http_get(port, "/probe/thread")) == "moni-http";
  ASSERT_TRUE(on_network) << "the route never ran on a network thread";

  // It turns slow: its next run is still on a network thread, and takes 1.5 s.
  ASSERT_EQ(http_get(port, "/probe/thread/slow").body, "slow\n");
  auto t0 = Clock::now();
  auto slow = std::async(std::launch::async, [&] { return http_get(port, "/probe/thread"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // Meanwhile the server answers others at once: a host route, a plugin's
  // route that is fast, and an unknown path.
  for (int i = 0; i < 3; ++i) {
    auto t = Clock::now();
    auto h = http_get(port, "/-/healthy");
    EXPECT_EQ(h.status, 200);
    EXPECT_LT(ms_since(t), 400) << "/-/healthy waited for the slow handler";
    t = Clock::now();
    EXPECT_EQ(http_get(port, "/metrics").status, 200);
    EXPECT_EQ(http_get(port, "/nope").status, 404);
    EXPECT_LT(ms_since(t), 400) << "/metrics or a 404 waited for the slow handler";
  }
  EXPECT_LT(ms_since(t0), 1400) << "the checks above must overlap the slow run";
  HttpReply r = slow.get();
  EXPECT_GE(ms_since(t0), 1500);
  EXPECT_EQ(thread_of(r), "moni-http") << r.body << "the slow run was on a network thread";

  // Slow now: back on the pool, where two requests run at the same time
  // (on one network thread they would take 3 s).
  t0 = Clock::now();
  auto a = std::async(std::launch::async, [&] { return http_get(port, "/probe/thread"); });
  auto b = std::async(std::launch::async, [&] { return http_get(port, "/probe/thread"); });
  std::string ta = thread_of(a.get()), tb = thread_of(b.get());
  EXPECT_NE(ta, "moni-http");
  EXPECT_NE(tb, "moni-http");
  EXPECT_FALSE(ta.empty());
  EXPECT_LT(ms_since(t0), 2900) << "the two slow runs did not overlap";
  moni.signal(SIGTERM);
  EXPECT_EQ(moni.wait(10000), 0) << moni.err();
}
