#include "endpoint.hpp"

#include <snappy.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <sstream>

#include "http_client/http_client.hpp"

namespace moni::remote_write {

namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::string> read_secret(const std::string& path, std::string_view what) {
  std::ifstream f(path);
  if (!f) return make_error("remote_write: cannot read " + std::string(what) + " " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// A receiver's error body for a log line: at most 1024 bytes (Prometheus's
// maxErrMsgLen), control characters and invalid bytes as '?', so a hostile
// receiver cannot flood or forge log lines.
std::string loggable(std::string_view body) {
  constexpr size_t kMax = 1024;
  std::string out;
  for (size_t i = 0; i < body.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(body[i]);
    out.push_back(c < 0x20 || c == 0x7f || c >= 0x80 ? '?' : static_cast<char>(c));
  }
  while (!out.empty() && out.back() == '?') out.pop_back();  // the trailing newline
  if (body.size() > kMax) out += "...";
  return out;
}

// Retry-After: delay-seconds or an HTTP-date (RFC 9110). -1 when absent/bad.
int64_t parse_retry_after_ms(const std::string& v, int64_t now_ms) {
  if (v.empty()) return -1;
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return v.size() > 9 ? -1 : std::stoll(v) * 1000;
  std::tm tm{};
  if (!strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S", &tm)) return -1;
  int64_t at = static_cast<int64_t>(timegm(&tm)) * 1000;
  return std::max<int64_t>(0, at - now_ms);
}

uint64_t metadata_hash(const moni_metadata& m) {
  std::string s;
  s += std::to_string(m.type);
  s += '\0';
  s += sv(m.help);
  s += '\0';
  s += sv(m.unit);
  return stable_hash(s);
}

}  // namespace

Endpoint::Endpoint(Context& ctx, EndpointConfig cfg, std::string queue_dir)
    : ctx_(ctx), cfg_(std::move(cfg)), queue_dir_(std::move(queue_dir)) {}

Endpoint::~Endpoint() { stop(0); }

Result<void> Endpoint::start() {
  headers_.clear();
  headers_.emplace_back("Content-Encoding", "snappy");
  headers_.emplace_back("Content-Type", "application/x-protobuf");
  headers_.emplace_back("User-Agent", "moni-remote-write/" MONI_REMOTE_WRITE_VERSION);
  headers_.emplace_back("X-Prometheus-Remote-Write-Version", "0.1.0");
  if (!cfg_.basic_auth_username.empty()) {
    std::string pw = cfg_.basic_auth_password;
    if (!cfg_.basic_auth_password_file.empty()) {
      auto r = read_secret(cfg_.basic_auth_password_file, "basic_auth.password_file");
      if (!r) return r.error();
      pw = *r;
    }
    headers_.emplace_back("Authorization", http_client::basic_auth(cfg_.basic_auth_username, pw));
  }
  std::string token = cfg_.bearer_token;
  if (!cfg_.bearer_token_file.empty()) {
    auto r = read_secret(cfg_.bearer_token_file, "bearer_token_file");
    if (!r) return r.error();
    token = *r;
  }
  if (!token.empty()) headers_.emplace_back("Authorization", "Bearer " + token);
  for (const auto& h : cfg_.headers) headers_.push_back(h);

  auto q = DiskQueue::open(queue_dir_, cfg_.queue_max_size, cfg_.max_shards);
  if (!q) return q.error();
  queue_ = std::move(*q);
  uint32_t parts = queue_->partitions();
  builder_ = std::make_unique<RecordBuilder>(parts, cfg_.max_samples_per_send);
  claimed_.assign(parts, false);
  backoff_until_ms_.assign(parts, 0);
  backoff_ms_.assign(parts, 0);
  retry_upto_.assign(parts, 0);
  clients_.clear();
  for (uint32_t i = 0; i < cfg_.max_shards; ++i) {
    http_client::ClientOptions co;
    co.timeout_ms = cfg_.remote_timeout_ms;
    // A receiver's 2xx with a body over 1 MiB is still a success (else the
    // data would be resent forever); error bodies are only logged, cut.
    co.keep_status_of_long_body = true;
    auto c = HttpClient::create(cfg_.url, cfg_.tls, co);
    if (!c) return make_error("remote_write: endpoint " + cfg_.name + ": " + c.error().message);
    clients_.push_back(std::move(*c));
  }
  QueueStats st = queue_->stats();
  if (st.samples)
    ctx_.info("remote_write: endpoint " + cfg_.name + ": resuming with " +
              std::to_string(st.samples) + " queued samples from " + queue_dir_);
  stopping_ = false;
  started_ = true;
  for (uint32_t i = 0; i < cfg_.max_shards; ++i)
    threads_.emplace_back([this, i] { shard_loop(i); });
  return {};
}

void Endpoint::stop(int64_t grace_ms) {
  {
    std::unique_lock lk(mu_);
    if (threads_.empty() && !queue_) return;
    stopping_ = true;
    cv_.notify_all();
    // In-flight requests may finish (so that an acknowledged request is also
    // removed locally); after the grace period they are cut off.
    cv_.wait_for(lk, std::chrono::milliseconds(grace_ms), [&] { return busy_ == 0; });
    for (auto& c : clients_) c->abort();
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
  clients_.clear();
  started_ = false;
  queue_.reset();
}

Result<void> Endpoint::write(const BatchView& batch) {
  if (!started_) return make_error("remote_write: endpoint " + cfg_.name + " is not started");
  const bool plain = cfg_.external_labels.empty() && cfg_.relabel.empty();
  for (const moni_sample& s : batch.samples()) {
    enc_.clear();
    if (plain) {
      for (uint32_t i = 0; i < s.label_count; ++i)
        encode_label(enc_, sv(s.labels[i].name), sv(s.labels[i].value));
    } else {
      // External labels are added where the series has no such label, then
      // write_relabel_configs run (as in Prometheus).
      labels_.clear();
      const auto& ext = cfg_.external_labels;
      size_t e = 0;
      for (uint32_t i = 0; i < s.label_count; ++i) {
        std::string_view n = sv(s.labels[i].name);
        while (e < ext.size() && ext[e].first < n) {
          labels_.push(ext[e].first, ext[e].second);
          ++e;
        }
        if (e < ext.size() && ext[e].first == n) ++e;
        labels_.push(n, sv(s.labels[i].value));
      }
      for (; e < ext.size(); ++e) labels_.push(ext[e].first, ext[e].second);
      if (!cfg_.relabel.empty() && !relabel(cfg_.relabel, labels_, scratch_)) {
        relabel_dropped_++;
        continue;
      }
      for (size_t i = 0; i < labels_.size(); ++i)
        encode_label(enc_, labels_[i].name, labels_[i].value);
    }
    builder_->add(enc_, s.value, s.timestamp_ms);
  }
  int64_t now = wall_ms();
  if (cfg_.send_metadata)
    for (const moni_metadata& m : batch.metadata()) {
      uint64_t h = metadata_hash(m);
      auto [it, inserted] = metadata_sent_.try_emplace(std::string(sv(m.family)), h, now);
      if (!inserted && it->second.first == h &&
          now - it->second.second < cfg_.metadata_send_interval_ms)
        continue;
      it->second = {h, now};
      builder_->add_metadata(sv(m.family), static_cast<MetricType>(m.type), sv(m.help), sv(m.unit));
    }
  builder_->finish(records_);
  if (records_.empty()) return {};
  uint64_t dropped = 0;
  auto r = queue_->append(records_, now, &dropped);
  if (dropped) {
    dropped_ += dropped;
    log_throttled(LogLevel::Warn, "remote_write: endpoint " + cfg_.name +
                                      ": queue_max_size reached, dropped the oldest " +
                                      std::to_string(dropped) + " samples");
  }
  if (!r) return r;
  std::lock_guard l(mu_);
  cv_.notify_all();
  return {};
}

void Endpoint::flush() {
  std::lock_guard l(mu_);
  flush_mark_ms_ = wall_ms();
  cv_.notify_all();
}

uint32_t Endpoint::desired_shards() const {
  // Scale with the backlog: one shard per full request waiting.
  uint64_t pending = queue_ ? queue_->stats().samples : 0;
  uint64_t want = (pending + cfg_.max_samples_per_send - 1) / cfg_.max_samples_per_send;
  return static_cast<uint32_t>(std::clamp<uint64_t>(want, cfg_.min_shards, cfg_.max_shards));
}

int Endpoint::pick(int64_t now, int64_t* wake) {
  uint32_t n = static_cast<uint32_t>(claimed_.size());
  for (uint32_t k = 0; k < n; ++k) {
    uint32_t p = (rr_ + k) % n;
    if (claimed_[p]) continue;
    PartitionState st = queue_->partition(p);
    if (st.records == 0 || st.leased) continue;
    if (backoff_until_ms_[p] > now) {
      *wake = std::min(*wake, backoff_until_ms_[p]);
      continue;
    }
    bool ready = st.samples >= cfg_.max_samples_per_send ||
                 now - st.oldest_enqueued_ms >= cfg_.batch_send_deadline_ms ||
                 st.oldest_enqueued_ms <= flush_mark_ms_ || stopping_;
    if (!ready) {
      *wake = std::min(*wake, st.oldest_enqueued_ms + cfg_.batch_send_deadline_ms);
      continue;
    }
    claimed_[p] = true;
    rr_ = (p + 1) % n;
    return static_cast<int>(p);
  }
  return -1;
}

void Endpoint::shard_loop(uint32_t idx) {
  HttpClient& client = *clients_[idx];
  std::unique_lock lk(mu_);
  while (!stopping_) {
    int64_t now = wall_ms();
    uint32_t want = desired_shards();
    if (idx >= want) {
      cv_.wait_for(lk, std::chrono::milliseconds(250));
      continue;
    }
    int64_t wake = now + 1000;
    int p = pick(now, &wake);
    if (p < 0) {
      cv_.wait_for(lk, std::chrono::milliseconds(std::max<int64_t>(1, wake - now)));
      continue;
    }
    ++busy_;
    uint64_t upto = retry_upto_[p];
    lk.unlock();
    auto lease = queue_->lease(static_cast<uint32_t>(p), cfg_.max_samples_per_send, upto);
    bool ok = true;
    if (!lease) {
      log_throttled(LogLevel::Error, lease.error().message);
      ok = false;
    } else if (*lease) {
      send(client, **lease);
    }
    lk.lock();
    claimed_[p] = false;
    if (!ok) backoff_until_ms_[p] = wall_ms() + 1000;
    --busy_;
    cv_.notify_all();
  }
}

void Endpoint::send(HttpClient& client, Lease& lease) {
  std::string compressed;
  snappy::Compress(lease.body.data(), lease.body.size(), &compressed);
  http_client::HttpReply reply = client.post(compressed, headers_);
  if (reply.body.size() > 512) reply.body.resize(512);  // only quoted in messages
  const uint32_t p = lease.partition;
  auto release = [&](bool remove) {
    auto r = queue_->release(lease, remove);
    if (!r) log_throttled(LogLevel::Error, r.error().message);
  };
  if (reply.status >= 200 && reply.status < 300) {
    release(true);
    sent_ += lease.samples;
    std::lock_guard l(mu_);
    backoff_ms_[p] = 0;
    retry_upto_[p] = 0;
    return;
  }
  bool retry = reply.status == 0 || reply.status == 429 || reply.status >= 500;
  if (!retry) {
    // 4xx (and anything unexpected): the receiver will never take this data.
    release(true);
    failed_ += lease.samples;
    log_throttled(LogLevel::Warn, "remote_write: endpoint " + cfg_.name + ": " + cfg_.url_text +
                                      " rejected " + std::to_string(lease.samples) +
                                      " samples with HTTP " + std::to_string(reply.status) +
                                      " (dropped): " + loggable(reply.body));
    std::lock_guard l(mu_);
    backoff_ms_[p] = 0;
    retry_upto_[p] = 0;
    return;
  }
  release(false);
  std::lock_guard l(mu_);
  retry_upto_[p] = lease.last_seq;
  if (stopping_) return;  // cut off by stop(): not a failed attempt
  retried_ += lease.samples;
  int64_t now = wall_ms();
  int64_t b =
      backoff_ms_[p] ? std::min(backoff_ms_[p] * 2, cfg_.max_backoff_ms) : cfg_.min_backoff_ms;
  backoff_ms_[p] = b;
  int64_t delay = b;
  int64_t ra = parse_retry_after_ms(reply.retry_after, now);
  if (ra >= 0) delay = std::max(delay, std::min(ra, cfg_.max_retry_after_ms));
  backoff_until_ms_[p] = now + delay;
  std::string why = reply.status
                        ? "HTTP " + std::to_string(reply.status) + ": " + loggable(reply.body)
                        : reply.error;
  if (now - last_log_ms_ >= 10000) {
    last_log_ms_ = now;
    ctx_.warn("remote_write: endpoint " + cfg_.name + ": sending to " + cfg_.url_text +
              " failed, retrying in " + format_duration_ms(delay) + ": " + why);
  }
}

void Endpoint::log_throttled(LogLevel level, const std::string& msg) {
  int64_t now = wall_ms();
  {
    std::lock_guard l(mu_);
    if (now - last_log_ms_ < 10000) return;
    last_log_ms_ = now;
  }
  ctx_.log(level, msg);
}

void Endpoint::metrics(Batch& out) {
  QueueStats st = queue_ ? queue_->stats() : QueueStats{};
  double lag = st.oldest_enqueued_ms
                   ? std::max<int64_t>(0, wall_ms() - st.oldest_enqueued_ms) / 1000.0
                   : 0.0;
  const std::string& ep = cfg_.name;
  out.add("moni_remote_write_samples_sent_total", {{"endpoint", ep}}, static_cast<double>(sent_));
  out.add("moni_remote_write_samples_failed_total", {{"endpoint", ep}},
          static_cast<double>(failed_));
  out.add("moni_remote_write_samples_retried_total", {{"endpoint", ep}},
          static_cast<double>(retried_));
  out.add("moni_remote_write_samples_dropped_total", {{"endpoint", ep}},
          static_cast<double>(dropped_));
  out.add("moni_remote_write_samples_relabel_dropped_total", {{"endpoint", ep}},
          static_cast<double>(relabel_dropped_));
  out.add("moni_remote_write_samples_pending", {{"endpoint", ep}}, static_cast<double>(st.samples));
  out.add("moni_remote_write_queue_bytes", {{"endpoint", ep}}, static_cast<double>(st.bytes));
  out.add("moni_remote_write_lag_seconds", {{"endpoint", ep}}, lag);
  out.add("moni_remote_write_shards", {{"endpoint", ep}},
          started_ ? static_cast<double>(desired_shards()) : 0.0);
}

}  // namespace moni::remote_write
