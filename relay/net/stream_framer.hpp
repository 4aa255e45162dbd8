// The byte-stream side of TURN over TCP and TLS (RFC 8656 section 12.5, RFC 7350): cutting a
// receive stream into STUN messages and padded ChannelData frames, and queueing what goes out.
// Pure logic without sockets, so every boundary case is unit-tested (tests/streams).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace callrelay::net {

/// A connection's receive buffer and framer. Bytes are read into write_area(), committed, and
/// complete frames are taken with next(). Memory is bounded: the buffer never grows beyond
/// max(`max_frame`, kMinRead) + the read size (kMinRead unless read_up_to() raised it, at most
/// kMaxRead), and a frame announcing more than `max_frame` bytes is an error.
class StreamFramer {
 public:
  /// The smallest free space write_area() offers (one read's worth).
  static constexpr size_t kMinRead = 4096;
  /// The largest read size read_up_to() sets.
  static constexpr size_t kMaxRead = 32 * 1024;

  enum class Status : uint8_t {
    kFrame,     ///< `frame` is one complete STUN message or ChannelData frame (with padding)
    kNeedMore,  ///< read more bytes
    kGarbage,   ///< the stream is not STUN/ChannelData: close the connection
    kTooLarge,  ///< the next frame is larger than max_frame: close the connection
  };
  struct Next {
    Status status = Status::kNeedMore;
    std::span<const uint8_t> frame;  ///< kFrame: valid until the next write_area()/compact()
    size_t size = 0;                 ///< kTooLarge: the announced frame size
  };

  /// `max_frame`: the largest frame (bytes on the wire, padding included) accepted.
  explicit StreamFramer(size_t max_frame);

  /// Free space to read into: at least the read size (moves a partial frame to the front
  /// and grows the buffer for a large frame or a larger read size, within the bound, when
  /// needed).
  std::span<uint8_t> write_area();
  /// Makes the next write_area() offer at least `bytes` (within kMinRead..kMaxRead): for a
  /// reader whose one read brings more than kMinRead bytes, so that they are taken, and their
  /// frames handled, in one pass.
  void read_up_to(size_t bytes);
  /// Frees the buffer and goes back to kMinRead reads, unless it holds a partial frame (false).
  /// Only while nothing reads into the last write_area().
  bool release();
  /// `n` bytes were read into the start of the last write_area().
  void commit(size_t n);
  /// The next complete frame, or why there is none. After kGarbage/kTooLarge it stays so.
  Next next();

  /// Takes every byte received and not yet taken, framed or not (RFC 6062 data connections
  /// carry raw bytes once bound). Valid until the next write_area().
  std::span<const uint8_t> take_buffered();

  /// Bytes received but not yet taken as frames (a partial frame).
  size_t buffered() const { return end_ - begin_; }
  /// Bytes of buffer currently held (the memory bound's subject).
  size_t capacity() const { return buf_.size(); }
  size_t max_frame() const { return max_frame_; }

 private:
  std::vector<uint8_t> buf_;
  size_t begin_ = 0;  ///< first byte not yet taken
  size_t end_ = 0;    ///< one past the last received byte
  size_t max_frame_;
  size_t wanted_ = 0;  ///< size of the partial frame at begin_, once known
  size_t read_size_ = kMinRead;
  bool failed_ = false;
};

/// Outgoing bytes of one connection: frames are appended to a pending buffer while the
/// previous write is in flight, then the two buffers swap. Bounded: a frame that does not fit
/// in `limit` pending bytes is refused (the caller drops it, as UDP would lose it), so a slow
/// client costs at most 2 x limit bytes. Buffers keep their capacity: no allocation in steady
/// state.
class StreamSendQueue {
 public:
  explicit StreamSendQueue(size_t limit) : limit_(limit) {}

  /// Appends a whole frame; false (nothing queued) when it would exceed the limit.
  bool push(std::span<const uint8_t> frame);
  /// Whether bytes wait to be written and no write is in flight.
  bool ready() const { return !in_flight_ && !pending_.empty(); }
  bool in_flight() const { return in_flight_; }
  /// Starts a write: the bytes to write, valid until complete(). Requires ready().
  std::span<const uint8_t> begin_write();
  /// The write started by begin_write() finished.
  void complete();
  /// End offsets of the frames in the bytes begin_write() returned (TLS writes one record per
  /// frame: clients such as coturn's read one frame per record).
  std::span<const size_t> writing_frame_ends() const { return writing_ends_; }

  size_t pending_bytes() const { return pending_.size(); }
  size_t limit() const { return limit_; }

 private:
  std::vector<uint8_t> pending_;
  std::vector<uint8_t> writing_;
  std::vector<size_t> pending_ends_;
  std::vector<size_t> writing_ends_;
  size_t limit_;
  bool in_flight_ = false;
};

/// Whether `frame` is a success response to an Allocate (0x0103): the connection then carries
/// an allocation, which keeps it alive longer than a connection without one.
bool is_allocate_success(std::span<const uint8_t> frame);

}  // namespace callrelay::net
