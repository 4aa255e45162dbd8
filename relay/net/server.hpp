// The whole UDP relay: N workers, each on its own thread with its own sockets, bound and
// started together, stopped together.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "relay/core/turn_server.hpp"
#include "relay/net/relay_sockets.hpp"
#include "relay/net/stream_guard.hpp"
#include "relay/net/worker.hpp"

namespace callrelay::net {

/// The network part of the configuration.
struct ServerSettings {
  std::vector<stun::Endpoint> listen_udp;  ///< port 0: the kernel picks one, shared by all workers
  RelayNetSettings relay;
  core::CoreConfig core;
  unsigned workers = 0;  ///< 0: std::thread::hardware_concurrency()
  StreamSettings streams;  ///< TCP and TLS listeners (none by default here)
};

/// A bound TCP or TLS listen endpoint.
struct StreamEndpoint {
  core::Transport transport = core::Transport::kTcp;
  stun::Endpoint endpoint;
};

/// A listen socket could not be created or bound; the message names the address and errno.
class BindError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Server {
 public:
  /// Gives worker `index` its observer (may return null). Called once per worker.
  using ObserverFactory = std::function<core::Observer*(unsigned index)>;

  /// Creates the workers and binds every listener on every worker; nothing is served until
  /// start(). Throws BindError (nothing stays bound). The references must outlive the server.
  Server(const ServerSettings& settings, const SharedAuth& shared,
         const ObserverFactory& observers = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// The bound listen endpoints, in configuration order, with the actual ports. A wildcard
  /// IPv6 endpoint on a host without IPv6 is skipped (with a warning) and not listed.
  const std::vector<stun::Endpoint>& listening() const { return listening_; }
  /// The bound TCP and TLS endpoints (TCP first), with the actual ports.
  const std::vector<StreamEndpoint>& stream_listening() const { return stream_listening_; }
  /// Open TCP/TLS connections of every worker (only while the workers are not running).
  size_t stream_connection_count() const;
  unsigned worker_count() const { return static_cast<unsigned>(workers_.size()); }
  /// Relay sockets open across all workers (telemetry reads it at scrape time; any thread).
  uint64_t relay_ports_in_use() const;
  /// RFC 6062 peer data connections open across all workers (any thread).
  uint64_t tcp_peer_connections() const;
  /// TLS connections whose record buffers were freed while idle, across all workers, so far
  /// (any thread).
  uint64_t tls_buffer_trims() const;

  /// Starts one thread per worker.
  void start();
  /// Thread-safe, idempotent: every worker ends its allocations and closes its sockets.
  void stop();
  /// Any thread; returns at once. Every worker ends, on its own thread shortly after, the
  /// allocations made with call `call_id`'s credentials (core::TurnServer::end_call) and closes
  /// their relay sockets. Before start() it waits for the workers to run; after stop(), nothing.
  void end_call(std::string call_id);
  /// Any thread; returns at once. Every worker gives call `call_id`'s allocations (live, and
  /// those made later) the payload types `map` (core::TurnServer::set_payload_types), on its own
  /// thread shortly after. Replaces the call's previous map; the workers share `map`.
  void set_payload_types(std::string call_id, std::shared_ptr<const media::PayloadMap> map);
  /// Any thread; returns at once. Every worker ends, on its own thread shortly after, the
  /// allocations made with `username` (core::TurnServer::end_username, reason kRevoked).
  void end_username(const std::string& username);
  /// Any thread; returns at once. Every worker ends the allocations of user `user_id`
  /// (core::TurnServer::end_user) with reason `why`.
  void end_user(const std::string& user_id, core::EndReason why);
  /// Any thread: as end_user, then waits for every worker's count, each at most until
  /// `timeout` from the call, and returns how many allocations ended. A worker that does not
  /// answer in time (stopped, or stuck) counts none.
  size_t end_user_counted(const std::string& user_id, core::EndReason why,
                          std::chrono::milliseconds timeout);
  /// Any thread: worker `worker` ends its allocation with core id `id` (the metrics' id
  /// "<worker>-<id>") with reason `why`; waits at most `timeout` for it. False when there is no
  /// such worker or allocation, or the worker did not answer in time.
  bool end_allocation(unsigned worker, uint64_t id, core::EndReason why,
                      std::chrono::milliseconds timeout);
  /// Any thread; returns at once. Every worker refuses new Allocates from now on (300 with
  /// one of `alternates` of the client's family, else 403); live allocations run on.
  void start_draining(const std::vector<stun::Endpoint>& alternates);
  /// Any thread; returns at once. Every worker ends all its allocations with reason `why`
  /// (a drain's deadline: kDrained, before stop()).
  void end_all(core::EndReason why);
  /// The oldest worker heartbeat (now_ms() of its last housekeeping tick, at least one a
  /// second while it serves): a worker stuck in a loop makes this age. Any thread.
  core::TimeMs oldest_heartbeat() const;
  /// Live allocations across all workers, as of each worker's last tick (a second old at
  /// most). Any thread.
  uint64_t allocation_count() const;
  /// Any thread; returns at once. New TLS handshakes on every worker use `tls` (made with
  /// make_tls_context, which throws on a bad certificate or key, so a reload keeps the old
  /// one); connections already open keep theirs. Without TLS listeners nothing changes.
  void set_tls_context(std::shared_ptr<asio::ssl::context> tls);
  /// Any thread; returns at once. The live-changeable settings of `cfg` (quotas, lifetimes for
  /// new allocations, bandwidth caps: core::TurnServer::update_limits) apply on every worker
  /// shortly after; the shared caps at once.
  void update_limits(const core::CoreConfig& cfg);
  /// The quotas and shared caps of every worker (tests and telemetry read counts; any thread).
  core::UserLimits& user_limits() { return *users_; }
  /// Waits for the worker threads to finish (after stop()).
  void join();

 private:
  void bind_listeners(const std::vector<stun::Endpoint>& endpoints);
  /// TCP and TLS listeners on every worker (stream_server.cpp). Throws BindError.
  void bind_stream_listeners(const ServerSettings& settings, base::LimitCounters* counters);

  /// Declared first: it outlives every worker's allocations (each holds a slot in it).
  std::unique_ptr<core::UserLimits> users_;
  /// Admission of TCP/TLS connections shared by the workers (declared before them: their
  /// connections give their places back as they close).
  std::unique_ptr<StreamGuard> stream_guard_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::vector<stun::Endpoint> listening_;
  std::vector<StreamEndpoint> stream_listening_;
};

/// Number of workers for a configured count (0: one per core, at least one).
unsigned resolve_worker_count(unsigned configured);

}  // namespace callrelay::net
