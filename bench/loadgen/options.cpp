#include "bench/loadgen/options.hpp"

#include <arpa/inet.h>

#include <stdexcept>

namespace callrelay::bench {

namespace {
Mode parse_mode(const std::string& name) {
  if (name == "max") return Mode::kMax;
  if (name == "rate") return Mode::kRate;
  if (name == "allocs") return Mode::kAllocs;
  if (name == "hold") return Mode::kHold;
  if (name == "storm") return Mode::kStorm;
  if (name == "probe") return Mode::kProbe;
  throw std::invalid_argument("--mode must be max, rate, allocs, hold, storm or probe, not '" +
                              name + "'");
}

Transport parse_transport(const std::string& name) {
  if (name == "udp") return Transport::kUdp;
  if (name == "tcp") return Transport::kTcp;
  if (name == "tls") return Transport::kTls;
  throw std::invalid_argument("--transport must be udp, tcp or tls, not '" + name + "'");
}

size_t positive(double v, const char* key) {
  if (v < 1) throw std::invalid_argument(std::string("--") + key + " must be at least 1");
  return static_cast<size_t>(v);
}

double not_negative(double v, const char* key) {
  if (!(v >= 0)) throw std::invalid_argument(std::string("--") + key + " must be 0 or more");
  return v;
}

void parse_hold_options(Args& args, Options& o) {
  const bool shared = args.has("source-addresses");
  if (shared) o.source_addresses = positive(args.num("source-addresses", 1), "source-addresses");
  const sockaddr_in base = parse_addr(args.str("source-base", "127.1.0.1") + ":0");
  o.source_base = ntohl(base.sin_addr.s_addr);
  o.refresh_permission_s = not_negative(args.num("refresh-permission", 240), "refresh-permission");
  o.refresh_allocation_s = not_negative(args.num("refresh-allocation", 540), "refresh-allocation");
  o.hold_s = not_negative(args.num("hold", 0), "hold");
  if (!shared) return;
  if (o.mode != Mode::kHold) {
    throw std::invalid_argument("--source-addresses only drives the hold mode");
  }
  if (o.sources != 1) throw std::invalid_argument("--source-addresses replaces --sources");
  // Every source must be a loopback address (127.0.0.0/8, RFC 1122 section 3.2.1.3) and none
  // 127.255.255.255, so the clients' traffic never leaves the host.
  const uint64_t last = static_cast<uint64_t>(o.source_base) + o.source_addresses - 1;
  if ((o.source_base >> 24) != 127 || last >= 0x7fffffff) {
    throw std::invalid_argument("--source-base and --source-addresses must stay in 127.0.0.0/8");
  }
}
}  // namespace

const char* transport_name(Transport t) {
  switch (t) {
    case Transport::kTcp:
      return "tcp";
    case Transport::kTls:
      return "tls";
    case Transport::kUdp:
      break;
  }
  return "udp";
}

sockaddr_in peer_of(const Options& o, size_t index) {
  sockaddr_in a = o.peer;
  a.sin_addr.s_addr =
      htonl(ntohl(o.peer.sin_addr.s_addr) + static_cast<uint32_t>(index % o.peer_addresses));
  return a;
}

Options parse_options(Args& args) {
  Options o;
  o.mode = parse_mode(args.str("mode", "max"));
  o.server = parse_addr(args.str("server", "127.0.0.1:13478"));
  o.peer = parse_addr(args.str("peer", "127.0.0.1:19000"));
  o.peer_addresses = positive(args.num("peer-addresses", 1), "peer-addresses");
  if (o.peer_addresses > 254) throw std::invalid_argument("--peer-addresses must be 1..254");
  o.raw = args.flag("raw");
  o.transport = parse_transport(args.str("transport", "udp"));
  if (args.has("client-records")) {
    const std::string records = args.str("client-records", "per-frame");
    if (records != "per-frame" && records != "packed") {
      throw std::invalid_argument("--client-records must be per-frame or packed, not '" +
                                  records + "'");
    }
    if (o.transport != Transport::kTls) {
      throw std::invalid_argument("--client-records is for --transport tls");
    }
    o.client_record_per_frame = records == "per-frame";
  }
  o.clients = positive(args.num("clients", 50), "clients");
  o.payload = positive(args.num("payload", 160), "payload");
  if (o.payload < 12 || o.payload > 1400) {
    throw std::invalid_argument("--payload must be 12..1400 bytes (timestamp and client id fit)");
  }
  o.window = positive(args.num("window", 8), "window");
  o.pps = args.num("pps", 50);
  if (o.pps <= 0) throw std::invalid_argument("--pps must be positive");
  o.pace = args.num("pace", 0);
  if (o.pace < 0 || o.pace > 100000) throw std::invalid_argument("--pace must be 0..100000");
  if (o.pace > 0 && o.transport == Transport::kUdp) {
    throw std::invalid_argument("--pace is for --transport tcp or tls");
  }
  o.warmup_s = args.num("warmup", 1);
  o.duration_s = args.num("duration", 5);
  o.timeout_s = args.num("timeout", 60);
  o.counts = args.list("count", {});
  o.concurrency = positive(args.num("concurrency", 256), "concurrency");
  o.secret = args.str("secret", o.secret);
  o.user = args.str("user", o.user);
  o.server_pid = static_cast<int>(args.num("server-pid", 0));
  o.server_cpu = static_cast<int>(args.num("server-cpu", 0));
  o.gen_cpu = static_cast<int>(args.num("gen-cpu", -1));
  o.echo_stats = args.str("echo-stats", "");
  o.rtp = args.flag("rtp");
  o.sources = positive(args.num("sources", 1), "sources");
  if (o.sources > 254) throw std::invalid_argument("--sources must be 1..254 (127.0.0.x)");
  parse_hold_options(args, o);
  if (o.rtp && (o.mode != Mode::kMax || o.transport != Transport::kUdp)) {
    throw std::invalid_argument("--rtp only shapes the max mode's UDP packets");
  }
  if (o.rtp && o.payload < 24) {
    throw std::invalid_argument("--rtp needs --payload of 24 bytes or more (RTP header first)");
  }
  if (o.raw && o.mode != Mode::kMax && o.mode != Mode::kRate) {
    throw std::invalid_argument("--raw only drives the max and rate modes");
  }
  if (o.transport != Transport::kUdp && (o.mode != Mode::kMax || o.raw)) {
    // The CPU-per-packet rows are what stream clients change; the control-plane modes measure
    // the same TURN logic whatever carries it.
    throw std::invalid_argument("--transport tcp/tls only drives the max mode of a TURN server");
  }
  if ((o.mode == Mode::kHold || o.mode == Mode::kStorm) && o.counts.empty()) {
    throw std::invalid_argument("--mode hold/storm needs --count (hold: e.g. 1000,10000)");
  }
  return o;
}

const char* usage() {
  return "usage: bench_loadgen --mode max|rate|allocs|hold|storm|probe [options]\n"
         "  --server IP:PORT   relay (or bare forwarder with --raw)   [127.0.0.1:13478]\n"
         "  --peer IP:PORT     echo peer                               [127.0.0.1:19000]\n"
         "  --peer-addresses N client i relays to the peer's address + i mod N [1]\n"
         "  --raw              ChannelData straight to bench_forwarder, no TURN control\n"
         "  --transport T      max: client sockets are udp, tcp or tls [udp]\n"
         "  --client-records R tls: per-frame (a record per frame, as browsers) or packed\n"
         "                     (one record per write)                  [per-frame]\n"
         "  --clients N        client sockets / allocations            [50]\n"
         "  --payload BYTES    payload per packet                      [160]\n"
         "  --window W         max: packets in flight per client       [8]\n"
         "  --rtp              max, UDP: payloads are RTP packets (Opus, one SSRC per client)\n"
         "  --sources N        UDP clients bind 127.0.0.1..127.0.0.N in turn [1]\n"
         "  --pps R            rate: packets/s per client              [50]\n"
         "  --pace R           max over tcp/tls: R frames/s per client, one per write,\n"
         "                     instead of refilling the window (open loop) [0: off]\n"
         "  --warmup S --duration S --timeout S                        [1 5 60]\n"
         "  --count N[,N...]   hold: allocations to hold (stages); storm: Allocates to send\n"
         "  --concurrency N    control transactions in flight           [256]\n"
         "  --source-addresses N  hold: one socket per N clients, each from its own address\n"
         "  --source-base IP   hold: first of those addresses          [127.1.0.1]\n"
         "  --refresh-permission S --refresh-allocation S  hold: CreatePermission, and\n"
         "                     ChannelBind + Refresh, periods (0: never) [240 540]\n"
         "  --hold S           hold: keep holding S s after the last stage [0]\n"
         "  --secret S --user U   REST API secret and user name          [benchsecret bench]\n"
         "  --server-pid PID --server-cpu CPU --gen-cpu CPU --echo-stats FILE\n";
}

}  // namespace callrelay::bench
