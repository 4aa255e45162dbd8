#include "app/credentials.hpp"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "relay/core/auth.hpp"

namespace callrelay::app {
namespace {


std::string errno_text(int err) { return std::strerror(err); }

std::string trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

void ensure_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return;
  if (dir.has_parent_path()) std::filesystem::create_directories(dir.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw std::runtime_error("cannot create state directory '" + dir.string() +
                             "': " + errno_text(errno) +
                             " (set state_dir in the config or pass --state-dir DIR)");
  }
}

void write_secret_file(const std::filesystem::path& path, const std::string& secret) {
  const std::string tmp = path.string() + ".tmp";
  ::unlink(tmp.c_str());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw std::runtime_error("cannot create '" + tmp + "': " + errno_text(errno) +
                             " (set state_dir in the config or pass --state-dir DIR)");
  }
  const std::string line = secret + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                  ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  // rename() makes the file appear whole: a crash never leaves a half-written secret.
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write '" + path.string() +
                             "': " + errno_text(ok ? errno : err));
  }
}

}  // namespace

std::array<uint8_t, 32> random_bytes32() {
  std::array<uint8_t, 32> out{};
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    throw std::runtime_error("OpenSSL RAND_bytes failed: no secure random source");
  }
  return out;
}

std::string to_hex(const uint8_t* bytes, size_t len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xF]);
  }
  return out;
}

StateSecret load_or_create_secret(const std::string& state_dir, const std::string& file_name) {
  const std::filesystem::path dir(state_dir);
  const std::filesystem::path path = dir / file_name;
  StateSecret result;
  result.path = path.string();
  std::ifstream in(path);
  if (in) {
    std::stringstream buf;
    buf << in.rdbuf();
    result.secret = trim(buf.str());
    if (result.secret.empty()) {
      throw std::runtime_error("'" + result.path +
                               "' is empty: delete it to generate a new secret");
    }
    return result;
  }
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    throw std::runtime_error("cannot read '" + result.path + "' (check its owner and mode)");
  }
  ensure_directory(dir);
  const auto bytes = random_bytes32();
  result.secret = to_hex(bytes.data(), bytes.size());
  write_secret_file(path, result.secret);
  result.created = true;
  return result;
}

RestCredential mint_credential(std::string_view secret, std::string_view user, int64_t expiry_unix,
                               char separator) {
  RestCredential c;
  c.username = std::to_string(expiry_unix) + separator + std::string(user);
  c.password = core::Authenticator::rest_password(secret, c.username);
  return c;
}

std::string mint_instructions(const StateSecret& secret, const std::string& state_dir,
                              const std::string& config_path) {
  std::string cmd = "callrelay mint-credential USER [--ttl SECONDS]";
  if (!config_path.empty()) cmd += " --config " + config_path;
  cmd += " --state-dir " + state_dir;
  return std::string("REST secret ") + (secret.created ? "generated in " : "read from ") +
         secret.path + " (mode 0600)\n" + "mint a TURN credential with:  " + cmd + "\n" +
         "  (username = \"<unix expiry>:<user>\", password = base64(HMAC-SHA1(secret, username)))";
}

}  // namespace callrelay::app
