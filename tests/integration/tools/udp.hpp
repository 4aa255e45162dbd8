// A minimal blocking UDP socket for the integration test helpers (IPv4 or IPv6 by the
// address's form). Test tooling only: errors are reported on stderr and as empty results.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace callrelay::integ {

/// Fills a sockaddr_storage from a numeric address and port; false if the address is not numeric.
inline bool make_sockaddr(const std::string& host, uint16_t port, sockaddr_storage& out,
                          socklen_t& len) {
  std::memset(&out, 0, sizeof(out));
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

/// A UDP socket bound to a local numeric address and port (0: any port).
class UdpSocket {
 public:
  UdpSocket(const std::string& local_host, uint16_t local_port) {
    sockaddr_storage addr{};
    socklen_t len = 0;
    if (!make_sockaddr(local_host, local_port, addr, len)) {
      std::fprintf(stderr, "integ_tool: bad address %s\n", local_host.c_str());
      return;
    }
    fd_ = ::socket(addr.ss_family, SOCK_DGRAM, 0);
    if (fd_ < 0) return;
    int size = 1 << 20;
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~UdpSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  /// True if the socket was created and bound.
  bool ok() const { return fd_ >= 0; }

  /// The bound local port (host order).
  uint16_t local_port() const {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    if (addr.ss_family == AF_INET6) {
      return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    }
    return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }

  /// Sends one datagram; false (and a message) if the kernel refused it.
  bool send_to(const std::string& host, uint16_t port, const uint8_t* data, size_t size) {
    sockaddr_storage addr{};
    socklen_t len = 0;
    if (!make_sockaddr(host, port, addr, len)) return false;
    const auto sent = ::sendto(fd_, data, size, 0, reinterpret_cast<sockaddr*>(&addr), len);
    if (sent < 0 || static_cast<size_t>(sent) != size) {
      std::fprintf(stderr, "integ_tool: sendto %zu bytes failed: %s\n", size,
                   std::strerror(errno));
      return false;
    }
    return true;
  }

  /// Waits up to timeout_ms for one datagram; its size, or nothing on timeout.
  std::optional<size_t> receive(std::vector<uint8_t>& buf, int timeout_ms) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) <= 0) return std::nullopt;
    const auto got = ::recv(fd_, buf.data(), buf.size(), 0);
    if (got < 0) return std::nullopt;
    return static_cast<size_t>(got);
  }

 private:
  int fd_ = -1;
};

}  // namespace callrelay::integ
