#include "app/ctl.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <ostream>

#include "app/ctl_args.hpp"
#include "app/ctl_format.hpp"
#include "app/ctl_http.hpp"
#include "app/ctl_target.hpp"

namespace callrelay::app {
namespace {

using nlohmann::json;
using Command = CtlOptions::Command;

/// RFC 3986 section 2.1: every byte but the unreserved ones as %XX.
std::string percent_encode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

HttpRequest request_for(const CtlOptions& o) {
  const auto post = [](std::string target, const json& body) {
    return HttpRequest{"POST", std::move(target), body.dump(), ""};
  };
  switch (o.command) {
    case Command::kStatus:
      return {"GET", "/api/v1/admin/status", "", ""};
    case Command::kAllocations:
      return {
          "GET",
          "/api/v1/admin/allocations" + (o.user.empty() ? "" : "?user=" + percent_encode(o.user)),
          "", ""};
    case Command::kCalls:
      return {"GET", "/api/v1/admin/calls", "", ""};
    case Command::kEnd:
      if (!o.call.empty()) return post("/api/v1/admin/calls/end", {{"call", o.call}});
      if (!o.allocation.empty())
        return post("/api/v1/admin/allocations/end", {{"allocation", o.allocation}});
      return post("/api/v1/admin/allocations/end", {{"user", o.user}});
    case Command::kRevoke:
      return post("/api/v1/turn/revoke", {{"username", o.username}});
    case Command::kReload:
      return post("/api/v1/admin/reload", json::object());
    case Command::kDrain:
      return post("/api/v1/admin/drain",
                  o.deadline_s ? json{{"deadline_s", *o.deadline_s}} : json::object());
    case Command::kConfig:
    case Command::kHelp:
      break;
  }
  return {"GET", "/api/v1/admin/config", "", ""};
}

/// The error text of an error answer: its "error" field, else the start of the body.
std::string error_text(const HttpAnswer& a) {
  const json j = json::parse(a.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string())
    return printable(j["error"].get<std::string>());
  return printable(a.body.substr(0, 200));
}

std::string end_text(const CtlOptions& o, const json& j) {
  if (!o.call.empty()) return "ended call " + printable(o.call) + "\n";
  if (j.contains("ended") && j["ended"].is_number_integer()) {
    const auto n = j["ended"].get<int64_t>();
    return "ended " + std::to_string(n) + " allocation" + (n == 1 ? "" : "s") +
           (o.user.empty() ? "" : " of user " + printable(o.user)) + "\n";
  }
  return "ending the allocations of " +
         (o.user.empty() ? "allocation " + printable(o.allocation) : "user " + printable(o.user)) +
         "\n";
}

std::string list_text(const json& v) {
  if (!v.is_array() || v.empty()) return "nothing";
  std::string out;
  for (const auto& k : v)
    out += (out.empty() ? "" : ", ") + (k.is_string() ? printable(k.get<std::string>()) : k.dump());
  return out;
}

/// The default (non --json) output of a successful answer.
std::string human_text(const CtlOptions& o, const json& j) {
  switch (o.command) {
    case Command::kStatus:
      return format_status(j);
    case Command::kAllocations:
      return format_allocations(j);
    case Command::kCalls:
      return format_calls(j);
    case Command::kEnd:
      return end_text(o, j);
    case Command::kRevoke:
      return j.value("revoked", false)
                 ? "revoked " + printable(o.username) +
                       ": refused from now on, its allocations "
                       "ended\n"
                 : printable(o.username) + " has expired already: its allocations ended\n";
    case Command::kReload:
      return "reloaded: changed " + list_text(j.value("changed", json())) +
             "; waiting for a restart: " + list_text(j.value("restart_required", json())) + "\n";
    case Command::kDrain:
      return "draining: new allocations are refused; the others end within " +
             (j.contains("deadline_s") && j["deadline_s"].is_number()
                  ? human_age(j["deadline_s"].get<double>())
                  : std::string("the drain deadline")) +
             "\n";
    case Command::kConfig:
    case Command::kHelp:
      break;
  }
  return format_config(j);
}

int call(const CtlOptions& o, const CtlTarget& t, std::ostream& out, std::ostream& err) {
  HttpRequest req = request_for(o);
  req.bearer = t.key.key;
  HttpAnswer a;
  try {
    a = http_call(t.url, req, std::chrono::seconds(o.timeout_s), o.insecure);
  } catch (const HttpError& e) {
    err << "callrelay ctl: " << e.what()
        << (e.kind() == HttpError::Kind::kUnreachable ? " (is the relay running there?)" : "")
        << "\n";
    return e.kind() == HttpError::Kind::kProtocol ? kCtlApiError : kCtlUnreachable;
  }
  if (a.status == 401 || a.status == 403) {
    err << "callrelay ctl: " << t.url.text() << " refused the key from " << t.key.source << " ("
        << a.status << "): " << error_text(a) << "\n";
    return kCtlKey;
  }
  if (a.status < 200 || a.status > 299) {
    err << "callrelay ctl: " << t.url.text() << " answered " << a.status << ": " << error_text(a)
        << "\n";
    return kCtlApiError;
  }
  const json j = json::parse(a.body, nullptr, false);
  if (j.is_discarded()) {
    err << "callrelay ctl: " << t.url.text() << " answered " << a.status
        << " without a JSON body\n";
    return kCtlApiError;
  }
  try {
    out << (o.json ? j.dump(2) + "\n" : human_text(o, j));
  } catch (const json::exception& e) {
    err << "callrelay ctl: " << t.url.text()
        << " answered with JSON of an unexpected shape: " << e.what() << "\n";
    return kCtlApiError;
  }
  return kCtlOk;
}

}  // namespace

int run_ctl(const std::vector<std::string>& args, const char* env_key, std::ostream& out,
            std::ostream& err) {
  const CtlParseResult parsed = parse_ctl_args(args);
  if (!parsed.options) {
    err << "callrelay ctl: " << parsed.error << "\n" << ctl_usage();
    return kCtlUsage;
  }
  const CtlOptions& o = *parsed.options;
  if (o.command == Command::kHelp) {
    out << ctl_usage();
    return kCtlOk;
  }
  try {
    LazyConfig cfg(o.config_path);
    const CtlTarget target = resolve_target(o, env_key, cfg);
    return call(o, target, out, err);
  } catch (const CtlError& e) {
    err << "callrelay ctl: " << e.what() << "\n";
    if (e.exit_code() == kCtlUsage) err << ctl_usage();
    return e.exit_code();
  }
}

}  // namespace callrelay::app
