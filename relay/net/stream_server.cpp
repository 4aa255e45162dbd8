// Server's stream part: one TCP/TLS listen socket per endpoint on every worker, in one
// SO_REUSEPORT group, so the kernel spreads connections over the workers by their 4-tuple
// (clients behind one NAT address use every worker); RFC 6062 data connections reach their
// peer connection's worker through the links the workers share (stream_handoff.hpp).
#include <cerrno>

#include "relay/net/server.hpp"
#include "relay/net/socket_ops.hpp"
#include "base/log.hpp"

namespace callrelay::net {

void Server::bind_stream_listeners(const ServerSettings& settings,
                                   base::LimitCounters* counters) {
  const StreamSettings& st = settings.streams;
  if (st.listen_tcp.empty() && st.listen_tls.empty()) return;
  // Every connection holds a descriptor: use all the process may have, and keep a reserve of
  // them for relay sockets (StreamGuard).
  const uint64_t nofile = raise_descriptor_limit();
  stream_guard_ = std::make_unique<StreamGuard>(settings.core.abuse, nofile, counters);
  std::shared_ptr<asio::ssl::context> tls;
  if (!st.listen_tls.empty()) {
    if (st.tls.cert_file.empty() || st.tls.key_file.empty()) {
      throw BindError("cannot listen on tls: no certificate and key configured");
    }
    try {
      tls = make_tls_context(st.tls);
    } catch (const std::exception& e) {
      throw BindError(e.what());
    }
  }
  StreamLimits limits = st.limits;
  limits.unauth_bytes = settings.core.abuse.tcp_unauth_bytes;
  limits.counters = counters;
  limits.guard = stream_guard_.get();
  if (limits.max_connections != 0) {  // per server in the settings, per worker here
    limits.max_connections = (limits.max_connections + workers_.size() - 1) / workers_.size();
  }
  const auto bind_all = [&](const std::vector<stun::Endpoint>& endpoints, core::Transport t,
                            const std::shared_ptr<asio::ssl::context>& ctx) {
    const char* name = core::to_string(t);
    for (const stun::Endpoint& ep : endpoints) {
      stun::Endpoint bound;
      try {
        bound = workers_[0]->add_stream_listener(ep, /*join=*/false, limits, ctx);
      } catch (const asio::system_error& e) {
        if (e.code() == asio::error::address_family_not_supported && !ep.is_v4() &&
            is_unspecified(ep)) {
          log::warn("listener.ipv6_unavailable", {{"transport", name}, {"address", ep.to_string()}},
                    "IPv6 is not available on this host; not listening on ", name, " ",
                    ep.to_string());
          continue;
        }
        throw BindError(std::string("cannot listen on ") + name + " " + ep.to_string() + ": " +
                        e.code().message());
      }
      for (size_t w = 1; w < workers_.size(); ++w) {
        try {
          workers_[w]->add_stream_listener(bound, /*join=*/true, limits, ctx);
        } catch (const asio::system_error& e) {
          throw BindError(std::string("cannot listen on ") + name + " " + bound.to_string() + ": " +
                          e.code().message());
        }
      }
      stream_listening_.push_back({t, bound});
    }
  };
  bind_all(st.listen_tcp, core::Transport::kTcp, nullptr);
  bind_all(st.listen_tls, core::Transport::kTls, tls);
  if (workers_.size() > 1 && !stream_listening_.empty()) {
    auto links = std::make_shared<StreamLinks>(workers_.size());
    for (auto& w : workers_) w->link_streams(links);
  }
}

size_t Server::stream_connection_count() const {
  size_t n = 0;
  for (const auto& w : workers_) n += w->stream_connection_count();
  return n;
}

}  // namespace callrelay::net
