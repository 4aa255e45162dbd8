#include "calls/store/webhook.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>
#include <vector>

#include "base/log.hpp"
#include "calls/store/record_json.hpp"

namespace callrelay::calls {

namespace {

using Clock = std::chrono::steady_clock;

/// curl_global_init is not safe to race with other libcurl use; do it once, first.
void init_curl_once() {
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (rc != CURLE_OK) throw std::runtime_error("webhook: libcurl failed to initialise");
}

size_t discard_body(char*, size_t size, size_t count, void*) { return size * count; }

}  // namespace

std::string webhook_signature(std::string_view secret, std::string_view timestamp,
                              std::string_view body) {
  std::string message;
  message.reserve(timestamp.size() + 1 + body.size());
  message.append(timestamp).append(".").append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac,
            &mac_len)) {
    throw std::runtime_error("webhook: HMAC-SHA256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256=";
  for (unsigned int i = 0; i < mac_len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xf]);
  }
  return out;
}

/// One libcurl easy handle (keeps the connection to the receiver alive between records) driven
/// by a multi handle, so that the destructor can interrupt a request with wakeup().
class Webhook::Client {
 public:
  explicit Client(const WebhookConfig& config)
      : easy_(curl_easy_init()), multi_(curl_multi_init()) {
    if (!easy_ || !multi_) throw std::runtime_error("webhook: libcurl handles unavailable");
    curl_easy_setopt(easy_, CURLOPT_URL, config.url.c_str());
    curl_easy_setopt(easy_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy_, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy_, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy_, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, static_cast<long>(config.timeout_ms));
    curl_easy_setopt(easy_, CURLOPT_USERAGENT, "callrelay");
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, error_);
  }
  ~Client() {
    curl_multi_cleanup(multi_);
    curl_easy_cleanup(easy_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  /// POSTs `body`; the HTTP status (0 on a network error, with `error` set). Returns early
  /// with 0 when `stop` becomes true.
  long post(const std::string& body, curl_slist* headers, const std::atomic<bool>& stop,
            std::string& error) {
    error_[0] = '\0';
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_multi_add_handle(multi_, easy_);
    CURLcode result = CURLE_ABORTED_BY_CALLBACK;
    int running = 1;
    while (!stop.load()) {
      if (curl_multi_perform(multi_, &running) != CURLM_OK) break;
      if (running == 0) {
        int left = 0;
        if (CURLMsg* msg = curl_multi_info_read(multi_, &left); msg && msg->msg == CURLMSG_DONE) {
          result = msg->data.result;
        }
        break;
      }
      curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
    curl_multi_remove_handle(multi_, easy_);
    if (result != CURLE_OK) {
      error = error_[0] ? error_ : curl_easy_strerror(result);
      return 0;
    }
    long status = 0;
    curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &status);
    return status;
  }

  /// Interrupts curl_multi_poll from another thread.
  void wakeup() { curl_multi_wakeup(multi_); }

 private:
  CURL* easy_;
  CURLM* multi_;
  char error_[CURL_ERROR_SIZE] = {};
};

Webhook::Webhook(WebhookConfig config) : Webhook(std::move(config), Options{}) {}

Webhook::Webhook(WebhookConfig config, Options options)
    : config_(std::move(config)), options_(options), rng_(std::random_device{}()) {
  if (config_.url.rfind("http://", 0) != 0 && config_.url.rfind("https://", 0) != 0) {
    throw std::invalid_argument("calls.webhook.url: must start with http:// or https://, not '" +
                                config_.url + "'");
  }
  if (config_.max_attempts == 0) config_.max_attempts = 1;
  if (config_.secret.empty()) {
    log::warn("webhook.unsigned", {},
              "calls.webhook: no secret, so webhook requests are not signed");
  }
  init_curl_once();
  client_ = std::make_unique<Client>(config_);
  thread_ = std::thread([this] { run(); });
}

Webhook::~Webhook() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  client_->wakeup();
  thread_.join();
  if (!queue_.empty()) {
    log::warn("webhook.unsent", {{"records", queue_.size()}}, "calls.webhook: ", queue_.size(),
              " records not sent at shutdown");
  }
}

bool Webhook::enqueue(const CallRecord& record) {
  Item item{record.id, to_json(record).dump(), 0, Clock::now()};
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && queue_.size() + (sending_ ? 1 : 0) < config_.queue_size) {
      queue_.push_back(std::move(item));
      pending_.store(queue_.size() + (sending_ ? 1 : 0), std::memory_order_relaxed);
      wake_.notify_one();
      return true;
    }
  }
  if (dropped_.fetch_add(1, std::memory_order_relaxed) == 0) {
    log::warn("webhook.queue_full", {{"queue_size", config_.queue_size}},
              "calls.webhook: queue full (", config_.queue_size, " records); dropping records");
  }
  return false;
}

std::optional<Webhook::Item> Webhook::take_due(std::optional<Clock::time_point>& wake_at) {
  const auto now = Clock::now();
  wake_at.reset();
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (it->due <= now) {
      Item item = std::move(*it);
      queue_.erase(it);
      return item;
    }
    if (!wake_at || it->due < *wake_at) wake_at = it->due;
  }
  return std::nullopt;
}

std::chrono::milliseconds Webhook::backoff(uint32_t attempts) {
  // Doubling from backoff_base to backoff_max, then "equal jitter": a uniform wait in
  // [d/2, d], so that receivers recovering from an outage are not hit by every server at once.
  auto d = options_.backoff_base;
  for (uint32_t i = 1; i < attempts && d < options_.backoff_max; ++i) d *= 2;
  d = std::min(d, options_.backoff_max);
  std::uniform_int_distribution<int64_t> jitter(d.count() / 2, d.count());
  return std::chrono::milliseconds{jitter(rng_)};
}

bool Webhook::settle(Item& item, long status, const std::string& error) {
  ++item.attempts;
  if (status >= 200 && status < 300) {
    delivered_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  const std::string why = status ? "HTTP " + std::to_string(status) : error;
  if (item.attempts >= config_.max_attempts) {
    failed_.fetch_add(1, std::memory_order_relaxed);
    log::warn("webhook.gave_up",
              {{"call_id", item.id}, {"attempts", item.attempts}, {"error", why}},
              "calls.webhook: giving up on record ", item.id, " after ", item.attempts,
              " attempts (", why, ")");
    return false;
  }
  retries_.fetch_add(1, std::memory_order_relaxed);
  log::debug("webhook.retry", {{"call_id", item.id}, {"attempts", item.attempts}, {"error", why}},
             "calls.webhook: record ", item.id, " attempt ", item.attempts, ": ", why);
  item.due = Clock::now() + backoff(item.attempts);
  return true;
}

long Webhook::send(const std::string& body, std::string& error) {
  using namespace std::chrono;
  const std::string timestamp =
      std::to_string(duration_cast<seconds>(system_clock::now().time_since_epoch()).count());
  std::vector<std::string> lines = {
      "Content-Type: application/json", "X-Callrelay-Event: call.ended",
      "X-Callrelay-Timestamp: " + timestamp, "Expect:"};  // no 100-continue round trip
  if (!config_.secret.empty()) {
    lines.push_back("X-Callrelay-Signature: " + webhook_signature(config_.secret, timestamp, body));
  }
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(nullptr, curl_slist_free_all);
  for (const std::string& line : lines) {
    curl_slist* grown = curl_slist_append(headers.get(), line.c_str());
    if (!grown) {
      error = "out of memory";
      return 0;
    }
    headers.release();  // `grown` is the same list one line longer, or the first line
    headers.reset(grown);
  }
  return client_->post(body, headers.get(), stopping_, error);
}

void Webhook::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    std::optional<Clock::time_point> wake_at;
    std::optional<Item> item = take_due(wake_at);
    if (!item) {
      // enqueue() notifies under the mutex held since take_due(), so no wakeup is lost; a
      // new record or the end of a backoff, whichever comes first, starts the loop again.
      if (wake_at) {
        wake_.wait_until(lock, *wake_at);
      } else {
        wake_.wait(lock, [this] { return stopping_.load() || !queue_.empty(); });
      }
      continue;
    }
    sending_ = true;
    lock.unlock();
    std::string error;
    const long status = send(item->body, error);
    lock.lock();
    sending_ = false;
    if (stopping_ && status == 0) {
      queue_.push_front(std::move(*item));  // aborted: counted as not sent by the destructor
      break;
    }
    if (settle(*item, status, error)) queue_.push_front(std::move(*item));
    pending_.store(queue_.size(), std::memory_order_relaxed);
  }
}

}  // namespace callrelay::calls
