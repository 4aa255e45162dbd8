// Raw Allocate for the credential tests: the exact final response code.
#include "tests/integration/tools/allocate.hpp"

#include <cstdio>
#include <string_view>
#include <vector>

#include "tests/integration/tools/turn_client.hpp"
#include "tests/integration/tools/udp.hpp"

namespace callrelay::integ {

int run_allocate(const std::string& host, uint16_t port, const std::string& username,
                 const std::string& password) {
  TurnClient client(host, port, username, password);
  if (!client.ok()) return 1;
  const auto code = client.allocate();
  if (!code) return 1;
  if (*code == 200) client.refresh(0);  // release the allocation at once
  std::printf("%d\n", *code);
  return 0;
}

namespace {

bool step(const char* what, const std::optional<int>& code) {
  std::printf("%s: %s\n", what, code ? std::to_string(*code).c_str() : "no answer");
  return code == 200;
}

/// Waits (bounded) on `sock` for a datagram equal to `want`.
bool peer_receives(UdpSocket& sock, std::string_view want) {
  std::vector<uint8_t> buf(2048);
  for (int i = 0; i < 10; ++i) {
    const auto got = sock.receive(buf, 500);
    if (got && std::string_view(reinterpret_cast<const char*>(buf.data()), *got) == want) return true;
  }
  return false;
}

}  // namespace

int run_sha256_relay(const std::string& host, uint16_t port, const std::string& username,
                     const std::string& password) {
  TurnClient client(host, port, username, password);
  UdpSocket peer("127.0.0.1", 0);
  if (!client.ok() || !peer.ok()) return 1;
  client.use_sha256(true);
  if (!step("allocate (SHA-256)", client.allocate())) return 1;
  std::printf("relayed %s\n", client.relayed().text().c_str());
  if (!step("create-permission", client.create_permission("127.0.0.1", peer.local_port()))) return 1;
  constexpr uint16_t kChannel = 0x4001;
  if (!step("channel-bind", client.channel_bind(kChannel, "127.0.0.1", peer.local_port()))) return 1;
  const std::string out = "sha256-client-to-peer";
  client.send_channel_data(kChannel, {reinterpret_cast<const uint8_t*>(out.data()), out.size()});
  if (!peer_receives(peer, out)) {
    std::printf("peer: nothing relayed\n");
    return 1;
  }
  const std::string back = "sha256-peer-to-client";
  bool returned = false;
  for (int i = 0; i < 10 && !returned; ++i) {
    peer.send_to(client.relayed().ip, client.relayed().port,
                 reinterpret_cast<const uint8_t*>(back.data()), back.size());
    const auto got = client.receive_channel_data(500);
    returned = got && std::string_view(reinterpret_cast<const char*>(got->data()), got->size()) == back;
  }
  std::printf("relayed both ways: %s\n", returned ? "yes" : "no");
  const bool released = step("refresh 0", client.refresh(0));
  std::printf("responses signed with MESSAGE-INTEGRITY-SHA256: %d, unsigned or bad: %d\n",
              client.signed_sha256(), client.unsigned_or_bad());
  return returned && released && client.unsigned_or_bad() == 0 && client.signed_sha256() >= 4 ? 0 : 1;
}

}  // namespace callrelay::integ
