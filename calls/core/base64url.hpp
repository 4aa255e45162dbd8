// base64url without padding (RFC 4648 section 5 and 3.2), as JWS (RFC 7515 section 2) and the
// records API's cursors use it. Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace callrelay::calls {

std::string base64url_encode(std::string_view bytes);

/// The bytes `text` encodes, or nullopt for a character outside the alphabet, padding, or a
/// length no encoding has. With `canonical`, non-zero trailing bits are refused too (RFC 4648
/// section 3.5), so that every value has exactly one accepted text.
std::optional<std::string> base64url_decode(std::string_view text, bool canonical = false);

}  // namespace callrelay::calls
