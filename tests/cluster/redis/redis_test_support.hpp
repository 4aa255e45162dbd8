// A real Redis server for tests (Debian's redis-server through
// tests/integration/redis/redis_server.sh, as `nobody` when run as root), in a directory of
// its own, that a test can stop, kill and restart on the same socket and port.
#pragma once

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#ifndef CALLRELAY_REDIS_SERVER_SCRIPT
#error "CALLRELAY_REDIS_SERVER_SCRIPT must name tests/integration/redis/redis_server.sh"
#endif

namespace callrelay::test {

class RedisServer {
 public:
  /// Starts a server on a unix socket and on 127.0.0.1:`port` (0: no TCP port).
  explicit RedisServer(uint16_t port = 0) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "callrelay-redis-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    port_ = port;
    url_ = run("start", port ? std::to_string(port) : "");
  }
  ~RedisServer() {
    try {
      run("stop");
    } catch (...) {
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  /// redis://127.0.0.1:PORT, or unix://DIR/redis.sock without a port.
  const std::string& url() const { return url_; }
  const std::string& dir() const { return dir_; }
  void stop() { run("stop"); }
  void kill() { run("kill"); }
  void start() { url_ = run("start"); }

 private:
  std::string run(const std::string& cmd, const std::string& arg = "") {
    const std::string line = std::string(CALLRELAY_REDIS_SERVER_SCRIPT) + " " + cmd + " '" +
                             dir_ + "' " + arg + " 2>&1";
    FILE* p = ::popen(line.c_str(), "r");
    if (p == nullptr) throw std::runtime_error("popen failed");
    std::string out;
    std::array<char, 256> buf{};
    while (std::fgets(buf.data(), buf.size(), p)) out += buf.data();
    const int status = ::pclose(p);
    if (status != 0) throw std::runtime_error("redis_server.sh " + cmd + " failed: " + out);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }
  std::string dir_;
  uint16_t port_ = 0;
  std::string url_;
};

}  // namespace callrelay::test
