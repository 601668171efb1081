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
  EXPECT_NE(r.error().message.find("host's ABI 1.1"), std::string::npos) << r.error().message;
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

TEST(Registry, RefusesADuplicatePluginNameAndKeepsTheFirst) {
  TempDir d;
  fs::copy_file(kGood, d.file("moni-a.so"));
  fs::copy_file(kGood, d.file("moni-b.so"));
  d.write("notaplugin.so", "ignored: the name does not match moni-*.so");
  PluginRegistry reg;
  reg.scan({d.path});
  ASSERT_EQ(reg.plugins().size(), 1u);
  EXPECT_EQ(reg.plugins()[0]->path, d.file("moni-a.so"));
  ASSERT_EQ(reg.failures().size(), 1u);
  EXPECT_EQ(reg.failures()[0], d.file("moni-b.so") +
                                   ": refused: duplicate plugin name 'test_collector' (already "
                                   "loaded from " +
                                   d.file("moni-a.so") + ")");
}

TEST(Registry, ScansDirectoriesInOrderAndExplainsMissingPlugins) {
  PluginRegistry reg;
  reg.scan({kBad, HOST_TEST_PLUGIN_DIR, "/nonexistent/dir"});
  EXPECT_NE(reg.find("test_sink"), nullptr);
  EXPECT_NE(reg.find("newer"), nullptr);
  EXPECT_EQ(reg.find("future"), nullptr);
  EXPECT_EQ(reg.failures().size(), 3u);  // abi_major2, no_entry, small_struct
  std::string why = reg.explain_missing("abi_major2");
  EXPECT_NE(why.find("plugin ABI 2.3"), std::string::npos) << why;
  why = reg.explain_missing("node");
  EXPECT_NE(why.find("no loadable moni-node.so in " + kBad), std::string::npos) << why;
}

TEST(Registry, ReusesLibrariesOfAPreviousScan) {
  PluginRegistry a, b;
  a.scan({HOST_TEST_PLUGIN_DIR});
  b.scan({HOST_TEST_PLUGIN_DIR}, &a);
  ASSERT_FALSE(a.plugins().empty());
  EXPECT_EQ(a.find("test_sink"), b.find("test_sink"));
}
