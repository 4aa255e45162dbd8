// Raw Allocate for the credential tests: the exact final response code.
#include "tests/integration/tools/allocate.hpp"

#include <cstdio>

#include "tests/integration/tools/turn_client.hpp"

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

}  // namespace callrelay::integ
