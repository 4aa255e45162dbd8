// Address ranges as coturn's denied-peer-ip and allowed-peer-ip take them ("10.0.0.1" or
// "10.0.0.0-10.255.255.255"), turned into the CIDR blocks callrelay's peers lists take.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/stun/endpoint.hpp"

namespace callrelay::config::coturn {

__extension__ typedef unsigned __int128 Address;  ///< an address as a number (IPv4: low 32 bits)

/// An inclusive range of addresses of one family.
struct IpRange {
  stun::Family family = stun::Family::kIPv4;
  Address first = 0;
  Address last = 0;
};

/// Parses "ADDRESS" or "FIRST-LAST" (literal addresses only, as coturn 4.6 does). nullopt with
/// `why` set when it is not one.
std::optional<IpRange> parse_range(std::string_view text, std::string& why);

/// `from` without every address in `holes` (ranges of the other family are left alone).
std::vector<IpRange> subtract(const std::vector<IpRange>& from, const std::vector<IpRange>& holes);

/// The fewest CIDR blocks covering exactly `range`: "10.0.0.0/8", or a bare address for a
/// single one.
std::vector<std::string> to_cidrs(const IpRange& range);

}  // namespace callrelay::config::coturn
