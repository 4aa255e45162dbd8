#include "app/calls_service.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>

#include "app/credentials.hpp"
#include "base/log.hpp"
#include "calls/cluster/redis_cluster.hpp"
#include "calls/store/postgres_store.hpp"
#include "cluster/redis/redis_url.hpp"

namespace callrelay::app {
namespace {

constexpr auto kDrainTimeout = std::chrono::seconds(10);
/// The demo page's list of who is online shows at most this many users.
constexpr size_t kMaxOnlineUsers = 200;
/// RFC 8489 section 14.3: USERNAME is under 513 bytes; a scoped username adds at most 43.
constexpr size_t kMaxUserBytes = 256;

struct Secret {
  std::string value, generated_at;
};

Secret token_secret(const calls::CallsConfig& cfg, const std::string& state_dir) {
  if (!cfg.token_secret.empty()) return {cfg.token_secret, ""};
  const StateSecret s = load_or_create_secret(state_dir, "signal-secret");
  return {s.secret, s.path};
}

/// The records database; the state directory is created (mode 0700, like for the secrets)
/// when the default path lies in it.
std::string records_path(const calls::CallsConfig& cfg, const std::string& state_dir) {
  if (!cfg.records_path.empty()) return cfg.records_path;
  std::error_code ec;
  if (std::filesystem::create_directories(state_dir, ec)) {
    std::filesystem::permissions(state_dir, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, ec);
  }
  if (ec)
    throw std::runtime_error("cannot create the state directory '" + state_dir +
                             "': " + ec.message() + " (set state_dir or calls.records.path)");
  return (std::filesystem::path(state_dir) / "calls.sqlite3").string();
}

/// cluster.instance_id, or the host name when it is "".
std::string instance_name(const config::ClusterConfig& cluster) {
  if (!cluster.instance_id.empty()) return cluster.instance_id;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "unknown";
  return host;
}

/// PostgreSQL when cluster.postgres_url is set (records shared by every instance using it),
/// else the SQLite file.
std::unique_ptr<calls::RecordStore> open_store(const calls::CallsConfig& cfg,
                                               const std::string& state_dir,
                                               const config::ClusterConfig& cluster) {
  if (cluster.postgres_url.empty())
    return std::make_unique<calls::SqliteStore>(records_path(cfg, state_dir));
  calls::PostgresStore::Options o;
  o.application_name = "callrelay/" + instance_name(cluster);
  auto store = std::make_unique<calls::PostgresStore>(cluster.postgres_url, o);
  log::info("call_records.postgres",
            {{"url", config::mask_postgres_url(cluster.postgres_url)},
             {"instance", instance_name(cluster)}},
            "call records: in PostgreSQL at ", config::mask_postgres_url(cluster.postgres_url),
            " (instance ", instance_name(cluster), ")");
  return store;
}

/// Calls across instances over Redis when cluster.redis_url is set (the URL was validated
/// with the configuration); null otherwise.
std::unique_ptr<calls::ClusterSeam> open_cluster(const config::ClusterConfig& cluster) {
  if (!cluster.redis()) return nullptr;
  std::string error;
  auto url = callrelay::cluster::parse_redis_url(cluster.redis_url, &error);
  if (!url) throw std::runtime_error("cluster.redis_url: " + error);
  const std::string masked = callrelay::cluster::mask_redis_url(cluster.redis_url);
  const std::string instance = instance_name(cluster);
  log::info("cluster.signaling", {{"url", masked}, {"instance", instance}},
            "calls: signaling across instances through Redis at ", masked, " (instance ",
            instance, ")");
  return std::make_unique<calls::RedisCluster>(instance, *url);
}

std::unique_ptr<calls::DemoApi> make_demo_api(const DemoSettings& demo,
                                              const calls::CallsConfig& cfg,
                                              const calls::TokenSigner& tokens,
                                              const calls::SignalingService& signaling) {
  if (!demo.enabled) return nullptr;
  calls::DemoApi::Options o;
  o.tls = demo.tls;
  o.fallback_host = demo.fallback_host;
  o.max_user_id_bytes = cfg.limits.max_user_id_bytes;
  return std::make_unique<calls::DemoApi>(
      tokens, [&signaling] { return signaling.online_users("", kMaxOnlineUsers); }, o);
}

}  // namespace

RelayForPreflight::RelayForPreflight(core::Authenticator& auth, calls::CallRelay& relay,
                                     CallCredentialSettings settings)
    : auth_(auth), relay_(relay), settings_(std::move(settings)) {}

nlohmann::json RelayForPreflight::ice_servers(std::string_view user, std::string_view id,
                                              uint32_t ttl_s, calls::TimeMs now) {
  // Signed with the first REST secret in force now (a reload may have rotated it); an empty
  // settings_.rest_secret means the relay had none to mint with at start.
  const auto auth_cfg = auth_.config();
  if (settings_.rest_secret.empty() || auth_cfg->rest_secrets.empty() || settings_.uris.empty() ||
      ttl_s == 0 || user.empty() ||
      user.size() > kMaxUserBytes || id.size() != core::kCallIdSize || now < 0)
    return nlohmann::json::array();
  const int64_t expiry_s = now / 1000 + static_cast<int64_t>(ttl_s);
  std::string username =
      core::Authenticator::call_username(expiry_s, user, id, settings_.separator);
  {
    const std::lock_guard lock(mu_);
    std::erase_if(minted_, [now](const auto& e) { return e.second.expires <= now; });
    minted_[std::string(id)] = Minted{username, expiry_s * 1000};
  }
  // TURN REST API: password = base64(HMAC-SHA1(secret, username)).
  nlohmann::json server = nlohmann::json::object();
  server["urls"] = settings_.uris;
  server["credential"] = core::Authenticator::rest_password(auth_cfg->rest_secrets.front(), username);
  server["username"] = std::move(username);
  return nlohmann::json::array({std::move(server)});
}

void RelayForPreflight::end_call(std::string_view id) {
  std::optional<Minted> minted;
  {
    const std::lock_guard lock(mu_);
    if (const auto it = minted_.find(std::string(id)); it != minted_.end()) {
      minted = std::move(it->second);
      minted_.erase(it);
    }
  }
  if (minted) auth_.revoke(std::move(minted->username), minted->expires);
  relay_.end_call(id);
}

CallsService::CallsService(const calls::CallsConfig& cfg, const std::string& state_dir,
                           calls::CallRelay& relay, calls::IceServerSource& ice,
                           calls::PreflightRelay& preflight, http::ApiKeys& keys,
                           const DemoSettings& demo, const config::ClusterConfig& cluster)
    : secret_path_(token_secret(cfg, state_dir).generated_at),
      tokens_(token_secret(cfg, state_dir).value, cfg.max_token_ttl_s),
      store_(open_store(cfg, state_dir, cluster)),
      webhook_(cfg.webhook.url.empty() ? nullptr : std::make_unique<calls::Webhook>(cfg.webhook)),
      writer_(*store_,
              [this](const calls::CallRecord& r) {
                if (webhook_) webhook_->enqueue(r);
              }),
      cluster_(open_cluster(cluster)),
      redis_cluster_(dynamic_cast<const calls::RedisCluster*>(cluster_.get())),
      signaling_(cfg, calls::SignalingService::Deps{tokens_, ice, relay,
                                                    [this](calls::CallRecord r) {
                                                      writer_.submit(std::move(r));
                                                    },
                                                    &metrics_, {}, cluster_.get()}),
      token_api_(tokens_, keys),
      records_api_(*store_, keys),
      preflight_api_(tokens_, preflight, &preflight_metrics_),
      demo_api_(make_demo_api(demo, cfg, tokens_, signaling_)) {}

CallsService::~CallsService() { stop(); }

void CallsService::add_routes(http::Router& router) {
  router.set_websocket("/api/v1/signal", &signaling_);
  router.add_route("/api/v1/signal/token", [this](const http::Request& req, core::TimeMs now) {
    return std::optional<http::Response>(token_api_.handle(req, now));
  });
  router.add_route("/api/v1/calls", [this](const http::Request& req, core::TimeMs now) {
    return std::optional<http::Response>(records_api_.handle(req, now));
  });
  router.add_route(calls::PreflightApi::kPath, [this](const http::Request& req, core::TimeMs now) {
    return preflight_api_.handle(req, now);
  });
  if (demo_api_) {
    router.add_route("/demo/api/", [this](const http::Request& req, core::TimeMs now) {
      return demo_api_->handle(req, now);
    });
  }
}

void CallsService::start() { signaling_.start(); }

void CallsService::stop() {
  signaling_.stop();
  if (!writer_.flush(kDrainTimeout))
    log::warn("call_records.unwritten", {{"records", writer_.pending()}}, "calls: ",
              writer_.pending(), " call record(s) not written at shutdown");
}

void CallsService::tick(core::TimeMs now) {
  preflight_api_.expire(now);
  calls::CallMetrics::StorageProbe p;
  p.written = writer_.stored();
  p.pending = writer_.pending();
  p.dropped = writer_.dropped();
  p.write_retries = writer_.retries();
  if (webhook_) {
    p.webhook_delivered = webhook_->delivered();
    p.webhook_failed = webhook_->failed();
    p.webhook_dropped = webhook_->dropped();
  }
  metrics_.set_storage(p);
  if (redis_cluster_ != nullptr)
    metrics_.set_cluster(redis_cluster_->counters().published.load(),
                         redis_cluster_->counters().failed.load());
}

}  // namespace callrelay::app
