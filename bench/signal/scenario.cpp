#include "bench/signal/scenario.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <chrono>
#include <ctime>
#include <functional>
#include <future>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

#include "bench/common/common.hpp"
#include "bench/signal/jwt.hpp"
#include "bench/signal/messages.hpp"
#include "bench/signal/ws_client.hpp"

namespace callrelay::bench::signal {
namespace {

using nlohmann::json;

/// Problems kept word for word for the report; the rest are only counted.
constexpr size_t kProblemsKept = 8;
/// Lifetime of the minted tokens; under calls.max_token_ttl_s (default 3600).
constexpr int64_t kTokenTtlS = 600;

std::string user_name(size_t i) { return "u" + std::to_string(i); }

/// `obj[key]` when it is a string, else "" (server messages are checked, never trusted).
std::string str_field(const json& obj, const char* key) {
  if (!obj.is_object()) return {};
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// `obj[key]` when it is an unsigned integer, else 0.
uint64_t u64_field(const json& obj, const char* key) {
  if (!obj.is_object()) return 0;
  const auto it = obj.find(key);
  return it != obj.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

/// The payload object of a server message (null when it has none).
const json& payload_of(const json& m) {
  static const json kNone;
  const auto it = m.find("payload");
  return it != m.end() ? *it : kNone;
}

}  // namespace

struct Scenario::Impl : ws::Listener {
  /// One call: caller device `i`, callee device `calls + i`. Times are now_ns().
  struct Call {
    std::string id;
    uint64_t invite_seq = 0, accept_seq = 0;
    uint64_t t_invite = 0, t_ack = 0, t_delivered = 0, t_accept = 0, t_accepted = 0;
    bool ringing_seen = false;
  };
  struct Device {
    std::unique_ptr<ws::Client> client;
    uint64_t next_seq = 1;
    uint64_t burst_from_seq = 0;  ///< acks at or above this seq answer burst candidates
    size_t in_flight = 0;
    bool settled = false;  ///< got its welcome, or failed before it
    std::unique_ptr<CandidateMaker> maker;
  };

  explicit Impl(Options o) : opt(std::move(o)) {
    if (opt.calls * 2 > opt.connections) throw std::invalid_argument("calls > connections / 2");
    const auto now = static_cast<int64_t>(std::time(nullptr));
    devices.resize(opt.connections);
    tokens.reserve(opt.connections);
    for (size_t i = 0; i < opt.connections; ++i) {
      devices[i].client = std::make_unique<ws::Client>(io, *this, i, static_cast<uint32_t>(i + 1));
      tokens.push_back(mint_hs256_token(opt.secret, user_name(i), now, now + kTokenTtlS));
      devices[i].client->set_quick_ack(opt.quick_ack);
    }
    calls.resize(opt.calls);
    thread = std::thread([this] { io.run(); });
  }

  ~Impl() override {
    work.reset();
    io.stop();
    if (thread.joinable()) thread.join();
  }

  Options opt;
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
  std::vector<std::string> tokens;

  // io thread only.
  std::vector<Device> devices;
  std::vector<Call> calls;
  size_t launched = 0;
  size_t settled = 0;  ///< devices that got their welcome or failed before it
  bool bursting = false;
  BurstFigures burst;
  std::vector<std::string> problem_list;

  // Progress, written on the io thread, polled by the phase methods.
  std::atomic<size_t> welcomed{0}, failed{0}, closed{0}, acked_invites{0}, delivered{0};
  std::atomic<size_t> ringing{0}, accepted{0}, active{0}, ended{0}, burst_in_flight{0};
  std::atomic<uint64_t> errors{0};

  void run_sync(const std::function<void()>& fn) {
    std::promise<void> done;
    asio::post(io, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  /// Polls `reached` every 5 ms until it holds; throws naming `what` after timeout_s.
  void wait_for(const char* what, const std::function<bool()>& reached) {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(opt.timeout_s);
    while (!reached()) {
      if (std::chrono::steady_clock::now() > deadline) {
        std::string detail;
        run_sync([&] {
          for (const auto& p : problem_list) detail += "\n  " + p;
        });
        throw std::runtime_error(std::string("timed out waiting for ") + what + " (welcomed " +
                                 std::to_string(welcomed) + ", failed " + std::to_string(failed) +
                                 ", errors " + std::to_string(errors) + ")" + detail);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  void problem(std::string text) {
    if (problem_list.size() < kProblemsKept) problem_list.push_back(std::move(text));
  }

  void send(size_t device, const std::string& text) { devices[device].client->send_text(text); }
  uint64_t take_seq(size_t device) { return devices[device].next_seq++; }

  bool is_caller(size_t device) const { return device < opt.calls; }
  size_t call_of(size_t device) const { return is_caller(device) ? device : device - opt.calls; }
  size_t callee_of(size_t call) const { return opt.calls + call; }

  // --- connections -----------------------------------------------------------------------

  void launch_more() {
    while (launched < devices.size() && launched - settled < opt.connect_concurrency) {
      const size_t i = launched++;
      const auto& server =
          !is_caller(i) && opt.callee_server ? *opt.callee_server : opt.server;
      devices[i].client->start(
          server, server.address().to_string() + ":" + std::to_string(server.port()),
          "/api/v1/signal?token=" + tokens[i]);
    }
  }

  /// A device's upgrade is over (welcome or failure): the next one may start.
  void settle(size_t dev) {
    if (devices[dev].settled) return;
    devices[dev].settled = true;
    ++settled;
    launch_more();
  }

  void on_open(ws::Client&) override {}

  void on_closed(ws::Client& c, const std::string& why) override {
    ++closed;
    if (why.empty()) return;  // we closed it
    ++failed;
    problem("device u" + std::to_string(c.id()) + ": " + why);
    settle(c.id());
  }

  void on_text(ws::Client& c, std::string_view text) override {
    const size_t dev = c.id();
    const json m = json::parse(text, nullptr, false);
    if (m.is_discarded() || !m.is_object() || !m.contains("type") || !m["type"].is_string()) {
      ++errors;
      problem("u" + std::to_string(dev) + " got a message that is not a typed JSON object: " +
              std::string(text.substr(0, 200)));
      return;
    }
    const std::string type = str_field(m, "type");
    if (type == "ack") return on_ack(dev, m);
    if (type == "candidate") {
      ++burst.forwarded;
      return;
    }
    if (type == "welcome") {
      ++welcomed;
      return settle(dev);
    }
    if (type == "invite") return on_invite(dev, m);
    if (type == "ringing") return on_ringing(dev);
    if (type == "accepted") return on_accepted(dev);
    if (type == "offer") return on_offer(dev);
    if (type == "answer")
      return send(dev, connected_message(take_seq(dev), calls[call_of(dev)].id));
    if (type == "state") {
      if (str_field(payload_of(m), "state") == "active") ++active;
      return;
    }
    if (type == "ended") {
      ++ended;
      return;
    }
    if (type == "error") return on_error(dev, m, text);
    problem("u" + std::to_string(dev) +
            " got an unexpected message: " + std::string(text.substr(0, 200)));
  }

  // --- calls -------------------------------------------------------------------------------

  void send_invite(size_t i) {
    Call& call = calls[i];
    call.invite_seq = take_seq(i);
    call.t_invite = now_ns();
    send(i, invite_message(call.invite_seq, user_name(callee_of(i))));
  }

  void on_ack(size_t dev, const json& m) {
    const uint64_t seq = u64_field(m, "seq");
    Device& d = devices[dev];
    if (d.burst_from_seq != 0 && seq >= d.burst_from_seq) {
      ++burst.acked;
      return burst_next(dev);
    }
    Call& call = calls[call_of(dev)];
    if (is_caller(dev) && seq == call.invite_seq && call.t_ack == 0) {
      call.t_ack = now_ns();
      call.id = str_field(m, "call");
      ++acked_invites;
    }
  }

  void on_invite(size_t dev, const json& m) {
    const uint64_t t = now_ns();
    const std::string from = str_field(payload_of(m), "from");
    if (is_caller(dev) || from != user_name(call_of(dev))) {
      ++errors;
      problem("u" + std::to_string(dev) + " was invited by '" + from + "', not by its caller");
      return;
    }
    Call& call = calls[call_of(dev)];
    call.t_delivered = t;
    call.id = str_field(m, "call");
    ++delivered;
    send(dev, ringing_message(take_seq(dev), call.id));
  }

  void on_ringing(size_t dev) {
    Call& call = calls[call_of(dev)];
    if (!is_caller(dev) || call.ringing_seen) return;
    call.ringing_seen = true;
    ++ringing;
  }

  void send_accept(size_t i) {
    Call& call = calls[i];
    const size_t callee = callee_of(i);
    call.accept_seq = take_seq(callee);
    call.t_accept = now_ns();
    send(callee, accept_message(call.accept_seq, call.id));
  }

  void on_accepted(size_t dev) {
    Call& call = calls[call_of(dev)];
    if (!is_caller(dev) || call.t_accepted != 0) return;
    call.t_accepted = now_ns();
    ++accepted;
    send(dev, offer_message(take_seq(dev), call.id));
  }

  void on_offer(size_t dev) {
    const std::string& id = calls[call_of(dev)].id;
    send(dev, answer_message(take_seq(dev), id));
    send(dev, connected_message(take_seq(dev), id));
  }

  void on_error(size_t dev, const json& m, std::string_view text) {
    ++errors;
    Device& d = devices[dev];
    const uint64_t seq = u64_field(m, "seq");
    if (d.burst_from_seq != 0 && seq >= d.burst_from_seq) {
      ++burst.errors;
      if (burst.errors <= 1) problem("burst: " + std::string(text.substr(0, 300)));
      return burst_next(dev);
    }
    problem("u" + std::to_string(dev) + ": " + std::string(text.substr(0, 300)));
  }

  // --- candidate burst ---------------------------------------------------------------------

  void burst_send(size_t dev) {
    Device& d = devices[dev];
    ++d.in_flight;
    ++burst_in_flight;
    send(dev, d.maker->make(take_seq(dev)));
  }

  /// One candidate of `dev` was answered: the next one goes out while the burst lasts.
  void burst_next(size_t dev) {
    Device& d = devices[dev];
    if (d.in_flight > 0) {
      --d.in_flight;
      --burst_in_flight;
    }
    if (bursting) burst_send(dev);
  }

  void start_burst() {
    bursting = true;
    for (size_t dev = 0; dev < 2 * opt.calls; ++dev) {
      Device& d = devices[dev];
      const Call& call = calls[call_of(dev)];
      if (call.id.empty() || !d.client->is_open()) continue;
      d.maker = std::make_unique<CandidateMaker>(call.id, is_caller(dev));
      d.burst_from_seq = d.next_seq;
      for (size_t k = 0; k < opt.window; ++k) burst_send(dev);
    }
  }
};

Scenario::Scenario(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Scenario::~Scenario() = default;

double Scenario::connect_all() {
  Impl& s = *impl_;
  const uint64_t t0 = now_ns();
  asio::post(s.io, [&s] { s.launch_more(); });
  s.wait_for("every welcome", [&s] { return s.welcomed + s.failed >= s.devices.size(); });
  if (s.failed > 0) {
    std::string detail;
    for (const auto& p : problems()) detail += "\n  " + p;
    throw std::runtime_error(std::to_string(s.failed) + " of " + std::to_string(s.devices.size()) +
                             " connections failed" + detail);
  }
  return static_cast<double>(now_ns() - t0) / 1e9;
}

namespace {

/// Calls `fn(i)` for i in [0, n) on the io thread, spaced to `rate` per second.
void paced(asio::io_context& io, size_t n, double rate, const std::function<void(size_t)>& fn) {
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) {
    std::this_thread::sleep_until(start +
                                  std::chrono::duration<double>(static_cast<double>(i) / rate));
    asio::post(io, [fn, i] { fn(i); });
  }
}

}  // namespace

void Scenario::invite_all(Samples& invite_ack, Samples& invite_delivered) {
  Impl& s = *impl_;
  const size_t n = s.calls.size();
  const std::function<void(size_t)> invite = [&s](size_t i) { s.send_invite(i); };
  paced(s.io, n, s.opt.call_rate, invite);
  s.wait_for("every invite to ring",
             [&s, n] { return s.acked_invites >= n && s.delivered >= n && s.ringing >= n; });
  s.run_sync([&] {
    for (const auto& c : s.calls) {
      invite_ack.push_back(c.t_ack - c.t_invite);
      invite_delivered.push_back(c.t_delivered - c.t_invite);
    }
  });
}

void Scenario::accept_all(Samples& accept_accepted) {
  Impl& s = *impl_;
  const size_t n = s.calls.size();
  const std::function<void(size_t)> accept = [&s](size_t i) { s.send_accept(i); };
  paced(s.io, n, s.opt.call_rate, accept);
  s.wait_for("every call to be active", [&s, n] { return s.active >= 2 * n; });
  s.run_sync([&] {
    for (const auto& c : s.calls) accept_accepted.push_back(c.t_accepted - c.t_accept);
  });
}

void Scenario::start_burst() {
  impl_->run_sync([this] { impl_->start_burst(); });
}

BurstFigures Scenario::burst_counters() {
  BurstFigures f;
  impl_->run_sync([&] { f = impl_->burst; });
  return f;
}

void Scenario::stop_burst() {
  Impl& s = *impl_;
  s.run_sync([&s] { s.bursting = false; });
  s.wait_for("the burst's last candidates", [&s] { return s.burst_in_flight == 0; });
}

void Scenario::hangup_all() {
  Impl& s = *impl_;
  s.run_sync([&s] {
    for (size_t i = 0; i < s.calls.size(); ++i) {
      s.send(i, hangup_message(s.take_seq(i), s.calls[i].id));
    }
  });
  s.wait_for("both sides of every call to end", [&s] { return s.ended >= 2 * s.calls.size(); });
}

void Scenario::close_all() {
  Impl& s = *impl_;
  s.run_sync([&s] {
    for (auto& d : s.devices) d.client->close();
  });
  s.wait_for("the server to close every connection", [&s] { return s.closed >= s.devices.size(); });
}

std::vector<std::string> Scenario::problems() {
  std::vector<std::string> out;
  impl_->run_sync([&] { out = impl_->problem_list; });
  return out;
}

uint64_t Scenario::error_count() { return impl_->errors; }

}  // namespace callrelay::bench::signal
