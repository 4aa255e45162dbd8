#include "app/import_coturn.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "config/config.hpp"
#include "config/coturn_import.hpp"

namespace callrelay::app {
namespace {

/// coturn reads lines of up to 1 KiB; a file of megabytes is no turnserver.conf.
constexpr std::streamsize kMaxBytes = 4 << 20;

/// The file's text, or nullopt having said on stderr why it cannot be read.
std::optional<std::string> read_conf(const std::string& path) {
  const auto fail = [&path](const std::string& why) {
    std::fprintf(stderr, "callrelay import-coturn: cannot read %s: %s\n", path.c_str(),
                 why.c_str());
    return std::nullopt;
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return fail("it is a directory");
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(errno != 0 ? std::strerror(errno) : "cannot open");
  std::string text(static_cast<size_t>(kMaxBytes) + 1, '\0');
  in.read(text.data(), kMaxBytes + 1);
  if (in.bad()) return fail("read error");
  text.resize(static_cast<size_t>(in.gcount()));
  if (static_cast<std::streamsize>(text.size()) > kMaxBytes)
    return fail("larger than 4 MiB: not a turnserver.conf");
  if (text.find('\0') != std::string::npos) return fail("it holds NUL bytes: not a text file");
  return text;
}

/// The file coturn 4.6 opens for a relative name (apputils.c find_config_file): the first
/// that exists of the working directory's ./, turnserver/, coturn/, etc/... and ../etc/...,
/// then /etc and /usr/local/etc (each also with turnserver/ and coturn/). Then the
/// configuration file's own directory, as coturn's documentation promises. None: the name in
/// the working directory (the check that follows then says it cannot be read).
std::string find_like_coturn(const std::string& name, const std::filesystem::path& conf_dir) {
  static const char* const kDirs[] = {"./",
                                      "./turnserver/",
                                      "./coturn/",
                                      "./etc/",
                                      "./etc/turnserver/",
                                      "./etc/coturn/",
                                      "../etc/",
                                      "../etc/turnserver/",
                                      "../etc/coturn/",
                                      "/etc/",
                                      "/etc/turnserver/",
                                      "/etc/coturn/",
                                      "/usr/local/etc/",
                                      "/usr/local/etc/turnserver/",
                                      "/usr/local/etc/coturn/"};
  std::error_code ec;
  const auto absolute = [&ec](const std::filesystem::path& p) {
    return std::filesystem::absolute(p, ec).lexically_normal().string();
  };
  for (const char* dir : kDirs) {
    const std::filesystem::path p = std::filesystem::path(dir) / name;
    if (std::filesystem::is_regular_file(p, ec)) return absolute(p);
  }
  if (std::filesystem::is_regular_file(conf_dir / name, ec)) return absolute(conf_dir / name);
  return absolute(name);
}

}  // namespace

int run_import_coturn(const std::string& path) {
  const auto text = read_conf(path);
  if (!text) return kImportUnreadable;
  config::CoturnImportOptions options;
  options.source_name = path;
  std::error_code ec;
  const auto absolute = std::filesystem::absolute(path, ec);
  const std::filesystem::path conf_dir =
      (ec ? std::filesystem::path(path) : absolute).parent_path();
  options.find_file = [conf_dir](const std::string& name) {
    return find_like_coturn(name, conf_dir);
  };
  const config::CoturnImport imp = config::import_coturn(*text, options);
  try {
    (void)config::parse(imp.yaml, "<imported from " + path + ">");
  } catch (const config::ConfigError& e) {
    std::fprintf(stderr,
                 "callrelay import-coturn: the imported configuration does not validate "
                 "(nothing written):\n%s\n",
                 e.what());
    return kImportInvalid;
  }
  for (const config::CoturnSkipped& s : imp.not_imported)
    std::fprintf(stderr, "callrelay import-coturn: not imported: %s\n",
                 config::describe(s).c_str());
  for (const std::string& n : imp.notes)
    std::fprintf(stderr, "callrelay import-coturn: note: %s\n", n.c_str());
  std::fwrite(imp.yaml.data(), 1, imp.yaml.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : kImportUnreadable;
}

}  // namespace callrelay::app
