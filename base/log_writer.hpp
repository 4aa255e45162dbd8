// The log's asynchronous writer: producers (any thread, the relay's workers among them) copy a
// finished line into a bounded buffer under a short lock and return; one writer thread takes the
// whole buffer (two buffers swapped) and writes it to stderr with as few write(2) calls as it
// can. A worker never waits on stderr: when the buffer is full (a reader that stopped reading)
// the line is dropped and counted, and the writer reports the count in a log.dropped line once
// stderr takes lines again. Internal to callrelay_log; callers use base/log.hpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace callrelay::log::detail {

/// How many bytes of lines may wait for the writer: past this, lines are dropped. About 30k
/// ended allocations' lines (some 550 bytes each), what a burst of expiries queues in a tenth
/// of a second or more while the writer waits for a CPU, without letting a stuck stderr grow
/// the process (two such buffers, swapped).
inline constexpr size_t kBufferBytes = 16u << 20;

/// Queues `line` plus a newline for the writer (started on first use). False, with the line
/// dropped and counted, when the buffer has no room. After the writer stopped at exit, writes
/// the line itself.
bool append_line(std::string_view line);

/// Blocks until every line appended before the call has been written (or given up on because
/// stderr is gone).
void flush_lines();
/// As flush_lines(), waiting at most `limit`; false when that passed first.
bool flush_lines_for(std::chrono::milliseconds limit);

/// Lines dropped since the process started.
uint64_t dropped_total();

/// Writes `line` plus a newline to stderr now, from the calling thread, whole: for the writer
/// and for the paths where there is no writer.
void write_now(std::string_view line);

/// The line the writer writes after `count` lines were dropped, in the configured format.
std::string dropped_line(uint64_t count);

}  // namespace callrelay::log::detail
