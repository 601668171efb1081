#include "grafana_sync.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

namespace moni::grafana {
namespace {

using nlohmann::json;

// Percent-encodes a path segment (data source names may hold spaces, '/').
std::string encode_segment(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

class Api {
 public:
  Api(HttpClient& c, const std::string& token, std::string base_path)
      : c_(c), base_path_(std::move(base_path)) {
    headers_ = {{"Accept", "application/json"},
                {"Content-Type", "application/json"},
                {"User-Agent", "moni-grafana"}};
    if (!token.empty()) headers_.push_back({"Authorization", "Bearer " + token});
  }
  // The reply's status and JSON body (null when empty or not JSON); a
  // transport failure is an error.
  Result<std::pair<unsigned, json>> call(std::string_view method, const std::string& target,
                                         const json* body = nullptr) {
    last_ = std::string(method) + " " + target;
    HttpReply r = c_.request(
        method, base_path_ + target,
        body ? body->dump(-1, ' ', false, json::error_handler_t::replace) : std::string(),
        headers_);
    if (r.status == 0)
      return make_error(std::string(method) + " " + target + ": no answer (" + r.error + ")");
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded()) j = nullptr;
    return std::pair<unsigned, json>{r.status, std::move(j)};
  }
  // The last request made, for errors found in its answer.
  const std::string& last() const { return last_; }
  static Error failed(std::string_view method, const std::string& target, unsigned status,
                      const json& body) {
    std::string msg = body.is_object() && body.contains("message") && body["message"].is_string()
                          ? body["message"].get<std::string>()
                          : (body.is_null() ? std::string() : body.dump().substr(0, 200));
    std::string hint;
    if (status == 401) hint = " (check the token)";
    if (status == 403) hint = " (the token's role may not do this; it needs Editor or Admin)";
    return Error{std::string(method) + " " + target + ": HTTP " + std::to_string(status) + hint +
                 (msg.empty() ? "" : ": " + msg)};
  }

 private:
  HttpClient& c_;
  std::string base_path_;
  Headers headers_;
  std::string last_;
};

#define TRY_CALL(var, expr)                        \
  auto var##_r = (expr);                           \
  if (!var##_r) return std::move(var##_r).error(); \
  auto& var = var##_r.value()

json wanted_datasource(const SyncOptions& o) {
  return {{"name", o.datasource_name},
          {"type", "prometheus"},
          {"access", "proxy"},
          {"url", o.datasource_url},
          {"jsonData",
           {{"httpMethod", "POST"},
            {"prometheusType", "Prometheus"},
            {"prometheusVersion", "2.42.0"},
            {"timeInterval", o.scrape_interval}}}};
}

// True when Grafana's data source already has every field we manage
// (other jsonData keys a user set are kept).
bool datasource_matches(const json& have, const json& want) {
  for (const char* k : {"type", "access", "url"})
    if (!have.contains(k) || have[k] != want[k]) return false;
  if (!have.contains("jsonData") || !have["jsonData"].is_object()) return false;
  for (const auto& [k, v] : want["jsonData"].items())
    if (!have["jsonData"].contains(k) || have["jsonData"][k] != v) return false;
  return true;
}

Result<std::string> sync_datasource(Api& api, const SyncOptions& o, SyncReport& rep,
                                    const std::function<void(const std::string&)>& log) {
  const std::string get = "/api/datasources/name/" + encode_segment(o.datasource_name);
  TRY_CALL(have, api.call("GET", get));
  json want = wanted_datasource(o);
  if (have.first == 404) {
    want["uid"] = o.datasource_uid;
    TRY_CALL(created, api.call("POST", "/api/datasources", &want));
    if (created.first != 200)
      return Api::failed("POST", "/api/datasources", created.first, created.second);
    rep.datasource_created = true;
    std::string uid = o.datasource_uid;
    if (created.second.is_object() && created.second.contains("datasource") &&
        created.second["datasource"].contains("uid"))
      uid = created.second["datasource"]["uid"].get<std::string>();
    log("created data source '" + o.datasource_name + "' (uid " + uid + ") for " +
        o.datasource_url);
    return uid;
  }
  if (have.first != 200) return Api::failed("GET", get, have.first, have.second);
  const json& ds = have.second;
  if (!ds.is_object() || !ds.contains("id") || !ds.contains("uid"))
    return make_error("GET " + get + ": the answer has no id/uid: " + ds.dump().substr(0, 200));
  const std::string uid = ds["uid"].get<std::string>();
  if (datasource_matches(ds, want)) return uid;
  // PUT replaces the whole data source: keep what we do not manage.
  json put = want;
  put["uid"] = uid;
  if (ds.contains("isDefault")) put["isDefault"] = ds["isDefault"];
  if (ds.contains("jsonData") && ds["jsonData"].is_object()) {
    json jd = ds["jsonData"];
    jd.update(want["jsonData"]);
    put["jsonData"] = jd;
  }
  for (const char* k : {"basicAuth", "basicAuthUser", "withCredentials", "version"})
    if (ds.contains(k)) put[k] = ds[k];
  const std::string target = "/api/datasources/" + std::to_string(ds["id"].get<int64_t>());
  TRY_CALL(updated, api.call("PUT", target, &put));
  if (updated.first != 200) return Api::failed("PUT", target, updated.first, updated.second);
  rep.datasource_updated = true;
  log("updated data source '" + o.datasource_name + "' (uid " + uid + ") to " + o.datasource_url);
  return uid;
}

struct Folder {
  std::string uid;
  int64_t id = 0;
};

Result<Folder> sync_folder(Api& api, const SyncOptions& o, SyncReport& rep,
                           const std::function<void(const std::string&)>& log) {
  if (o.folder.empty()) return Folder{};
  TRY_CALL(list, api.call("GET", "/api/folders?limit=1000"));
  if (list.first != 200) return Api::failed("GET", "/api/folders", list.first, list.second);
  if (list.second.is_array())
    for (const auto& f : list.second)
      if (f.is_object() && f.value("title", "") == o.folder)
        return Folder{f.value("uid", ""), f.value("id", int64_t{0})};
  json body = {{"title", o.folder}};
  TRY_CALL(created, api.call("POST", "/api/folders", &body));
  if (created.first != 200)
    return Api::failed("POST", "/api/folders", created.first, created.second);
  rep.folder_created = true;
  Folder f{created.second.value("uid", ""), created.second.value("id", int64_t{0})};
  log("created folder '" + o.folder + "' (uid " + f.uid + ")");
  return f;
}

// Points every Prometheus data source reference of the dashboard (panels,
// targets, template variables) at the managed data source.
void retarget(json& j, const std::string& uid) {
  if (j.is_object()) {
    for (auto& [k, v] : j.items()) {
      if (k == "datasource" && v.is_object() && v.value("type", "") == "prometheus")
        v["uid"] = uid;
      else
        retarget(v, uid);
    }
  } else if (j.is_array()) {
    for (auto& v : j) retarget(v, uid);
  }
}

json without_revision(json d) {
  if (d.is_object()) {
    d.erase("id");
    d.erase("version");
  }
  return d;
}

// "line:column" (1-based) of the byte nlohmann's parse_error::byte names
// (1-based; one past the end for a truncated file).
std::string json_error_position(std::string_view text, size_t byte) {
  size_t upto = std::min(byte > 0 ? byte - 1 : 0, text.size());
  size_t line = 1, col = 1;
  for (size_t i = 0; i < upto; ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return std::to_string(line) + ":" + std::to_string(col);
}

Result<void> sync_dashboards(Api& api, const SyncOptions& o, const Folder& folder,
                             const std::string& ds_uid, SyncReport& rep,
                             const std::function<void(const std::string&)>& log) {
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(o.dashboards_dir, ec))
    if (e.path().extension() == ".json") files.push_back(e.path());
  if (ec) return make_error("dashboards directory \"" + o.dashboards_dir + "\": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    json d;
    try {
      d = json::parse(ss.str());
    } catch (const json::parse_error& e) {
      // e.what() carries "line L, column C"; path:L:C is what editors jump to.
      return make_error(path.string() + ":" + json_error_position(ss.str(), e.byte) +
                        ": not valid JSON: " + e.what());
    }
    if (!d.is_object()) return make_error(path.string() + ":1:1: not a JSON object");
    if (!d.contains("uid") || !d["uid"].is_string() || d["uid"].get<std::string>().empty())
      return make_error(path.string() + ": the dashboard needs a \"uid\" (it is updated by uid)");
    const std::string uid = d["uid"].get<std::string>();
    retarget(d, ds_uid);
    d["id"] = nullptr;  // Grafana finds the existing one by uid
    d.erase("version");
    const std::string get = "/api/dashboards/uid/" + encode_segment(uid);
    TRY_CALL(have, api.call("GET", get));
    if (have.first == 200 && have.second.is_object()) {
      const json& meta = have.second.value("meta", json::object());
      bool same_folder =
          meta.value("folderUid", "") == folder.uid ||
          (!meta.contains("folderUid") && meta.value("folderId", int64_t{0}) == folder.id);
      if (same_folder &&
          without_revision(have.second.value("dashboard", json())) == without_revision(d)) {
        ++rep.dashboards_unchanged;
        continue;
      }
    } else if (have.first != 404) {
      return Api::failed("GET", get, have.first, have.second);
    }
    json body = {{"dashboard", d}, {"overwrite", true}, {"message", o.message}};
    if (!folder.uid.empty()) body["folderUid"] = folder.uid;
    body["folderId"] = folder.id;
    TRY_CALL(saved, api.call("POST", "/api/dashboards/db", &body));
    if (saved.first != 200)
      return Api::failed("POST", "/api/dashboards/db (" + uid + ")", saved.first, saved.second);
    ++rep.dashboards_uploaded;
    log(std::string(have.first == 404 ? "created" : "updated") + " dashboard '" +
        d.value("title", uid) + "' (uid " + uid + ", version " +
        std::to_string(saved.second.value("version", int64_t{0})) + ")");
  }
  return {};
}

}  // namespace

Result<SyncReport> sync(HttpClient& client, const SyncOptions& opts,
                        const std::function<void(const std::string&)>& log) {
  Api api(client, opts.token, opts.base_path);
  SyncReport rep;
  // Grafana's answers are read with nlohmann's typed accessors, which throw
  // when a field has another type than documented (a proxy's HTML page, an
  // older or newer Grafana): an error of this attempt, never an exception
  // out of the plugin's thread. api.last() names the request.
  try {
    TRY_CALL(ds_uid, sync_datasource(api, opts, rep, log));
    rep.datasource_uid = ds_uid;
    TRY_CALL(folder, sync_folder(api, opts, rep, log));
    auto r = sync_dashboards(api, opts, folder, ds_uid, rep, log);
    if (!r) return std::move(r).error();
  } catch (const json::exception& e) {
    return make_error(api.last() + ": unexpected answer from Grafana: " + e.what());
  } catch (const std::exception& e) {  // filesystem errors while listing dashboards, bad_alloc
    return make_error(e.what());
  }
  return rep;
}

}  // namespace moni::grafana
