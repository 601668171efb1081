#include "options.hpp"

#include <algorithm>

namespace moni::node {

namespace {

bool known(std::string_view name) {
  return std::find(kCollectorNames.begin(), kCollectorNames.end(), name) != kCollectorNames.end();
}

std::string known_list() {
  std::string s;
  for (auto n : kCollectorNames) s += (s.empty() ? "" : ", ") + std::string(n);
  return s;
}

// Reads a pattern option; `def` applies when the key is absent.
void pattern(ConfigReader& r, std::string_view key, std::string_view def, Pattern& out) {
  ConfigView node = r.table_view().get(key);
  std::optional<std::string> v = r.optional_string(key);
  std::string expr = v ? *v : std::string(def);
  if (expr.empty()) return;
  std::string err;
  if (!out.compile(expr, err)) r.error(node, std::string(key) + ": invalid regular expression: " + err);
}

void name_filter(ConfigReader& r, std::string_view def_exclude, NameFilter& out) {
  bool inc = r.has("device_include"), exc = r.has("device_exclude");
  if (inc && exc)
    r.error(r.table_view().get("device_include"),
            "device_include and device_exclude are mutually exclusive; set only one");
  pattern(r, "device_include", "", out.include);
  // An include list replaces the default exclude, as in node_exporter.
  pattern(r, "device_exclude", inc ? std::string_view() : def_exclude, out.exclude);
}

std::vector<std::string> names(ConfigReader& r, std::string_view key,
                               std::vector<std::string> def) {
  ConfigView node = r.table_view().get(key);
  auto v = r.strings(key, std::move(def));
  for (size_t i = 0; i < v.size(); ++i)
    if (!known(v[i]))
      r.error(node.present() && i < node.size() ? node.at(i) : node,
              std::string(key) + ": unknown collector \"" + v[i] + "\" (known: " + known_list() +
                  ")");
  return v;
}

}  // namespace

Options parse_options(const ConfigView& cfg) {
  Options o;
  ConfigReader r(cfg, "node");
  o.procfs = r.string("procfs", o.procfs);
  o.sysfs = r.string("sysfs", o.sysfs);
  o.rootfs = r.string("rootfs", o.rootfs);
  o.udev_data = r.string("udev_data", o.udev_data);

  std::vector<std::string> all(kCollectorNames.begin(), kCollectorNames.end());
  std::vector<std::string> enable = names(r, "enable", all);
  std::vector<std::string> disable = names(r, "disable", {});
  for (auto n : kCollectorNames) {
    bool on = std::find(enable.begin(), enable.end(), n) != enable.end() &&
              std::find(disable.begin(), disable.end(), n) == disable.end();
    if (on) o.enabled.emplace_back(n);
  }

  {
    ConfigReader t = r.table("cpu");
    o.cpu_guest = t.boolean("guest", true);
  }
  {
    ConfigReader t = r.table("diskstats");
    name_filter(t, kDiskstatsDeviceExclude, o.diskstats_devices);
  }
  {
    ConfigReader t = r.table("filesystem");
    pattern(t, "mount_points_exclude", kMountPointsExclude, o.mount_points_exclude);
    pattern(t, "fs_types_exclude", kFsTypesExclude, o.fs_types_exclude);
    o.mount_timeout_ms = t.duration_ms("mount_timeout", o.mount_timeout_ms);
    if (o.mount_timeout_ms <= 0)
      t.error(t.table_view().get("mount_timeout"), "mount_timeout must be > 0");
  }
  {
    ConfigReader t = r.table("netdev");
    name_filter(t, kNetdevDeviceExclude, o.netdev_devices);
  }
  {
    ConfigReader t = r.table("netstat");
    pattern(t, "fields", kNetstatFields, o.netstat_fields);
  }
  {
    ConfigReader t = r.table("vmstat");
    pattern(t, "fields", kVmstatFields, o.vmstat_fields);
  }
  {
    ConfigReader t = r.table("netclass");
    pattern(t, "ignored_devices", "^$", o.netclass_ignored_devices);
    o.netclass_ignore_invalid_speed = t.boolean("ignore_invalid_speed", false);
  }
  {
    ConfigReader t = r.table("arp");
    name_filter(t, "", o.arp_devices);
  }
  {
    ConfigReader t = r.table("textfile");
    o.textfile_directory = t.string("directory", "");
  }
  r.finish();
  return o;
}

}  // namespace moni::node
