// One TURN client connection over TCP or TLS (RFC 8656 section 12.5, RFC 7350): a non-blocking
// socket, wrapped in an OpenSSL client for TLS, with an input buffer cut into frames by length
// (a stream splits and coalesces frames as it likes) and an output buffer that absorbs partial
// writes. The caller owns the epoll loop and asks wants_out() whether to watch for EPOLLOUT.
#pragma once

#include <netinet/in.h>
#include <openssl/types.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "relay/stun/channel_data.hpp"

namespace callrelay::bench {

/// Client-side TLS settings shared by every connection: TLS 1.2 or 1.3 and no certificate
/// check (the bench talks to servers it started on loopback with a self-signed certificate).
class TlsClientContext {
 public:
  /// Throws std::runtime_error when OpenSSL cannot make a context.
  TlsClientContext();
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  SSL_CTX* get() const { return ctx_; }

 private:
  SSL_CTX* ctx_ = nullptr;
};

class StreamClient {
 public:
  StreamClient() = default;
  StreamClient(StreamClient&& other) noexcept;
  StreamClient& operator=(StreamClient&&) = delete;
  StreamClient(const StreamClient&) = delete;
  ~StreamClient();

  /// Starts a non-blocking connect to `server`; with `tls` non-null a TLS handshake follows.
  /// With `record_per_frame`, each queued frame becomes its own TLS record, as browsers and
  /// libwebrtc write them (one SSL_write per packet), and the records of one flush() still
  /// reach the socket in one send; otherwise one flush() is one record (up to 16 KiB). False
  /// (error() says why) when the socket could not even be opened.
  bool open(const sockaddr_in& server, SSL_CTX* tls, bool record_per_frame);
  /// Moves the connect and the TLS handshake on; call on every event until is_open(). False
  /// when either failed.
  bool progress();
  bool is_open() const { return state_ == State::kOpen; }
  /// Sends close_notify (TLS, best effort) and closes the socket; the server ends the
  /// allocation with the connection.
  void close();
  int fd() const { return fd_; }

  /// Appends one whole frame (a STUN message, or ChannelData with its padding) to the output
  /// buffer; flush() sends it.
  void queue(std::span<const uint8_t> bytes) {
    out_.insert(out_.end(), bytes.begin(), bytes.end());
  }
  /// Writes as much of the output buffer as the socket takes now. False on a broken connection.
  bool flush();
  /// Whether the loop should wake up when the socket is writable: connecting, a handshake or
  /// TLS record waiting to go out, or queued bytes the socket did not take.
  bool wants_out() const {
    return state_ == State::kConnecting || want_write_ || out_sent_ < out_.size() ||
           records_held();
  }

  /// Reads everything the socket has and calls on_frame(bytes) for each complete frame (a STUN
  /// message, or ChannelData with its padding). False when the connection closed or carried
  /// something that is neither (error() says which).
  template <typename F>
  bool read_frames(F&& on_frame);

  const std::string& error() const { return error_; }
  /// "TLSv1.3/TLS_AES_256_GCM_SHA384" once the handshake is done; "none" without TLS.
  std::string tls_description() const;

 private:
  enum class State : uint8_t { kIdle, kConnecting, kHandshaking, kOpen, kClosed };
  // kMore: read again, the socket (or OpenSSL's buffer) may hold more; kDrained: it is empty
  // for now (the read may still have added bytes); kClosed: see error_.
  enum class Fill : uint8_t { kMore, kDrained, kClosed };

  Fill fill();  // one read into the free tail of in_
  bool broken(std::string why);
  bool records_held() const;  // records wait in the write buffer for the socket
  bool send_records();        // hands the buffered records to the socket; false when broken

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  State state_ = State::kIdle;
  bool want_write_ = false;  // OpenSSL needs the socket writable to go on (handshake or read)
  std::vector<uint8_t> in_;
  size_t in_len_ = 0;
  std::vector<uint8_t> out_;
  size_t out_sent_ = 0;
  // With a record per frame: gathers the records of one flush() for one send (null: a flush()
  // is one record).
  BIO* write_buffer_ = nullptr;
  std::string error_;
};

template <typename F>
bool StreamClient::read_frames(F&& on_frame) {
  while (true) {
    const Fill r = fill();
    if (r == Fill::kClosed) return false;
    size_t pos = 0;
    while (pos < in_len_) {
      const auto size = stun::stream_frame_size({in_.data() + pos, in_len_ - pos});
      if (size.error) return broken("not STUN or ChannelData on the stream");
      if (size.size == 0 || size.size > in_len_ - pos) break;  // the rest comes in a later read
      on_frame(std::span<const uint8_t>(in_.data() + pos, size.size));
      pos += size.size;
    }
    if (pos > 0) {  // keep the partial frame at the front: the buffer always fits a whole one
      std::copy(in_.begin() + static_cast<std::ptrdiff_t>(pos),
                in_.begin() + static_cast<std::ptrdiff_t>(in_len_), in_.begin());
      in_len_ -= pos;
    }
    if (r == Fill::kDrained) return true;
  }
}

}  // namespace callrelay::bench
