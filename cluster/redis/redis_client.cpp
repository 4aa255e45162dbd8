#include "cluster/redis/redis_client.hpp"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>

#include "base/log.hpp"

namespace callrelay::cluster {

namespace {

using SteadyClock = std::chrono::steady_clock;

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

RedisReply copy_reply(const redisReply* r) {
  RedisReply out;
  if (r == nullptr) return out;
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(copy_reply(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
      break;
  }
  return out;
}

struct ReplyDeleter {
  void operator()(void* r) const {
    if (r) freeReplyObject(r);
  }
};
using ReplyPtr = std::unique_ptr<void, ReplyDeleter>;

/// Appends one command (binary-safe) to the context's output buffer.
bool append(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  return redisAppendCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()) ==
         REDIS_OK;
}

/// Connects, authenticates and selects the database; null (and the reason in `why`) on failure.
redisContext* open(const RedisUrl& url, std::chrono::milliseconds timeout, std::string& why) {
  const timeval tv = to_timeval(timeout);
  redisContext* c = url.unix_path.empty()
                        ? redisConnectWithTimeout(url.host.c_str(), url.port, tv)
                        : redisConnectUnixWithTimeout(url.unix_path.c_str(), tv);
  if (c == nullptr) {
    why = "out of memory";
    return nullptr;
  }
  if (c->err) {
    why = c->errstr;
    redisFree(c);
    return nullptr;
  }
  redisSetTimeout(c, tv);
  std::vector<std::vector<std::string>> setup;
  if (!url.password.empty()) {
    if (url.user.empty())
      setup.push_back({"AUTH", url.password});
    else
      setup.push_back({"AUTH", url.user, url.password});
  }
  if (url.db != 0) setup.push_back({"SELECT", std::to_string(url.db)});
  for (const auto& cmd : setup) {
    if (!append(c, cmd)) {
      why = "cannot queue " + cmd[0];
      redisFree(c);
      return nullptr;
    }
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK) {
      why = c->errstr;
      redisFree(c);
      return nullptr;
    }
    ReplyPtr reply(raw);
    const auto* r = static_cast<const redisReply*>(raw);
    if (r->type == REDIS_REPLY_ERROR) {
      // The AUTH error text never holds the password.
      why = cmd[0] + ": " + std::string(r->str, r->len);
      redisFree(c);
      return nullptr;
    }
  }
  return c;
}

/// hiredis writes with write(2): a server that closed the connection raises SIGPIPE, which
/// kills a process that has not ignored it (a library must not rely on that). Blocks SIGPIPE
/// on this thread while hiredis writes and takes away one that the writes raised.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    pending_before_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlock() {
    if (!pending_before_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        const timespec zero{0, 0};
        sigtimedwait(&pipe_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_{}, old_{};
  bool pending_before_ = false;
};

std::string where(const RedisUrl& url) {
  return url.unix_path.empty() ? url.host + ":" + std::to_string(url.port) : url.unix_path;
}

}  // namespace

// --- RedisClient ---------------------------------------------------------------------------

RedisClient::RedisClient(RedisUrl url, Options opts, RedisLinkCounters* counters)
    : url_(std::move(url)), opts_(opts), counters_(counters ? counters : &own_counters_) {}

RedisClient::~RedisClient() {
  std::lock_guard lock(mu_);
  drop_locked();
}

bool RedisClient::up() const { return counters_->up.load(std::memory_order_relaxed); }

void RedisClient::drop_locked() {
  if (ctx_) redisFree(static_cast<redisContext*>(ctx_));
  ctx_ = nullptr;
}

bool RedisClient::ensure_connected_locked() {
  if (ctx_) return true;
  const auto now = SteadyClock::now();
  if (now < next_attempt_) return false;
  next_attempt_ = now + opts_.retry_interval;
  std::string why;
  redisContext* c = open(url_, opts_.timeout, why);
  if (c == nullptr) {
    if (counters_->up.exchange(false))
      log::warn("redis.down", {{"redis", where(url_)}, {"error", why}}, "Redis at ", where(url_),
                " is unreachable: ", why);
    return false;
  }
  ctx_ = c;
  if (connected_once_) counters_->reconnects.fetch_add(1, std::memory_order_relaxed);
  connected_once_ = true;
  if (!counters_->up.exchange(true))
    log::info("redis.up", {{"redis", where(url_)}}, "Redis at ", where(url_), " reached");
  return true;
}

std::optional<RedisReply> RedisClient::command(const std::vector<std::string>& args) {
  auto replies = pipeline({args});
  if (!replies) return std::nullopt;
  return std::move(replies->front());
}

std::optional<std::vector<RedisReply>> RedisClient::pipeline(
    const std::vector<std::vector<std::string>>& cmds) {
  std::lock_guard lock(mu_);
  const SigpipeBlock no_sigpipe;
  const auto failed = [&]() -> std::optional<std::vector<RedisReply>> {
    counters_->failures.fetch_add(cmds.size(), std::memory_order_relaxed);
    return std::nullopt;
  };
  if (cmds.empty()) return std::vector<RedisReply>{};
  for (const auto& c : cmds)
    if (c.empty()) return failed();
  if (!ensure_connected_locked()) return failed();
  auto* c = static_cast<redisContext*>(ctx_);
  for (const auto& cmd : cmds) {
    if (!append(c, cmd)) {
      drop_locked();
      return failed();
    }
  }
  std::vector<RedisReply> out;
  out.reserve(cmds.size());
  for (size_t i = 0; i < cmds.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
      // A timeout or a closed connection leaves the context unusable (hiredis sets c->err
      // for good): make a new one on the next call.
      const std::string why = c->errstr;
      drop_locked();
      if (counters_->up.exchange(false))
        log::warn("redis.down", {{"redis", where(url_)}, {"error", why}}, "Redis at ",
                  where(url_), " stopped answering: ", why);
      next_attempt_ = SteadyClock::now();  // one immediate retry: Redis may have restarted
      return failed();
    }
    ReplyPtr reply(raw);
    out.push_back(copy_reply(static_cast<const redisReply*>(raw)));
  }
  counters_->commands.fetch_add(cmds.size(), std::memory_order_relaxed);
  return out;
}

// --- RedisSubscriber -----------------------------------------------------------------------

RedisSubscriber::RedisSubscriber(RedisUrl url, std::vector<std::string> channels,
                                 OnMessage on_message, OnLink on_link,
                                 RedisLinkCounters* counters)
    : url_(std::move(url)),
      channels_(std::move(channels)),
      on_message_(std::move(on_message)),
      on_link_(std::move(on_link)),
      counters_(counters ? counters : &own_counters_) {}

RedisSubscriber::~RedisSubscriber() { stop(); }

void RedisSubscriber::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { run(); });
}

void RedisSubscriber::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void RedisSubscriber::run() {
  // A PING every kPingEvery in subscribed mode (Redis answers ["pong", ""]); a link that has
  // said nothing for kSilentLimit is taken as dead (a partition does not close the socket).
  constexpr auto kPingEvery = std::chrono::seconds(2);
  constexpr auto kSilentLimit = std::chrono::seconds(6);
  constexpr auto kPollSlice = std::chrono::milliseconds(100);
  auto pause = std::chrono::milliseconds(50);
  bool connected_once = false;
  const SigpipeBlock no_sigpipe;  // this thread is the subscriber's own
  while (!stop_) {
    std::string why;
    redisContext* c = open(url_, std::chrono::milliseconds(1000), why);
    if (c == nullptr) {
      counters_->up = false;
      const auto until = SteadyClock::now() + pause;
      while (!stop_ && SteadyClock::now() < until) std::this_thread::sleep_for(kPollSlice / 2);
      pause = std::min(pause * 2, std::chrono::milliseconds(2000));
      continue;
    }
    std::unique_ptr<redisContext, void (*)(redisContext*)> ctx(c, redisFree);
    std::vector<std::string> sub{"SUBSCRIBE"};
    sub.insert(sub.end(), channels_.begin(), channels_.end());
    if (!append(c, sub)) continue;
    int wdone = 0;
    bool ok = true;
    while (!wdone && ok) ok = redisBufferWrite(c, &wdone) == REDIS_OK;
    if (!ok) continue;
    size_t confirmations = 0;
    auto last_heard = SteadyClock::now();
    auto last_ping = last_heard;
    bool link_up = false;
    while (!stop_) {
      void* raw = nullptr;
      if (redisGetReplyFromReader(c, &raw) != REDIS_OK) break;
      if (raw != nullptr) {
        ReplyPtr reply(raw);
        last_heard = SteadyClock::now();
        const auto* r = static_cast<const redisReply*>(raw);
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
            r->element[0]->type != REDIS_REPLY_STRING)
          continue;
        const std::string_view kind(r->element[0]->str, r->element[0]->len);
        if (kind == "message" && r->elements == 3 && r->element[1]->type == REDIS_REPLY_STRING &&
            r->element[2]->type == REDIS_REPLY_STRING) {
          counters_->commands.fetch_add(1, std::memory_order_relaxed);
          on_message_(std::string(r->element[1]->str, r->element[1]->len),
                      std::string(r->element[2]->str, r->element[2]->len));
        } else if (kind == "subscribe" && ++confirmations == channels_.size()) {
          link_up = true;
          pause = std::chrono::milliseconds(50);
          if (connected_once) counters_->reconnects.fetch_add(1, std::memory_order_relaxed);
          connected_once = true;
          counters_->up = true;
          subscribed_ = true;
          if (on_link_) on_link_(true);
        }
        continue;
      }
      const auto now = SteadyClock::now();
      if (now - last_heard > kSilentLimit) break;
      if (now - last_ping > kPingEvery) {
        last_ping = now;
        if (!append(c, {"PING"})) break;
        int done = 0;
        bool wok = true;
        while (!done && wok) wok = redisBufferWrite(c, &done) == REDIS_OK;
        if (!wok) break;
      }
      pollfd pfd{c->fd, POLLIN, 0};
      const int n = ::poll(&pfd, 1, static_cast<int>(kPollSlice.count()));
      if (n < 0 && errno != EINTR) break;
      if (n > 0 && redisBufferRead(c) != REDIS_OK) break;
    }
    if (link_up || subscribed_) {
      subscribed_ = false;
      counters_->up = false;
      if (!stop_) {
        log::warn("redis.subscriber_down", {{"redis", where(url_)}},
                  "the subscription to Redis at ", where(url_), " dropped; subscribing again");
        if (on_link_) on_link_(false);
      }
    }
  }
}

}  // namespace callrelay::cluster
