// RFC 6062 data connections on any worker. The kernel spreads TCP/TLS connections over the
// workers by their 4-tuple, so a client's data connection (ConnectionBind) may reach a worker
// other than the one holding its peer data connection. The workers share a registry of which
// one holds each CONNECTION-ID; the worker that reads a ConnectionBind for a CONNECTION-ID held
// elsewhere hands the client's connection (its descriptor, the TLS session, the bytes already
// read) to that worker's mailbox, and the owner answers the ConnectionBind and splices as if
// it had accepted the connection itself. Control path: a mutex guards the registry.
#pragma once

#include <openssl/ssl.h>

#include <asio/ssl.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "relay/core/types.hpp"
#include "relay/stun/endpoint.hpp"

namespace callrelay::net {

class StreamGuard;

/// Which worker holds each peer data connection (CONNECTION-ID -> worker index). Written when
/// a peer connection is made or accepted and when it ends; read when a ConnectionBind names a
/// CONNECTION-ID the reading worker does not hold. Thread-safe.
class ConnectionOwners {
 public:
  /// Records `worker` as the holder of `cid`; false when another worker holds it (CONNECTION-
  /// IDs are random per worker: a clash between two workers is refused, not overwritten).
  bool claim(core::ConnectionId cid, unsigned worker);
  /// Forgets `cid` if `worker` holds it.
  void release(core::ConnectionId cid, unsigned worker);
  std::optional<unsigned> owner(core::ConnectionId cid) const;
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<core::ConnectionId, unsigned> owners_;
};

/// A client connection on its way from the worker that accepted it to the worker that holds
/// the peer data connection its ConnectionBind names. Owns what it carries: destroyed without
/// being adopted, it closes the descriptor, frees the TLS session and gives the connection's
/// admission back to the shared guard.
struct StreamHandoff {
  StreamHandoff() = default;
  ~StreamHandoff();
  StreamHandoff(const StreamHandoff&) = delete;
  StreamHandoff& operator=(const StreamHandoff&) = delete;

  core::Transport transport = core::Transport::kTcp;
  stun::Endpoint client, server;
  int fd = -1;
  /// TLS: the established session (one reference owned here) and its context.
  SSL* ssl = nullptr;
  std::shared_ptr<asio::ssl::context> tls;
  /// The ConnectionBind frame and every byte the client sent after it that was already read
  /// (TLS: decrypted), in order.
  std::vector<uint8_t> bytes;
  /// Where the connection was admitted (released when the connection finally closes).
  StreamGuard* guard = nullptr;
};

/// What the workers of one server share for hand-offs. Built before the workers run.
struct StreamLinks {
  explicit StreamLinks(size_t workers) : deliver(workers) {}
  ConnectionOwners owners;
  /// deliver[w] passes a hand-off to worker w's thread (its mailbox). Set before run().
  std::vector<std::function<void(std::unique_ptr<StreamHandoff>)>> deliver;
};

/// The CONNECTION-ID a ConnectionBind request names, or nothing (another message, or one that
/// does not parse: the core answers those as usual).
std::optional<core::ConnectionId> connection_bind_target(std::span<const uint8_t> frame);

/// Client connections handed from one worker to another since the process started (any
/// thread; tests and telemetry).
uint64_t stream_handoffs();
void count_stream_handoff();

}  // namespace callrelay::net
