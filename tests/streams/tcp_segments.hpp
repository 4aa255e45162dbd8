// The kernel's count of TCP segments with data a socket received (RFC 4898 DataSegsIn), in a
// translation unit of its own: linux/tcp.h, which has it, cannot be included beside the
// netinet/tcp.h that Asio and the tests use.
#pragma once

#include <cstdint>
#include <optional>

namespace callrelay::net::testing {

/// tcpi_data_segs_in of TCP socket `fd` (Linux 4.6 and later); nullopt if unavailable.
std::optional<uint32_t> data_segments_in(int fd);

}  // namespace callrelay::net::testing
