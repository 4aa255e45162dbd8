// TurnServer's operator actions: ending allocations because their credential was revoked or
// expired (auth.strict_expiry) or because an operator said so (a user's, or one allocation by
// id), and draining (new Allocates refused or sent to an alternate server while live
// allocations run to their end).
#include <algorithm>
#include <functional>

#include "relay/core/server_impl.hpp"

namespace callrelay::core {

size_t TurnServer::end_username(std::string_view username, TimeMs now) {
  return impl_->end_matching(
      [username](const AllocationInfo& info) { return info.username == username; },
      EndReason::kRevoked, now);
}

size_t TurnServer::end_user(std::string_view user_id, EndReason why, TimeMs now) {
  return impl_->end_matching(
      [user_id](const AllocationInfo& info) { return info.user_id == user_id; }, why, now);
}

bool TurnServer::end_allocation(uint64_t id, EndReason why, TimeMs now) {
  return impl_->end_matching([id](const AllocationInfo& info) { return info.id == id; }, why,
                             now) > 0;
}

void TurnServer::start_draining(std::vector<Endpoint> alternates) {
  impl_->draining = true;
  impl_->alternates = std::move(alternates);
}

bool TurnServer::draining() const { return impl_->draining; }

size_t TurnServer::end_all(EndReason why, TimeMs now) {
  return impl_->end_matching([](const AllocationInfo&) { return true; }, why, now);
}

size_t TurnServer::Impl::end_matching(const std::function<bool(const AllocationInfo&)>& match,
                                      EndReason why, TimeMs now) {
  // Collected first: end_allocation erases from by_tuple.
  std::vector<FiveTuple> doomed;
  for (const auto& a : by_tuple) {
    if (match(a->info)) doomed.push_back(a->info.client);
  }
  for (const FiveTuple& t : doomed) end_allocation(t, why, now);
  return doomed.size();
}

Output TurnServer::Impl::refuse_allocate(Request& req) {
  // A retransmitted Allocate of a live allocation gets its success again, and an Allocate on
  // a 5-tuple in use its 437: draining changes neither.
  if (by_tuple.contains(req.from)) return handle_allocate(req);
  // RFC 8656 section 7.2, step 1: the request is authenticated first, so that the refusal is
  // signed (RFC 8489 section 10: a 300 to an authenticated request carries integrity) and an
  // unauthenticated client learns nothing but the usual challenge.
  Credential cred;
  if (auto rejected = authenticate(req, cred)) return *rejected;
  // RFC 8489 section 10: the alternate server must be of the request's source address family.
  const Family family = req.from.client.family;
  for (size_t tried = 0; tried < alternates.size(); ++tried) {
    const Endpoint& alt = alternates[next_alternate++ % alternates.size()];
    if (alt.family != family) continue;
    // RFC 8656 section 7.2: "the server MAY ... reject the request with a 300 (Try Alternate)".
    return respond(req, 300, "Try Alternate", [&alt](stun::MessageBuilder& b) {
      b.add_plain_address(stun::attr::kAlternateServer, alt);  // RFC 8489 14.15: not XOR
    });
  }
  // RFC 8656 section 7.2: 403 (Forbidden), "the server is unwilling to" allocate here.
  return respond_error(req, 403, "Server is draining");
}

void TurnServer::Impl::track_credential(const Allocation& a) {
  if (a.info.secret_index < 0) return;  // static users have no expiry
  // The username was authenticated by this very request: its expiry is the REST timestamp.
  const Authenticator::Lookup found = auth.lookup(a.info.username, a.info.started);
  if (found.failure || found.candidates.empty() || found.candidates.front().expires == 0) return;
  // Entries of allocations that ended otherwise are dropped once they outnumber the live
  // ones, so the heap stays within twice the shard's allocations whatever the churn.
  if (credential_deadlines.size() > 2 * by_tuple.size() + 64) {
    std::erase_if(credential_deadlines, [this](const CredentialDeadline& d) {
      const Allocation* const live = by_tuple.find(d.tuple);
      return live == nullptr || live->info.id != d.id;
    });
    std::make_heap(credential_deadlines.begin(), credential_deadlines.end(), std::greater<>{});
  }
  credential_deadlines.push_back({found.candidates.front().expires, a.info.id, a.info.client});
  std::push_heap(credential_deadlines.begin(), credential_deadlines.end(), std::greater<>{});
}

void TurnServer::Impl::expire_credentials(TimeMs now, size_t* budget) {
  if (credential_deadlines.empty()) return;
  // REST expiry is wall time (Authenticator::lookup judges it so): compare with the wall clock
  // now, so a stepped wall clock moves these deadlines as it moves new logins'.
  const TimeMs wall = auth.wall_now(now);
  while (*budget > 0 && !credential_deadlines.empty() &&
         credential_deadlines.front().wall_expires <= wall) {
    --*budget;
    std::pop_heap(credential_deadlines.begin(), credential_deadlines.end(), std::greater<>{});
    const CredentialDeadline due = credential_deadlines.back();
    credential_deadlines.pop_back();
    const Allocation* const a = by_tuple.find(due.tuple);
    if (a != nullptr && a->info.id == due.id)
      end_allocation(due.tuple, EndReason::kCredentialExpired, now);
  }
}

}  // namespace callrelay::core
