// Webhook against a loopback HTTP receiver written here: signed deliveries, retries on 5xx,
// giving up on an unreachable URL, a bounded queue, no redirects, a prompt stop.
#include "calls/store/webhook.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "calls/store/record_json.hpp"
#include "store_test_support.hpp"

namespace callrelay::calls {
namespace {

using namespace std::chrono_literals;
using test::make_record;

constexpr auto kPatience = 30s;  // only reached when the webhook is broken
constexpr char kSecret[] = "webhook-secret";

/// HMAC-SHA256 hex, computed here independently of webhook_signature().
std::string expected_signature(const std::string& timestamp, const std::string& body) {
  const std::string message = timestamp + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), kSecret, sizeof kSecret - 1,
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  std::string hex = "sha256=";
  char byte[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(byte, sizeof byte, "%02x", mac[i]);
    hex += byte;
  }
  return hex;
}

struct Request {
  std::string request_line;
  std::map<std::string, std::string> headers;  ///< names lowercased
  std::string body;
};

/// A one-request-per-connection HTTP/1.1 server on 127.0.0.1, port 0. Answers the n-th
/// request with statuses[n] (200 past the end; a 3xx carries a Location); while held, it
/// keeps each request waiting for its answer.
class Receiver {
 public:
  explicit Receiver(std::vector<int> statuses = {}) : statuses_(std::move(statuses)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 16) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        pipe(stop_pipe_) != 0) {
      throw std::runtime_error("receiver setup failed");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~Receiver() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      held_ = false;
    }
    changed_.notify_all();
    (void)!write(stop_pipe_[1], "x", 1);
    thread_.join();
    close(listen_fd_);
    close(stop_pipe_[0]);
    close(stop_pipe_[1]);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  void set_held(bool held) {
    std::lock_guard lock(mutex_);
    held_ = held;
    changed_.notify_all();
  }
  bool wait_for_requests(size_t n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return requests_.size() >= n; });
  }
  std::vector<Request> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void serve() {
    for (;;) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0 || fds[1].revents) return;
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      handle(fd);
      close(fd);
    }
  }

  void handle(int fd) {
    std::string data;
    char buf[4096];
    size_t header_end;
    while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0 || data.size() > 65536) return;
      data.append(buf, static_cast<size_t>(n));
    }
    Request req = parse_head(data.substr(0, header_end));
    const std::string& length_text = req.headers["content-length"];
    const size_t length = length_text.empty() ? 0 : std::stoul(length_text);
    data.erase(0, header_end + 4);
    while (data.size() < length) {
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) return;
      data.append(buf, static_cast<size_t>(n));
    }
    req.body = data;
    int status = 200;
    {
      std::unique_lock lock(mutex_);
      if (requests_.size() < statuses_.size()) status = statuses_[requests_.size()];
      requests_.push_back(std::move(req));
      changed_.notify_all();
      changed_.wait(lock, [this] { return !held_; });
      if (stopping_) return;
    }
    std::string response = "HTTP/1.1 " + std::to_string(status) + " Status\r\n";
    if (status / 100 == 3) response += "Location: " + url() + "/elsewhere\r\n";
    response += "Content-Length: 0\r\nConnection: close\r\n\r\n";
    (void)!write(fd, response.data(), response.size());
  }

  static Request parse_head(const std::string& head) {
    Request req;
    size_t pos = head.find("\r\n");
    req.request_line = head.substr(0, pos);
    while (pos != std::string::npos && pos + 2 < head.size()) {
      const size_t next = head.find("\r\n", pos + 2);
      const std::string line = head.substr(pos + 2, next - pos - 2);
      const size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      req.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
      pos = next;
    }
    return req;
  }

  std::vector<int> statuses_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Request> requests_;
  bool held_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

WebhookConfig config_for(const std::string& url) {
  WebhookConfig c;
  c.url = url;
  c.secret = kSecret;
  c.max_attempts = 5;
  return c;
}

Webhook::Options fast_backoff() {
  Webhook::Options o;
  o.backoff_base = 1ms;
  o.backoff_max = 8ms;
  return o;
}

/// Polls `done` until it holds, for at most kPatience.
template <typename Pred>
bool eventually(Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(Webhook, DeliversSignedRecordOnTheThirdAttemptAfterTwo500s) {
  Receiver receiver({500, 500, 200});
  const CallRecord record = make_record(7, 1796237106123);
  Webhook hook(config_for(receiver.url()), fast_backoff());
  ASSERT_TRUE(hook.enqueue(record));
  ASSERT_TRUE(eventually([&] { return hook.delivered() == 1; }));
  EXPECT_EQ(hook.retries(), 2u);
  EXPECT_EQ(hook.failed(), 0u);
  EXPECT_EQ(hook.dropped(), 0u);
  const auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 3u);
  for (auto req : requests) {
    EXPECT_EQ(req.request_line, "POST /hook HTTP/1.1");
    EXPECT_EQ(req.headers["content-type"], "application/json");
    EXPECT_EQ(req.headers["x-callrelay-event"], "call.ended");
    const std::string timestamp = req.headers["x-callrelay-timestamp"];
    ASSERT_FALSE(timestamp.empty());
    EXPECT_EQ(timestamp.find_first_not_of("0123456789"), std::string::npos) << timestamp;
    EXPECT_EQ(req.headers["x-callrelay-signature"], expected_signature(timestamp, req.body));
    EXPECT_EQ(nlohmann::json::parse(req.body), to_json(record));
  }
}

TEST(Webhook, SignatureHelperMatchesAnIndependentHmac) {
  EXPECT_EQ(webhook_signature(kSecret, "1700000000", "{}"), expected_signature("1700000000", "{}"));
  EXPECT_NE(webhook_signature(kSecret, "1700000001", "{}"), expected_signature("1700000000", "{}"));
}

TEST(Webhook, AnUnreachableUrlIsGivenUpAfterMaxAttempts) {
  // A port that was just free: nothing listens there.
  std::string url;
  { url = Receiver().url(); }
  WebhookConfig config = config_for(url);
  config.max_attempts = 3;
  Webhook hook(config, fast_backoff());
  ASSERT_TRUE(hook.enqueue(make_record(1, 1)));
  ASSERT_TRUE(eventually([&] { return hook.failed() == 1; }));
  EXPECT_EQ(hook.retries(), 2u);
  EXPECT_EQ(hook.delivered(), 0u);
}

TEST(Webhook, AFullQueueDropsAndCounts) {
  Receiver receiver;
  receiver.set_held(true);  // the first record stays on the wire until released
  WebhookConfig config = config_for(receiver.url());
  config.queue_size = 2;
  Webhook hook(config, fast_backoff());
  EXPECT_TRUE(hook.enqueue(make_record(1, 1)));
  EXPECT_TRUE(hook.enqueue(make_record(2, 2)));
  EXPECT_FALSE(hook.enqueue(make_record(3, 3)));
  EXPECT_FALSE(hook.enqueue(make_record(4, 4)));
  EXPECT_EQ(hook.dropped(), 2u);
  receiver.set_held(false);
  ASSERT_TRUE(eventually([&] { return hook.delivered() == 2; }));
  std::set<std::string> ids;
  for (const auto& req : receiver.requests()) ids.insert(nlohmann::json::parse(req.body)["id"]);
  EXPECT_EQ(ids, (std::set<std::string>{make_record(1, 1).id, make_record(2, 2).id}));
}

TEST(Webhook, RedirectsAreNotFollowed) {
  Receiver receiver({302});
  WebhookConfig config = config_for(receiver.url());
  config.max_attempts = 1;
  Webhook hook(config, fast_backoff());
  hook.enqueue(make_record(1, 1));
  ASSERT_TRUE(eventually([&] { return hook.failed() == 1; }));
  ASSERT_EQ(receiver.requests().size(), 1u);
  EXPECT_EQ(receiver.requests()[0].request_line, "POST /hook HTTP/1.1");
}

TEST(Webhook, WithoutASecretRequestsAreUnsigned) {
  Receiver receiver;
  WebhookConfig config = config_for(receiver.url());
  config.secret.clear();
  Webhook hook(config, fast_backoff());
  hook.enqueue(make_record(1, 1));
  ASSERT_TRUE(eventually([&] { return hook.delivered() == 1; }));
  EXPECT_EQ(receiver.requests()[0].headers.count("x-callrelay-signature"), 0u);
}

TEST(Webhook, StopsWithoutWaitingForAHeldRequest) {
  Receiver receiver;
  receiver.set_held(true);
  WebhookConfig config = config_for(receiver.url());
  config.timeout_ms = 3'600'000;  // only the stop can end the request (the test's timeout)
  {
    Webhook hook(config, fast_backoff());
    hook.enqueue(make_record(1, 1));
    ASSERT_TRUE(receiver.wait_for_requests(1));
  }
  receiver.set_held(false);
}

TEST(Webhook, StopsWithoutWaitingOutABackoff) {
  Receiver receiver({500});
  Webhook::Options options;
  options.backoff_base = std::chrono::hours(1);
  {
    Webhook hook(config_for(receiver.url()), options);
    hook.enqueue(make_record(1, 1));
    ASSERT_TRUE(eventually([&] { return hook.retries() == 1; }));
  }
  EXPECT_EQ(receiver.requests().size(), 1u);
}

TEST(Webhook, RefusesAUrlThatIsNotHttp) {
  for (const char* url : {"", "ftp://example.com/", "file:///etc/passwd", "example.com"}) {
    EXPECT_THROW(Webhook(config_for(url)), std::invalid_argument) << url;
  }
}

}  // namespace
}  // namespace callrelay::calls
