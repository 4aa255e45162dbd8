// The signaling load: N devices (users u0..uN-1) connect to /api/v1/signal, the first `calls`
// invite one callee each from the other half, the callees ring, then accept, the two sides
// negotiate (offer, answer, connected) and exchange candidates as fast as the server
// acknowledges them, and finally hang up. All sockets run on one io_context thread; the
// caller of the phase methods (main) paces them and reads the figures.
#pragma once

#include <asio/ip/tcp.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace callrelay::bench::signal {

struct Options {
  asio::ip::tcp::endpoint server;
  /// Where the callees connect, when not to `server`: another instance of the same cluster,
  /// so that every call is set up across instances (through Redis).
  std::optional<asio::ip::tcp::endpoint> callee_server;
  std::string secret;  ///< calls.token_secret, to mint the users' JWTs
  size_t connections = 1000;
  size_t calls = 500;                ///< at most connections / 2
  double call_rate = 200;            ///< invites (and later accepts) sent per second
  size_t connect_concurrency = 100;  ///< upgrades in progress at once
  size_t window = 4;                 ///< candidates in flight per device during the burst
  double timeout_s = 60;             ///< a phase that does not finish within this fails
  bool quick_ack = false;            ///< TCP_QUICKACK on every read (a diagnostic)
};

/// Latencies of one kind, in nanoseconds, one per call.
using Samples = std::vector<uint64_t>;

struct BurstFigures {
  double seconds = 0;
  uint64_t acked = 0;      ///< candidates the server acknowledged (client messages handled)
  uint64_t forwarded = 0;  ///< candidates the server forwarded to the other device
  uint64_t errors = 0;     ///< candidates answered with an error (rate-limited, ...)
};

class Scenario {
 public:
  explicit Scenario(Options options);
  ~Scenario();
  Scenario(const Scenario&) = delete;
  Scenario& operator=(const Scenario&) = delete;

  /// Opens every connection and waits for each `welcome`; returns the seconds it took.
  double connect_all();
  /// Sends the invites at call_rate and waits until every callee rang and every caller got
  /// its ack and `ringing`. Fills invite->ack and invite->callee-invite latencies.
  void invite_all(Samples& invite_ack, Samples& invite_delivered);
  /// Accepts every call at call_rate, then offer, answer and connected on both sides; waits
  /// for both sides' `state: active`. Fills accept->accepted latencies.
  void accept_all(Samples& accept_accepted);
  /// Starts the candidate burst (window per device) and returns immediately.
  void start_burst();
  /// Counters of the burst so far (consistent snapshot from the io thread).
  BurstFigures burst_counters();
  /// Stops sending candidates and waits for the ones in flight.
  void stop_burst();
  /// Callers hang up; waits until both devices of every call got `ended`.
  void hangup_all();
  /// Closes every connection and waits for the server to close them.
  void close_all();

  /// Server messages that were errors, unparseable, or unexpected, and connections the server
  /// closed: the first few, for the report.
  std::vector<std::string> problems();
  uint64_t error_count();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace callrelay::bench::signal
