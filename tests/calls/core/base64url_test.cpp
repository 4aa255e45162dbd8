// base64url without padding (RFC 4648 section 10 vectors, in the URL-safe alphabet).
#include "calls/core/base64url.hpp"

#include <gtest/gtest.h>

namespace callrelay::calls {
namespace {

TEST(Base64url, Rfc4648VectorsRoundTrip) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg"},         {"fo", "Zm8"},       {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64url_encode(plain), encoded);
    EXPECT_EQ(base64url_decode(encoded).value_or("?"), plain) << encoded;
  }
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");  // the URL-safe characters
}

TEST(Base64url, RefusesWhatNoEncoderWrites) {
  EXPECT_FALSE(base64url_decode("Zm9v="));  // padding
  EXPECT_FALSE(base64url_decode("Zm+v"));   // the other alphabet
  EXPECT_FALSE(base64url_decode("Zm9vY"));  // a length no quantum ends with
  EXPECT_TRUE(base64url_decode("Zh"));      // trailing bits set: tolerated...
  EXPECT_FALSE(base64url_decode("Zh", /*canonical=*/true));  // ...unless canonical
  EXPECT_EQ(base64url_decode("Zg", true).value_or("?"), "f");
}

}  // namespace
}  // namespace callrelay::calls
