// callrelay: wiring only. Parses the command line, loads the configuration (a bad one exits 2
// before anything binds), binds every listener (failure exits 1), runs the workers until
// SIGTERM's drain (or SIGINT), then shuts down cleanly.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "app/admin_key.hpp"
#include "app/admin_views.hpp"
#include "app/call_relay.hpp"
#include "app/calls_service.hpp"
#include "app/cli.hpp"
#include "app/ctl.hpp"
#include "app/credentials.hpp"
#include "app/drain.hpp"
#include "app/http_service.hpp"
#include "app/import_coturn.hpp"
#include "app/reload_api.hpp"
#include "app/reload_parts.hpp"
#include "app/notify.hpp"
#include "app/own_addresses.hpp"
#include "app/settings.hpp"
#include "app/wall_clock.hpp"
#include "base/limits.hpp"
#include "cluster/shared/cluster_shared.hpp"
#include "config/config.hpp"
#include "config/config_json.hpp"
#include "relay/core/auth.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/net/server.hpp"
#include "relay/net/udp_batch.hpp"
#include "relay/net/uring_relay.hpp"
#include "base/log.hpp"
#include "telemetry/log_observer.hpp"
#include "telemetry/call_traffic.hpp"
#include "telemetry/telemetry.hpp"
#include "web/assets.hpp"
#include "web/status_page.hpp"

#ifndef CALLRELAY_VERSION
#define CALLRELAY_VERSION "unknown"
#endif

namespace {

using namespace callrelay;

constexpr int kExitConfig = 2;
constexpr int kExitRuntime = 1;

config::Config load_config(const app::CommandLine& cli) {
  config::Config cfg = cli.config_path.empty()
                           ? config::parse(config::default_yaml(), "<embedded default>")
                           : config::load_file(cli.config_path);
  if (cli.state_dir) cfg.state_dir = *cli.state_dir;
  return cfg;
}

/// Without REST secrets or static users nobody could authenticate: use the state-dir secret.
std::optional<app::StateSecret> ensure_secret(config::Config& cfg) {
  if (!cfg.auth.rest_secrets.empty() || !cfg.auth.static_users.empty()) return std::nullopt;
  app::StateSecret s = app::load_or_create_secret(cfg.state_dir);
  cfg.auth.rest_secrets.push_back(s.secret);
  return s;
}

int mint(const app::CommandLine& cli, config::Config& cfg) {
  ensure_secret(cfg);
  if (cfg.auth.rest_secrets.empty()) {
    std::fprintf(stderr, "error: the configuration has no REST secret (only static users)\n");
    return kExitConfig;
  }
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const int64_t expiry = std::chrono::duration_cast<std::chrono::seconds>(now).count() + cli.ttl_s;
  const auto c = app::mint_credential(cfg.auth.rest_secrets.front(), cli.user, expiry,
                                      cfg.auth.rest_separator);
  std::printf("username: %s\npassword: %s\n", c.username.c_str(), c.password.c_str());
  return 0;
}

/// What the demo's answers need to know of the HTTP listener: its scheme and an address a
/// browser can use when a request does not say (api.public_host, else the bound address).
app::DemoSettings demo_settings(const config::Config& cfg, const app::HttpService& http) {
  app::DemoSettings d;
  d.enabled = cfg.demo.enabled;
  d.tls = http.tls();
  const stun::Endpoint& ep = http.local_endpoint();
  d.fallback_host = cfg.api.public_host.empty()
                        ? ep.to_string()
                        : cfg.api.public_host + ":" + std::to_string(ep.port);
  return d;
}

/// The demo page (demo.enabled): served at /demo/ next to its API, announced loudly.
void add_demo(const config::Config& cfg, app::HttpService& http) {
  http.router().add_route("/demo", [](const http::Request& req, core::TimeMs) {
    return web::serve_asset(req);
  });
  log::warn("demo.enabled", {{"address", http.local_endpoint().to_string()}},
            "demo: demo.enabled is on: anyone who reaches ", http.tls() ? "https://" : "http://",
            http.local_endpoint().to_string(),
            "/demo/ can get a signaling token for any user name (and TURN credentials with it). "
            "A demonstration only, never for production");
  if (cfg.http.listen.ip_string() != "127.0.0.1" && cfg.http.listen.ip_string() != "::1")
    log::warn("demo.not_loopback", {{"address", http.local_endpoint().to_string()}},
              "demo: the HTTP listener is not on loopback: the demo's tokens are open to the "
              "network");
}

/// "listening PROTO ADDRESS": the line tests and operators read the bound ports from.
void log_listener(std::string_view transport, const std::string& address) {
  log::emit(log::Level::kInfo, "listener.bound", {{"transport", transport}, {"address", address}},
            log::concat("listening ", transport, " ", address));
}

/// The state directory's admin key (made on the first start) joins api.keys, so that a local
/// operator's `callrelay ctl` works with nothing configured. Returns it ("" when there is no
/// HTTP listener or the file could not be written). The key itself is never logged.
std::string add_state_admin_key(config::Config& cfg) {
  if (!cfg.http.enabled) return {};
  const app::AdminKeyFile f = app::load_or_create_admin_key(cfg.state_dir);
  if (!f.warning.empty())
    log::warn("admin_key.problem", {{"path", f.path}}, "admin key: ", f.warning);
  if (f.key.empty()) return {};
  if (f.created)
    log::info("admin_key.created", {{"path", f.path}},
              "admin key for `callrelay ctl` generated in ", f.path, " (mode 0600)");
  cfg.api.keys.push_back(app::admin_api_key(f.key, cfg.auth.max_credential_lifetime_s));
  return f.key;
}

int serve(const app::CommandLine& cli, config::Config& cfg) {
  log::info("server.starting",
            {{"version", CALLRELAY_VERSION}, {"config", cli.config_path}},
            "callrelay ", CALLRELAY_VERSION, " starting with ",
            cli.config_path.empty() ? std::string("the embedded default configuration")
                                    : cli.config_path);
  const auto state_secret = ensure_secret(cfg);
  // The core's `now` is monotonic; REST expiry and revocations are judged on the wall clock.
  static const app::SystemWallClock wall;
  core::Authenticator auth(cfg.auth, &wall);  // not const: the HTTP API revokes usernames
  const core::NonceCodec nonces(app::random_bytes32(), cfg.nonce_lifetime_s);
  core::PeerPolicy policy(cfg.peers);  // not const: its own addresses; reload swaps its lists
  const net::ServerSettings settings = app::server_settings(cfg);
  // relay.io (validated by the loader): each worker resolves it as it starts and logs relay.io.
  net::set_relay_io(net::parse_relay_io(cfg.relay.io).value_or(net::RelayIo::kAuto));
  net::set_udp_gso(cfg.relay.udp_gso != "off");  // read by each send batch as it is made

  std::vector<std::unique_ptr<telemetry::LogObserver>> observers;
  const unsigned workers = net::resolve_worker_count(settings.workers);
  for (unsigned i = 0; i < workers; ++i)
    observers.push_back(std::make_unique<telemetry::LogObserver>(&wall));
  // Prometheus metrics: each worker's telemetry observer forwards to its LogObserver.
  http::Readiness readiness;
  const net::Server* relay_server = nullptr;  // set once bound; read by the scrape probes
  // Every abuse limit and cap that bites is counted here (callrelay_limit_hits_total).
  static base::LimitCounters limit_counters;
  telemetry::ProcessProbes probes;
  probes.limits = &limit_counters;
  probes.relay_ports_total = net::relay_port_capacity(settings.relay, settings.listen_udp);
  probes.relay_ports_in_use = [&relay_server]() -> uint64_t {
    return relay_server != nullptr ? relay_server->relay_ports_in_use() : 0;
  };
  probes.tcp_peer_connections = [&relay_server]() -> uint64_t {
    return relay_server != nullptr ? relay_server->tcp_peer_connections() : 0;
  };
  probes.draining = [&readiness] { return readiness.draining(); };
  probes.worker_threads = workers;
  probes.version = CALLRELAY_VERSION;
  probes.started_at = net::now_ms();  // the uptime runs on the core's monotonic clock
  telemetry::Telemetry metrics(cfg.telemetry, workers, std::move(probes));

  // Signals go to the main thread only (signals.run below): blocked before any thread starts.
  app::SignalLoop signals;

  // Each worker's observers: the traffic of call-scoped allocations, then the Prometheus
  // metrics, then the log.
  telemetry::CallTraffic call_traffic;
  // Cluster mode's shared state, made below: declared first so that it outlives the workers'
  // allocations, whose ends it counts.
  std::unique_ptr<cluster::ClusterShared> shared;
  net::Server server(settings, net::SharedAuth{auth, nonces, policy, &limit_counters},
                     [&observers, &metrics, &call_traffic](unsigned i) {
                       return call_traffic.observer_for_worker(
                           i, metrics.observer_for_worker(i, observers[i].get()));
                     });
  relay_server = &server;
  // These lines are a contract: integration tests parse them (actual ports for port 0). Written
  // at every log level.
  for (const auto& ep : server.listening()) log_listener("udp", ep.to_string());
  for (const auto& l : server.stream_listening())
    log_listener(core::to_string(l.transport), l.endpoint.to_string());
  const std::string admin_key = add_state_admin_key(cfg);
  const auto http = app::make_http_service(cfg, auth, metrics, readiness, server,
                                           &limit_counters);
  std::unique_ptr<app::RelayForCalls> relay_for_calls;
  std::unique_ptr<app::RelayForPreflight> relay_for_preflight;
  std::unique_ptr<app::CallsService> calls;
  if (cfg.cluster.redis()) {
    // Revocations and per-user quotas shared with the other instances on the same Redis, and
    // this instance's load published so that credentials carry the least-loaded instance.
    cluster::ClusterSharedOptions opts;
    opts.url = cluster::parse_redis_url(cfg.cluster.redis_url).value_or(cluster::RedisUrl{});
    opts.instance_id = cluster::resolve_instance_id(cfg.cluster.instance_id);
    opts.region = cfg.cluster.region;
    opts.uris = cfg.cluster.relay_uris.empty() ? app::turn_uris(cfg, server) : cfg.cluster.relay_uris;
    shared = std::make_unique<cluster::ClusterShared>(
        std::move(opts),
        cluster::LocalProbes{
            [&server] { return static_cast<uint64_t>(server.allocation_count()); },
            [&relay_for_calls]() -> uint64_t {
              return relay_for_calls ? relay_for_calls->minted_call_count() : 0;
            },
            [&readiness] { return readiness.draining(); },
            [&server] { return server.user_limits().user_counts(); },
            [] { return wall.unix_ms(); }},
        [&auth, &server](const std::string& username, int64_t until) {
          // Another instance revoked it: refused here too, its allocations here end.
          auth.apply_shared_revocation(username, until, wall.unix_ms());
          server.end_username(username);
        });
    auth.set_on_revoke([&shared](const std::string& username, core::TimeMs until) {
      if (shared) shared->revoked(username, until);
    });
    server.user_limits().set_shared_quota(&shared->quota());
    if (http) {
      http->set_turn_uri_source([&shared](const std::string& region) { return shared->uris_for(region); });
      http->add_scrape([&shared] { return shared->scrape_text(); });
    }
  }
  if (http) {
    log_listener(http->tls() ? "https" : "http", http->local_endpoint().to_string());
    http->router().add_route("/sdk/", [](const http::Request& req, core::TimeMs) {
      return web::serve_asset(req);
    });
    if (cfg.http.status_page) {  // the live status page; its data needs an admin key
      http->router().add_route(web::kStatusPrefix, [](const http::Request& req, core::TimeMs) {
        return web::serve_status_page(req);
      });
    }
    if (cfg.calls.enabled) {
      std::vector<std::string> call_uris = app::turn_uris(cfg, server);
      if (call_uris.empty())
        log::warn("calls.no_turn_uri", {},
                  "calls: no TURN URI to hand out with call credentials (the listeners are "
                  "wildcard addresses): set api.public_host or api.uris");
      const std::vector<std::string> own_call_uris = call_uris;
      relay_for_calls = std::make_unique<app::RelayForCalls>(
          auth, server, call_traffic,
          app::CallCredentialSettings{
              std::move(call_uris),
              cfg.auth.rest_secrets.empty() ? std::string() : cfg.auth.rest_secrets.front(),
              cfg.auth.rest_separator, cfg.calls.credential_ttl_s,
              // A call relays through the instance that owns it: only that relay's
              // measurements reach the call's quality and record, and its allocations end
              // with the call. A draining instance refuses new allocations, so its new
              // calls get the least-loaded other instance of its region instead.
              shared ? std::function<std::vector<std::string>()>(
                           [&shared, &readiness, own = own_call_uris]() -> std::vector<std::string> {
                             if (!readiness.draining()) return own;
                             return shared->uris_for(shared->region());
                           })
                     : nullptr});
      relay_for_preflight = std::make_unique<app::RelayForPreflight>(
          auth, *relay_for_calls,
          app::CallCredentialSettings{
              app::turn_uris(cfg, server),
              cfg.auth.rest_secrets.empty() ? std::string() : cfg.auth.rest_secrets.front(),
              cfg.auth.rest_separator, 0, nullptr});  // a preflight tests this instance
      calls = std::make_unique<app::CallsService>(cfg.calls, cfg.state_dir, *relay_for_calls,
                                                  *relay_for_calls, *relay_for_preflight,
                                                  http->api_keys(), demo_settings(cfg, *http),
                                                  cfg.cluster);
      calls->add_routes(http->router());
      http->admin().set_calls(app::admin_call_actions(calls->signaling(), metrics));
      http->add_scrape([&calls] { return calls->scrape_text(); });
      http->add_tick([&calls](core::TimeMs now) { calls->tick(now); });
      if (cfg.demo.enabled) add_demo(cfg, *http);
      if (!calls->generated_secret_path().empty())
        log::info("calls.token_secret_file", {{"path", calls->generated_secret_path()}},
                  "signaling tokens are signed with the secret in ",
                  calls->generated_secret_path(), " (or set calls.token_secret)");
    }
  } else if (cfg.calls.enabled) {
    log::warn("calls.no_http", {},
              "calls: http.enabled is false, so there is no signaling endpoint");
  }
  if (state_secret) {
    // The secret's file, never the secret.
    log::emit(log::Level::kInfo, "auth.state_secret",
              {{"path", state_secret->path}, {"created", state_secret->created}},
              app::mint_instructions(*state_secret, cfg.state_dir, cli.config_path));
  }
  // Graceful drain (SIGTERM, POST /api/v1/admin/drain): /readyz 503, new Allocates refused.
  app::Drain drain(cfg.drain.deadline_s, [&readiness, &server, &cfg] {
    // The workers first: whoever sees /readyz 503 and tries elsewhere is already refused here.
    server.start_draining(cfg.drain.alternate_servers);
    readiness.set_draining(true);
    app::notify_stopping("draining");
  });
  if (http) {
    http->set_drain([&drain](std::optional<uint32_t> s) { return drain.start(s, net::now_ms()); });
    http->set_drain_left([&drain]() -> std::optional<int64_t> {
      if (!drain.started()) return std::nullopt;
      return (std::max<core::TimeMs>(drain.deadline() - net::now_ms(), 0) + 999) / 1000;
    });
  }
  // Hot reload (SIGHUP, POST /api/v1/admin/reload): the same file, validated whole, then
  // applied part by part while the relay runs.
  app::Reloader reloader(
      cli.config_path, cfg, app::read_text(cli.config_path),
      app::file_loader([&cli, &admin_key](config::Config& next) {
        if (cli.state_dir) next.state_dir = *cli.state_dir;
        ensure_secret(next);
        // The state directory's admin key stays accepted whatever the file's api.keys say.
        if (!admin_key.empty())
          next.api.keys.push_back(
              app::admin_api_key(admin_key, next.auth.max_credential_lifetime_s));
      }),
      app::live_parts({auth, policy, server, http ? &http->api_keys() : nullptr}, cfg));
  signals.set_reload([&reloader] { reloader.reload("SIGHUP"); });
  if (http) {
    http->add_scrape([&reloader] { return reloader.scrape_text(); });
    http->router().add_route(app::kReloadPath,
                             app::reload_route(reloader, [&http](const http::Request& req,
                                                                 http::Params& params,
                                                                 core::TimeMs now) {
                               return http->admin().authorize(req, params, now);
                             }));
    // GET /api/v1/admin/config: what runs now (reloads included), every secret masked.
    http->admin().set_config([&reloader] { return config::to_masked_json(reloader.running()); });
  }
  // The bound listeners are never peers (no loop into the server): known now, before workers run.
  policy.set_own_addresses(app::own_addresses(
      server, settings.relay, http ? std::optional(http->local_endpoint()) : std::nullopt));
  if (shared) shared->start();  // its load record first: the quota script counts live instances
  server.start();
  if (calls) calls->start();
  if (http) http->start();
  readiness.set_listeners_bound(true);
  log::info("relay.started",
            {{"port_min", settings.relay.port_min}, {"port_max", settings.relay.port_max},
             {"workers", server.worker_count()}, {"realm", auth.realm()}},
            "relay ports ", settings.relay.port_min, "-", settings.relay.port_max, ", ",
            server.worker_count(), " worker(s), realm ", auth.realm());
  log::emit(log::Level::kInfo, "server.ready", {{"version", CALLRELAY_VERSION}}, "ready");
  app::notify_ready("relaying");

  signals.run(drain, app::ServerHooks{
                         [&server] { return server.allocation_count(); },
                         [&server] { return server.oldest_heartbeat(); },
                         [&server] { server.end_all(core::EndReason::kDrained); },
                         [] { return net::now_ms(); },
                     });
  log::info("server.stopping", {}, "shutting down");
  app::notify_stopping("stopping");
  readiness.set_draining(true);  // /readyz answers 503 from here on
  if (calls) calls->stop();      // live calls end (records written) while the relay still runs
  if (http) http->stop();
  server.stop();
  server.join();
  if (shared) shared->stop();  // its record withdrawn: the others stop handing it out
  log::info("server.stopped", {}, "stopped");
  log::flush();  // the last lines reach stderr before anything is torn down (the exit hook too)
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Small freed blocks go straight back to the heap rather than to glibc's fastbins: after a
  // burst of expiries (100k allocations ending together) the next large malloc would merge every
  // block freed since, holding a worker's packets back for milliseconds (bench/timers: 14 ms,
  // about 1 ms without fastbins). The per-thread tcache still serves the hot small sizes.
  (void)mallopt(M_MXFAST, 0);
  // `callrelay ctl ...`: the operator's client of a running relay's admin API.
  if (argc > 1 && std::string_view(argv[1]) == "ctl")
    return app::run_ctl(std::vector<std::string>(argv + 2, argv + argc),
                        std::getenv("CALLRELAY_ADMIN_KEY"), std::cout, std::cerr);
  const app::ParseResult parsed =
      app::parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.cli) {
    std::fprintf(stderr, "callrelay: %s\n%s", parsed.error.c_str(), app::usage());
    return kExitConfig;
  }
  const app::CommandLine& cli = *parsed.cli;
  if (cli.command == app::CommandLine::Command::kHelp) {
    std::fputs(app::usage(), stdout);
    return 0;
  }
  if (cli.command == app::CommandLine::Command::kVersion) {
    std::printf("callrelay %s\n", CALLRELAY_VERSION);
    return 0;
  }
  if (cli.command == app::CommandLine::Command::kImportCoturn)
    return app::run_import_coturn(cli.import_path);
  config::Config cfg;
  try {
    cfg = load_config(cli);
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr, "config error: %s\n", e.what());
    return kExitConfig;
  }
  if (const auto level = log::parse_level(cfg.log.level)) log::set_level(*level);
  if (const auto format = log::parse_format(cfg.log.format)) log::set_format(*format);
  if (cli.command == app::CommandLine::Command::kCheckConfig) {
    std::printf("config OK\n");
    return 0;
  }
  try {
    return cli.command == app::CommandLine::Command::kMintCredential ? mint(cli, cfg)
                                                                     : serve(cli, cfg);
  } catch (const net::BindError& e) {
    log::error("listener.bind_failed", {{"error", e.what()}}, e.what());
    return kExitRuntime;
  } catch (const std::exception& e) {
    log::error("server.failed", {{"error", e.what()}}, e.what());
    return kExitRuntime;
  }
}
