// The seam between the worker and the ways clients reach it. UDP listeners implement it now;
// TCP and TLS stream connections (a later issue) implement the same interface, so the worker
// routes the core's outputs without knowing the transport.
#pragma once

#include <cstdint>
#include <span>

#include "relay/core/types.hpp"

namespace callrelay::net {

/// Something that delivers bytes to clients: a UDP listener socket (one per listen endpoint
/// per worker) or, later, a stream connection. Thread: its worker's thread only.
class ClientTransport {
 public:
  virtual ~ClientTransport() = default;
  /// Sends `data` to `to.client`, from `to.server`. `stable`: `data` stays valid until the
  /// next flush() (it lives in the worker's receive batch), so it may be queued and batched;
  /// otherwise it must be sent (or copied) before returning. Never throws; errors drop it.
  virtual void send(const core::FiveTuple& to, std::span<const uint8_t> data, bool stable) = 0;
  /// Sends whatever send() queued.
  virtual void flush() = 0;
  /// Stops receiving and closes the transport (shutdown).
  virtual void close() = 0;
};

}  // namespace callrelay::net
