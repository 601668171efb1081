// A storage for host tests: keeps nothing, but implements the offline
// command interface (`moni backup ARGS` writes ARGS to <data_dir>/<name>.cmd)
// and fails `moni restore`.
#include <fstream>
#include <moni/sdk.hpp>

class TestStore : public moni::Storage {
 public:
  static constexpr std::string_view plugin_name = "test_store";
  static constexpr std::string_view plugin_version = "0.0.3";
  static constexpr std::string_view plugin_description = "host test storage";
  static constexpr std::string_view sample_config = "";

  TestStore(moni::Context& ctx, const moni::ConfigView& cfg) : ctx_(ctx) {
    moni::ConfigReader r(cfg, "test_store");
    r.finish();
  }
  moni::Result<void> write(const moni::BatchView&) override { return {}; }
  moni::Result<std::unique_ptr<moni::SeriesCursor>> select(std::span<const moni::Matcher>, int64_t,
                                                           int64_t, bool) override {
    return moni::make_error("not implemented");
  }
  moni::Result<std::vector<std::string>> label_names(std::span<const moni::Matcher>, int64_t,
                                                     int64_t) override {
    return std::vector<std::string>{};
  }
  moni::Result<std::vector<std::string>> label_values(std::string_view,
                                                      std::span<const moni::Matcher>, int64_t,
                                                      int64_t) override {
    return std::vector<std::string>{};
  }
  moni::Result<std::vector<moni::Metadata>> metadata(std::string_view) override {
    return std::vector<moni::Metadata>{};
  }
  moni::Result<void> command(std::string_view name,
                             std::span<const std::string_view> args) override {
    if (name != "backup") return moni::make_error(std::string(name) + " is not supported");
    std::ofstream f(std::string(ctx_.data_dir()) + "/" + std::string(ctx_.instance_name()) +
                    ".cmd");
    f << name;
    for (auto a : args) f << " " << a;
    f << "\n";
    return {};
  }

 private:
  moni::Context& ctx_;
};

MONI_EXPORT_PLUGIN(TestStore)
