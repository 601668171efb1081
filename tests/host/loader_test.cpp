// The plugin loader against real shared objects: what it loads, and each
// refusal with a one-line reason naming the file.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "plugin_loader.hpp"
#include "subprocess.hpp"

using moni::host::load_plugin;
using moni::host::PluginRegistry;
using moni::test::TempDir;
namespace fs = std::filesystem;

namespace {
const std::string kGood = HOST_TEST_PLUGIN_DIR "/moni-test_collector.so";
const std::string kBad = HOST_BAD_PLUGIN_DIR;

void expect_one_line_refusal(const std::string& msg, const std::string& path) {
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_TRUE(msg.starts_with(path + ": refused: ")) << msg;
}
}  // namespace

TEST(Loader, LoadsAnSdkPluginAndReadsItsDescriptor) {
  auto r = load_plugin(kGood);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)->name, "test_collector");
  EXPECT_EQ((*r)->version, "0.0.1");
  EXPECT_EQ((*r)->kind, uint32_t{MONI_KIND_COLLECTOR});
  EXPECT_EQ((*r)->desc.abi_major, MONI_ABI_MAJOR);
}

TEST(Loader, RefusesAnotherAbiMajorNamingBothVersions) {
  std::string path = kBad + "/moni-abi_major2.so";
  auto r = load_plugin(path);
  ASSERT_FALSE(r.ok());
  expect_one_line_refusal(r.error().message, path);
  EXPECT_NE(r.error().message.find("plugin ABI 2.3"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("host's ABI " + std::to_string(MONI_ABI_MAJOR) + "." +
                                   std::to_string(MONI_ABI_MINOR)),
            std::string::npos)
      << r.error().message;
}

TEST(Loader, RefusesMissingEntrySymbol) {
  std::string path = kBad + "/moni-no_entry.so";
  auto r = load_plugin(path);
  ASSERT_FALSE(r.ok());
  expect_one_line_refusal(r.error().message, path);
  EXPECT_NE(r.error().message.find("no 'moni_plugin_entry' symbol"), std::string::npos);
}

TEST(Loader, RefusesTooSmallStructSize) {
  std::string path = kBad + "/moni-small_struct.so";
  auto r = load_plugin(path);
  ASSERT_FALSE(r.ok());
  expect_one_line_refusal(r.error().message, path);
  EXPECT_NE(r.error().message.find("struct_size 24 is smaller than ABI 1.0 requires"),
            std::string::npos)
      << r.error().message;
}

TEST(Loader, LoadsANewerMinorReadingOnlyKnownFields) {
  auto r = load_plugin(kBad + "/moni-newer_minor.so");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)->name, "newer");
  EXPECT_EQ((*r)->desc.abi_minor, 7);
  EXPECT_EQ((*r)->desc.struct_size, sizeof(moni_plugin_descriptor) + 4 * sizeof(void*));
  EXPECT_EQ((*r)->desc.flags, uint64_t{MONI_PLUGIN_CONCURRENT_WRITE}) << "1.2's flags are read";
}

TEST(Loader, LoadsAnOlderMinorWithoutReadingPastItsStructSize) {
  // A 1.1 descriptor followed by 0xff bytes where 1.2 has `flags`.
  auto r = load_plugin(HOST_OLD_PLUGIN_DIR "/moni-minor1.so");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)->name, "minor1");
  EXPECT_EQ((*r)->desc.abi_minor, 1);
  EXPECT_EQ((*r)->desc.struct_size, offsetof(moni_plugin_descriptor, flags));
  EXPECT_EQ((*r)->desc.flags, 0u);
  EXPECT_NE((*r)->desc.write, nullptr);
}

TEST(Loader, SdkPluginsDeclareFlagsFromPluginFlags) {
  auto plain = load_plugin(HOST_TEST_PLUGIN_DIR "/moni-test_sink.so");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ((*plain)->desc.abi_minor, MONI_ABI_MINOR);
  EXPECT_EQ((*plain)->desc.struct_size, sizeof(moni_plugin_descriptor));
  EXPECT_EQ((*plain)->desc.flags, 0u) << "no plugin_flags member: 0";
}

TEST(Loader, RefusesAFileThatIsNotASharedObject) {
  TempDir d;
  d.write("moni-text.so", "#!/bin/sh\necho not a plugin\n");
  auto r = load_plugin(d.file("moni-text.so"));
  ASSERT_FALSE(r.ok());
  expect_one_line_refusal(r.error().message, d.file("moni-text.so"));
  EXPECT_NE(r.error().message.find("not a shared object"), std::string::npos);
}

TEST(Loader, RefusesAGroupOrWorldWritableFile) {
  TempDir d;
  fs::copy_file(kGood, d.file("moni-w.so"));
  ::chmod(d.file("moni-w.so").c_str(), 0666);
  auto r = load_plugin(d.file("moni-w.so"));
  ASSERT_FALSE(r.ok());
  expect_one_line_refusal(r.error().message, d.file("moni-w.so"));
  EXPECT_NE(r.error().message.find("writable by group/other (mode 0666)"), std::string::npos)
      << r.error().message;
  ::chmod(d.file("moni-w.so").c_str(), 0620);
  EXPECT_FALSE(load_plugin(d.file("moni-w.so")).ok());
  ::chmod(d.file("moni-w.so").c_str(), 0644);
  EXPECT_TRUE(load_plugin(d.file("moni-w.so")).ok());
}

TEST(Loader, RefusesAPluginInAWorldWritableDirectory) {
  TempDir d;
  fs::copy_file(kGood, d.file("moni-w.so"));
  ::chmod(d.path.c_str(), 0777);
  auto r = load_plugin(d.file("moni-w.so"));
  ASSERT_FALSE(r.ok());
  expect_one_line_refusal(r.error().message, d.file("moni-w.so"));
  EXPECT_NE(r.error().message.find("its directory " + d.path + " is writable by group/other"),
            std::string::npos)
      << r.error().message;
}

// Whether this process has `path` mapped (dlopen'ed and not unloaded).
bool mapped(const std::string& path) {
  return moni::test::read_file("/proc/self/maps").find(path) != std::string::npos;
}

TEST(Registry, ScanLoadsNothingAndFindLoadsOnlyThePluginAsked) {
  TempDir d;
  for (const char* p : {"test_collector", "test_sink", "test_store"})
    fs::copy_file(HOST_TEST_PLUGIN_DIR "/moni-" + std::string(p) + ".so",
                  d.file("moni-" + std::string(p) + ".so"));
  PluginRegistry reg;
  reg.scan({kBad, d.path});  // kBad's broken files are never tried
  EXPECT_EQ(reg.files(), 7u);
  EXPECT_TRUE(reg.plugins().empty());
  EXPECT_FALSE(mapped(d.file("moni-test_sink.so")));
  auto sink = reg.find("test_sink");
  ASSERT_NE(sink, nullptr);
  EXPECT_EQ(sink->path, d.file("moni-test_sink.so"));
  EXPECT_EQ(reg.find("test_sink"), sink) << "loaded once";
  EXPECT_TRUE(mapped(d.file("moni-test_sink.so")));
  EXPECT_FALSE(mapped(d.file("moni-test_store.so")));
  EXPECT_FALSE(mapped(d.file("moni-test_collector.so")));
  EXPECT_EQ(reg.plugins().size(), 1u);
  EXPECT_TRUE(reg.failures().empty()) << reg.failures()[0];
  EXPECT_EQ(reg.available(),
            (std::vector<std::string>{"abi_major2", "newer_minor", "no_entry", "small_struct",
                                      "test_collector", "test_sink", "test_store"}));
}

TEST(Registry, RefusesADuplicatePluginNameAndKeepsTheFirst) {
  TempDir d;
  fs::copy_file(kGood, d.file("moni-a.so"));
  fs::copy_file(kGood, d.file("moni-b.so"));
  d.write("notaplugin.so", "ignored: the name does not match moni-*.so");
  PluginRegistry reg;
  reg.scan({d.path});
  EXPECT_EQ(reg.files(), 2u);
  // No moni-test_collector.so: the other files are tried in order.
  auto lp = reg.find("test_collector");
  ASSERT_NE(lp, nullptr);
  EXPECT_EQ(lp->path, d.file("moni-a.so"));
  EXPECT_TRUE(reg.failures().empty()) << "moni-b.so is not needed, so not loaded";
  reg.load_all();
  ASSERT_EQ(reg.plugins().size(), 1u);
  EXPECT_EQ(reg.plugins()[0]->path, d.file("moni-a.so"));
  ASSERT_EQ(reg.failures().size(), 1u);
  EXPECT_EQ(reg.failures()[0], d.file("moni-b.so") +
                                   ": refused: duplicate plugin name 'test_collector' (already "
                                   "loaded from " +
                                   d.file("moni-a.so") + ")");
}

TEST(Registry, AFileNamedOtherwiseIsFoundAndTheOnesTriedOnTheWayAreReleased) {
  TempDir d;
  fs::copy_file(HOST_TEST_PLUGIN_DIR "/moni-test_sink.so", d.file("moni-a.so"));
  fs::copy_file(kBad + "/moni-newer_minor.so", d.file("moni-n.so"));  // declares "newer"
  PluginRegistry reg;
  reg.scan({d.path});
  auto newer = reg.find("newer");
  ASSERT_NE(newer, nullptr);
  EXPECT_EQ(newer->path, d.file("moni-n.so"));
  EXPECT_TRUE(mapped(d.file("moni-n.so")));
  // moni-a.so was tried on the way and released (glibc may keep a C++
  // library mapped all the same: unique symbols make it "nodelete").
  EXPECT_EQ(reg.plugins().size(), 1u);
  EXPECT_EQ(reg.available(), (std::vector<std::string>{"newer", "test_sink"}));
  // Its name is remembered: asked for later, it loads again.
  auto sink = reg.find("test_sink");
  ASSERT_NE(sink, nullptr);
  EXPECT_EQ(sink->path, d.file("moni-a.so"));
  EXPECT_TRUE(reg.failures().empty());
}

TEST(Registry, TheConventionalFileOfAnEarlierDirectoryWins) {
  TempDir a, b;
  fs::copy_file(HOST_TEST_PLUGIN_DIR "/moni-test_sink.so", a.file("moni-test_sink.so"));
  fs::copy_file(HOST_TEST_PLUGIN_DIR "/moni-test_sink.so", b.file("moni-test_sink.so"));
  PluginRegistry reg;
  reg.scan({a.path, b.path});
  auto lp = reg.find("test_sink");
  ASSERT_NE(lp, nullptr);
  EXPECT_EQ(lp->path, a.file("moni-test_sink.so"));
  EXPECT_FALSE(mapped(b.file("moni-test_sink.so")));
}

TEST(Registry, ExplainsARefusedFileOrListsWhatIsAvailable) {
  PluginRegistry reg;
  reg.scan({kBad, "/nonexistent/dir"});
  EXPECT_EQ(reg.find("abi_major2"), nullptr);
  std::string why = reg.explain_missing("abi_major2");
  EXPECT_TRUE(why.starts_with(kBad + "/moni-abi_major2.so: refused: plugin ABI 2.3")) << why;
  ASSERT_EQ(reg.failures().size(), 1u) << "only that file was tried";
  EXPECT_NE(reg.find("newer"), nullptr);  // moni-newer_minor.so, after abi_major2 (refused)
  EXPECT_EQ(reg.failures().size(), 1u);
  EXPECT_EQ(reg.find("node"), nullptr);  // no such file: every other file is tried
  EXPECT_EQ(reg.failures().size(), 3u);  // + no_entry, small_struct
  why = reg.explain_missing("node");
  EXPECT_EQ(why, "no plugin named 'node' (no loadable moni-node.so in " + kBad +
                     ", /nonexistent/dir, and no other plugin file declares it); available: newer")
      << why;
}

TEST(Registry, ExplainsAConventionalFileThatDeclaresAnotherName) {
  TempDir d;
  fs::copy_file(HOST_TEST_PLUGIN_DIR "/moni-test_sink.so", d.file("moni-mine.so"));
  PluginRegistry reg;
  reg.scan({d.path});
  EXPECT_EQ(reg.find("mine"), nullptr);
  std::string why = reg.explain_missing("mine");
  EXPECT_NE(why.find(d.file("moni-mine.so") + " declares plugin 'test_sink'"), std::string::npos)
      << why;
  EXPECT_NE(why.find("available: test_sink"), std::string::npos) << why;
}

TEST(Registry, KeepsAndReusesWhatAPreviousScanLoaded) {
  TempDir d;
  fs::copy_file(HOST_TEST_PLUGIN_DIR "/moni-test_sink.so", d.file("moni-test_sink.so"));
  fs::copy_file(HOST_TEST_PLUGIN_DIR "/moni-test_store.so", d.file("moni-test_store.so"));
  auto a = std::make_unique<PluginRegistry>();
  a->scan({d.path});
  auto sink = a->find("test_sink");
  ASSERT_NE(sink, nullptr);
  PluginRegistry b;
  b.scan({d.path}, a.get());
  a.reset();
  sink.reset();
  // A reload neither unloads nor reopens a plugin loaded before.
  EXPECT_TRUE(mapped(d.file("moni-test_sink.so")));
  EXPECT_TRUE(b.plugins().empty());
  auto again = b.find("test_sink");
  ASSERT_NE(again, nullptr);
  EXPECT_FALSE(mapped(d.file("moni-test_store.so")));
  PluginRegistry c;
  c.scan({d.path}, &b);
  EXPECT_EQ(c.find("test_sink"), again);
  EXPECT_NE(c.find("test_store"), nullptr) << "a name new in this config loads";
}
