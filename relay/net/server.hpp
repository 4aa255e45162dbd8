// The whole UDP relay: N workers, each on its own thread with its own sockets, bound and
// started together, stopped together.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "relay/core/turn_server.hpp"
#include "relay/net/relay_sockets.hpp"
#include "relay/net/worker.hpp"

namespace callrelay::net {

/// The network part of the configuration.
struct ServerSettings {
  std::vector<stun::Endpoint> listen_udp;  ///< port 0: the kernel picks one, shared by all workers
  RelayNetSettings relay;
  core::CoreConfig core;
  unsigned workers = 0;  ///< 0: std::thread::hardware_concurrency()
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
  unsigned worker_count() const { return static_cast<unsigned>(workers_.size()); }

  /// Starts one thread per worker.
  void start();
  /// Thread-safe, idempotent: every worker ends its allocations and closes its sockets.
  void stop();
  /// Waits for the worker threads to finish (after stop()).
  void join();

 private:
  void bind_listeners(const std::vector<stun::Endpoint>& endpoints);

  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  std::vector<stun::Endpoint> listening_;
};

/// Number of workers for a configured count (0: one per core, at least one).
unsigned resolve_worker_count(unsigned configured);

}  // namespace callrelay::net
