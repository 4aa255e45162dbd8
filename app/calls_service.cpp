#include "app/calls_service.hpp"

#include <chrono>
#include <filesystem>
#include <stdexcept>

#include "app/credentials.hpp"
#include "base/log.hpp"

namespace callrelay::app {
namespace {

constexpr auto kDrainTimeout = std::chrono::seconds(10);

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

}  // namespace

CallsService::CallsService(const calls::CallsConfig& cfg, const std::string& state_dir,
                           calls::CallRelay& relay, calls::IceServerSource& ice,
                           http::ApiKeys& keys)
    : secret_path_(token_secret(cfg, state_dir).generated_at),
      tokens_(token_secret(cfg, state_dir).value, cfg.max_token_ttl_s),
      store_(records_path(cfg, state_dir)),
      webhook_(cfg.webhook.url.empty() ? nullptr : std::make_unique<calls::Webhook>(cfg.webhook)),
      writer_(store_,
              [this](const calls::CallRecord& r) {
                if (webhook_) webhook_->enqueue(r);
              }),
      signaling_(cfg, calls::SignalingService::Deps{tokens_, ice, relay,
                                                    [this](calls::CallRecord r) {
                                                      writer_.submit(std::move(r));
                                                    },
                                                    &metrics_, {}}),
      token_api_(tokens_, keys),
      records_api_(store_, keys) {}

CallsService::~CallsService() { stop(); }

void CallsService::add_routes(http::Router& router) {
  router.set_websocket("/api/v1/signal", &signaling_);
  router.add_route("/api/v1/signal/token", [this](const http::Request& req, core::TimeMs now) {
    return std::optional<http::Response>(token_api_.handle(req, now));
  });
  router.add_route("/api/v1/calls", [this](const http::Request& req, core::TimeMs now) {
    return std::optional<http::Response>(records_api_.handle(req, now));
  });
}

void CallsService::start() { signaling_.start(); }

void CallsService::stop() {
  signaling_.stop();
  if (!writer_.flush(kDrainTimeout))
    log::warn("calls: ", writer_.pending(), " call record(s) not written at shutdown");
}

void CallsService::tick() {
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
}

}  // namespace callrelay::app
