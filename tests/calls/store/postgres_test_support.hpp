// A real PostgreSQL server for the store tests, started once per test binary by
// tests/integration/postgres/pg_server.sh (unprivileged, unix socket in a temporary
// directory), and a fresh database per test.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <stdlib.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace callrelay::calls::test {

/// Runs `pg_server.sh COMMAND DIR`; its standard output, trimmed. Throws when it fails.
inline std::string pg_server(const std::string& command, const std::string& dir) {
  const std::string cmd =
      std::string("bash '") + CALLRELAY_PG_SERVER_SCRIPT + "' " + command + " '" + dir + "'";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  if (!pipe) throw std::runtime_error("cannot run " + cmd);
  std::string out;
  std::array<char, 512> buf{};
  while (fgets(buf.data(), static_cast<int>(buf.size()), pipe.get())) out += buf.data();
  const int status = pclose(pipe.release());
  if (status != 0)
    throw std::runtime_error(cmd + " failed (status " + std::to_string(status) + ")");
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

/// One libpq connection for checks the store does not offer (raw rows, CREATE DATABASE).
class RawPg {
 public:
  explicit RawPg(const std::string& url) : conn_(PQconnectdb(url.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK)
      throw std::runtime_error(std::string("RawPg: ") + PQerrorMessage(conn_));
  }
  ~RawPg() { PQfinish(conn_); }
  RawPg(const RawPg&) = delete;
  RawPg& operator=(const RawPg&) = delete;

  /// The first column of the first row ("" when no row); throws on an error.
  std::string text(const std::string& sql) {
    PGresult* res = PQexec(conn_, sql.c_str());
    const auto status = PQresultStatus(res);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      const std::string why = PQerrorMessage(conn_);
      PQclear(res);
      throw std::runtime_error("RawPg '" + sql + "': " + why);
    }
    std::string out = PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "";
    PQclear(res);
    return out;
  }

 private:
  PGconn* conn_;
};

/// The server shared by a test binary, in a directory under /tmp (short: a unix socket's
/// path is limited to 107 bytes).
class PgServer {
 public:
  static PgServer& instance() {
    static PgServer server;
    return server;
  }
  const std::string& dir() const { return dir_; }
  /// A URI for database `db` on this server.
  std::string url(const std::string& db) const {
    return "postgresql://callrelay@/" + db + "?host=" + dir_ + "/sock";
  }
  /// A new, empty database, named after the running test.
  std::string fresh_database() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "t" + std::to_string(++databases_) + "_";
    for (char c : std::string(info ? info->name() : "db")) {
      if (name.size() < 60) name += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    RawPg admin(url("postgres"));
    admin.text("CREATE DATABASE " + name);
    return url(name);
  }
  void stop() { pg_server("stop", dir_); }
  void kill() { pg_server("kill", dir_); }
  void start() { pg_server("start", dir_); }

  ~PgServer() {
    try {
      pg_server("stop", dir_);
    } catch (...) {
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

 private:
  PgServer() {
    char tmpl[] = "/tmp/callrelay-pg.XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    pg_server("start", dir_);
  }
  std::string dir_;
  int databases_ = 0;
};

}  // namespace callrelay::calls::test
