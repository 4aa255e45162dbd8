// Strict input, per method and attribute: an attribute whose length or value is wrong for its
// type gets 400 naming it in every method that can carry it (a Send indication is dropped), and
// the same attribute well formed is accepted by the same rule. Requests that authenticate get a
// signed 400; malformed credentials get an unsigned one.
#include <string>
#include <vector>

#include "tests/core/core_test_support.hpp"

namespace callrelay::core::testing {
namespace {

using stun::Method;
namespace at = stun::attr;
using Bytes = std::vector<uint8_t>;

/// XOR-PEER-ADDRESS values: IPv4 93.184.216.34:7000 encoded for any transaction (the address
/// bytes need not decode to anything sensible for a format check).
const Bytes kGoodV4Peer = {0x00, 0x01, 0x3A, 0x4A, 0x7C, 0xAA, 0xC8, 0x60};

struct Case {
  Method method;
  uint16_t type;
  Bytes bad;
  Bytes good;
  const char* reason;
};

std::string name_of(const Case& c) {
  return "method " + std::to_string(static_cast<int>(c.method)) + " / " + c.reason + " (" +
         std::to_string(c.bad.size()) + " bytes)";
}

/// Every rule of relay/core/validate.cpp, in each method that can carry the attribute.
std::vector<Case> cases() {
  const Bytes u32 = {0, 0, 2, 0x58};
  std::vector<Case> v;
  for (Method m : {Method::kAllocate, Method::kRefresh}) {
    v.push_back({m, at::kLifetime, {0, 2, 0x58}, u32, "Malformed LIFETIME"});
    v.push_back({m, at::kLifetime, {0, 0, 0, 0, 2, 0x58}, u32, "Malformed LIFETIME"});
    v.push_back({m,
                 at::kRequestedAddressFamily,
                 {1, 0},
                 {1, 0, 0, 0},
                 "Malformed REQUESTED-ADDRESS-FAMILY"});
  }
  v.push_back({Method::kAllocate,
               at::kRequestedTransport,
               {17, 0},
               {17, 0, 0, 0},
               "Malformed REQUESTED-TRANSPORT"});
  v.push_back({Method::kAllocate, at::kEvenPort, {}, {0x80}, "Malformed EVEN-PORT"});
  v.push_back({Method::kAllocate,
               at::kEvenPort,
               {0x80, 0, 0, 0, 0},
               {0x80, 0, 0, 0},
               "Malformed EVEN-PORT"});
  v.push_back({Method::kAllocate, at::kDontFragment, {0}, {}, "Malformed DONT-FRAGMENT"});
  v.push_back({Method::kAllocate,
               at::kReservationToken,
               {1, 2, 3, 4},
               {1, 2, 3, 4, 5, 6, 7, 8},
               "Malformed RESERVATION-TOKEN"});
  v.push_back({Method::kAllocate,
               at::kAdditionalAddressFamily,
               {1, 0, 0, 0},
               {2, 0, 0, 0},
               "ADDITIONAL-ADDRESS-FAMILY must be IPv6"});
  v.push_back({Method::kAllocate,
               at::kAdditionalAddressFamily,
               {2, 0},
               {2, 0, 0, 0},
               "ADDITIONAL-ADDRESS-FAMILY must be IPv6"});
  for (Method m : {Method::kCreatePermission, Method::kChannelBind, Method::kConnect}) {
    v.push_back(
        {m, at::kXorPeerAddress, {0x00, 0x01, 0x1B}, kGoodV4Peer, "Malformed XOR-PEER-ADDRESS"});
    v.push_back({m,
                 at::kXorPeerAddress,
                 {0x00, 0x03, 0x1B, 0x58, 1, 2, 3, 4},
                 kGoodV4Peer,
                 "Malformed XOR-PEER-ADDRESS"});
    Bytes v4_long(20, 0);
    v4_long[1] = 0x01;
    v.push_back({m, at::kXorPeerAddress, v4_long, kGoodV4Peer, "Malformed XOR-PEER-ADDRESS"});
    v.push_back({m,
                 at::kXorPeerAddress,
                 {0x00, 0x02, 0x1B, 0x58, 1, 2, 3, 4},
                 kGoodV4Peer,
                 "Malformed XOR-PEER-ADDRESS"});
  }
  v.push_back({Method::kChannelBind,
               at::kChannelNumber,
               {0x40, 0x00},
               {0x40, 0x00, 0, 0},
               "Malformed CHANNEL-NUMBER"});
  v.push_back({Method::kChannelBind,
               at::kChannelNumber,
               {0x3F, 0xFF, 0, 0},
               {0x40, 0x00, 0, 0},
               "Malformed CHANNEL-NUMBER"});
  v.push_back({Method::kChannelBind,
               at::kChannelNumber,
               {0x80, 0x00, 0, 0},
               {0x4F, 0xFF, 0, 0},
               "Malformed CHANNEL-NUMBER"});
  v.push_back({Method::kConnectionBind,
               at::kConnectionId,
               {0, 1},
               {0, 0, 0, 1},
               "Malformed CONNECTION-ID"});
  v.push_back(
      {Method::kBinding, at::kPriority, {0, 1}, {0x6E, 0, 0x1E, 0xFF}, "Malformed PRIORITY"});
  v.push_back({Method::kBinding, at::kUseCandidate, {0, 0, 0, 0}, {}, "Malformed USE-CANDIDATE"});
  v.push_back({Method::kBinding,
               at::kIceControlling,
               {1, 2, 3, 4},
               Bytes(8, 7),
               "Malformed ICE-CONTROLLING"});
  v.push_back({Method::kBinding, at::kIceControlled, Bytes(12, 7), Bytes(8, 7),
               "Malformed ICE-CONTROLLED"});
  for (Method m : {Method::kBinding, Method::kAllocate, Method::kRefresh, Method::kCreatePermission,
                   Method::kChannelBind, Method::kConnect, Method::kConnectionBind}) {
    v.push_back({m, at::kSoftware, Bytes(800, 'x'), Bytes(20, 'x'), "Malformed SOFTWARE"});
  }
  return v;
}

/// Credential attributes: their 400 is unsigned (the request cannot be authenticated).
std::vector<Case> credential_cases() {
  std::vector<Case> v;
  for (Method m : {Method::kBinding, Method::kAllocate, Method::kRefresh, Method::kCreatePermission,
                   Method::kChannelBind, Method::kConnect, Method::kConnectionBind}) {
    v.push_back({m, at::kUsername, Bytes(600, 'u'), Bytes(8, 'u'), "Malformed USERNAME"});
    v.push_back({m, at::kUserhash, Bytes(16, 1), Bytes(32, 1), "Malformed USERHASH"});
    v.push_back({m, at::kRealm, {}, Bytes(5, 'r'), "Malformed REALM"});
    v.push_back({m, at::kNonce, Bytes(800, 'n'), Bytes(30, 'n'), "Malformed NONCE"});
    v.push_back(
        {m, at::kPasswordAlgorithm, {0, 2, 0, 4}, {0, 2, 0, 0}, "Malformed PASSWORD-ALGORITHM"});
    v.push_back({m,
                 at::kPasswordAlgorithms,
                 {0, 2, 0, 0, 0, 1},
                 {0, 2, 0, 0, 0, 1, 0, 0},
                 "Malformed PASSWORD-ALGORITHMS"});
  }
  return v;
}

struct StrictAttributes : ::testing::Test {
  StrictAttributes() {
    c = h.rest_client();
    h.allocate(c, kT0);
  }
  /// Sends `m` with attribute `type` = `value` (signed when `sign`); the response.
  Response send(Method m, uint16_t type, const Bytes& value, bool sign) {
    return h.request(
        c, m, [&](stun::MessageBuilder& b) { b.add_bytes(type, value); }, kT0, sign);
  }
  std::string reason(const Response& r) {
    const auto e = r.view().error_code();
    return e ? std::string(e->reason) : std::string();
  }
  Harness h;
  Client c;
};

TEST_F(StrictAttributes, WrongLengthOrValueGetsSigned400InEveryMethodThatCarriesIt) {
  for (const Case& k : cases()) {
    SCOPED_TRACE(name_of(k));
    const Response bad = send(k.method, k.type, k.bad, /*sign=*/true);
    EXPECT_EQ(bad.code(), 400);
    EXPECT_EQ(reason(bad), k.reason);
    EXPECT_EQ(stun::check_integrity(bad.view(), c.key()), stun::Integrity::kOk);
    const Response good = send(k.method, k.type, k.good, /*sign=*/true);
    EXPECT_NE(reason(good), k.reason) << "the well-formed attribute was refused";
  }
  EXPECT_EQ(h.server->allocation_count(), 1u);
}

TEST_F(StrictAttributes, UnauthenticatedRequestsGetUnsigned400) {
  for (const Case& k : cases()) {
    SCOPED_TRACE(name_of(k));
    const Response bad = send(k.method, k.type, k.bad, /*sign=*/false);
    EXPECT_EQ(bad.code(), 400);
    EXPECT_EQ(reason(bad), k.reason);
    EXPECT_FALSE(bad.has(at::kMessageIntegrity));
  }
}

TEST_F(StrictAttributes, MalformedCredentialAttributesGetUnsigned400) {
  for (const Case& k : credential_cases()) {
    SCOPED_TRACE(name_of(k));
    const Response bad = send(k.method, k.type, k.bad, /*sign=*/true);
    EXPECT_EQ(bad.code(), 400);
    EXPECT_EQ(reason(bad), k.reason);
    EXPECT_FALSE(bad.has(at::kMessageIntegrity));
    const Response good = send(k.method, k.type, k.good, /*sign=*/false);
    EXPECT_NE(reason(good), k.reason) << "the well-formed attribute was refused";
  }
}

TEST_F(StrictAttributes, BadCredentialsWithAMalformedAttributeGetTheChallenge) {
  // Not a 400 that an attacker without the password could use to probe the attribute rules
  // with signed-looking requests: authentication answers first.
  c.password = "wrong";
  const Response r = send(Method::kRefresh, at::kLifetime, {0, 1}, /*sign=*/true);
  EXPECT_EQ(r.code(), 401);
}

TEST_F(StrictAttributes, AttributesOutsideTheirMethodsAreNotJudged) {
  // LIFETIME means nothing in a Binding request: ignored, as RFC 8489 section 6.3 ignores
  // attributes a method does not use.
  const Response r = send(Method::kBinding, at::kLifetime, {0, 1}, /*sign=*/false);
  EXPECT_EQ(r.code(), 0);
}

TEST_F(StrictAttributes, MalformedSendIndicationsAreDroppedAndCounted) {
  const Endpoint peer = ep("93.184.216.34:7000");
  ASSERT_EQ(h.create_permission(c, peer, kT0).code(), 0);
  const auto send_with = [&](const AttrFn& attrs) {
    return h.server->on_client_packet(
        c.tuple, c.build(Method::kSend, attrs, false, c.next_tid(), stun::Class::kIndication), kT0);
  };
  const Bytes payload = {1, 2, 3};
  const Output ok = send_with([&](stun::MessageBuilder& b) {
    b.add_xor_address(at::kXorPeerAddress, peer);
    b.add_bytes(at::kData, payload);
  });
  EXPECT_EQ(ok.kind, Output::Kind::kToPeer);
  const std::vector<std::pair<uint16_t, Bytes>> bad{
      {at::kXorPeerAddress, {0x00, 0x01, 0x1B}},
      {at::kXorPeerAddress, {0x00, 0x07, 0x1B, 0x58, 1, 2, 3, 4}},
      {at::kDontFragment, {0, 0, 0, 0}},
      {at::kSoftware, Bytes(800, 's')},
  };
  for (const auto& [type, value] : bad) {
    SCOPED_TRACE(type);
    h.observer.drops.clear();
    const Output out = send_with([&](stun::MessageBuilder& b) {
      b.add_bytes(type, value);
      b.add_xor_address(at::kXorPeerAddress, peer);
      b.add_bytes(at::kData, payload);
    });
    EXPECT_EQ(out.kind, Output::Kind::kNone);
    EXPECT_EQ(h.observer.drops, std::vector<DropReason>{DropReason::kMalformed});
  }
}

}  // namespace
}  // namespace callrelay::core::testing
