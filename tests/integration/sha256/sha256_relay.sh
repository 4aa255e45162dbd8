#!/usr/bin/env bash
# An RFC 8489 client that picks SHA-256 (the tools' TurnClient in SHA-256 mode: PASSWORD-
# ALGORITHMS echoed, PASSWORD-ALGORITHM SHA-256, MESSAGE-INTEGRITY-SHA256 under the SHA-256
# key) against a running callrelay: Allocate, CreatePermission, ChannelBind, one packet relayed
# each way, every success response verified with MESSAGE-INTEGRITY-SHA256. Then the same server
# still lets an RFC 5389-style client (MD5 key, MESSAGE-INTEGRITY) in.
source "$(dirname "$0")/../lib/common.sh"

start_server
user="$(($(date +%s) + 3600)):sha256-user"
password="$(mint_password "$user")"

out="$("$INTEG_TOOL" sha256-relay 127.0.0.1 "$SERVER_PORT" "$user" "$password")" ||
  fail "SHA-256 client: $out"
echo "$out"

rfc5389="$("$INTEG_TOOL" allocate 127.0.0.1 "$SERVER_PORT" "$user" "$password")" ||
  fail "RFC 5389 client: no answer"
[ "$rfc5389" = "200" ] || fail "RFC 5389 client: Allocate answered $rfc5389"

assert_server_alive
echo "PASS: SHA-256 client relayed both ways with signed responses; MD5 client still allocates"
