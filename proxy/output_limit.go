package proxy

import (
	"errors"

	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
)

// Output limit: the memory the proxy holds for one client's replies.
//
// Every byte of reply memory is charged to the client it is for from the
// moment a backend connection's reader takes it: the reader charges a
// request's session before it grows the request's reply buffer (for a
// value, the whole value at once, from its VALUE header), so replies still
// arriving, fan-out pieces of a multi-get and finished replies waiting for
// the client all count. The session's writer releases the charge once it
// has written (or dropped) the reply. Three rules bound the total:
//
//   - Soft limit (limits.client_output_limit): while the charge is at or
//     over it, the session reads no more commands, as memcached stops
//     reading a connection whose replies it cannot send.
//   - Keys in flight: a session has at most outputWindow retrieval keys
//     sent and not yet answered, where outputWindow is the soft limit over
//     the memory the largest item can take (max_item_size plus its VALUE
//     line, plus the spare capacity of the reply buffer that holds it:
//     protocol.MaxReplyCapacity). Replies that are already on their way
//     when the soft limit is reached can therefore add at most one more
//     soft limit. A multi-get of more
//     keys than the window is sent as consecutive pieces of at most that
//     many keys, each only when the window has room, so a get of ten
//     thousand large values streams through the proxy at the client's
//     pace instead of being held whole, and other clients' commands reach
//     the backend between its pieces.
//   - Hard limit (twice the soft limit): the two rules above keep a
//     client under it as long as backends hold no item larger than
//     max_item_size. A client whose replies pass it anyway (items stored
//     on the backends by other means) is disconnected at once, and the rest
//     of its replies are read and thrown away as they arrive, so the
//     shared backend connection stays in step and keeps flowing.
//
// The backend connection never waits for a client: charging is an add,
// and going over the hard limit closes the client's socket at once.
//
// Rendered replies stay charged until the socket has taken them, so a
// client that does not read is held to the same bound whether its replies
// wait in requests or in its output buffer.

// hardLimitFactor is the hard limit as a multiple of the soft limit; see
// above for why twice is enough for any item within max_item_size.
const hardLimitFactor = 2

// valueOverhead is the most a VALUE line adds to a value's data ("VALUE",
// a 250-byte key, flags, length, cas, spaces, CRLFs), rounded up.
const valueOverhead = 512

// DefaultClientOutputLimit is Options.ClientOutputLimit's default.
const DefaultClientOutputLimit = 64 << 20

// errOutputLimit fails a request whose reply was dropped because its client
// went over the hard output limit. The client is gone; nobody sees it.
var errOutputLimit = errors.New("client output limit exceeded")

// outputWindow returns how many retrieval keys one session may have in
// flight, and the most keys one piece of a multi-get has.
func (o *Options) outputWindow() int {
	return min(max(o.ClientOutputLimit/protocol.MaxReplyCapacity(o.MaxItemSize+valueOverhead), 1), maxPendingReplies)
}

// Charge is the protocol.Budget of r's reply: it is called by the backend
// reader reading r's reply, before it takes n more bytes of memory for it.
func (r *request) Charge(n int) bool {
	s := r.sess
	if s == nil {
		return true // an internal request: its reply is one short line
	}
	if !s.charge(n) {
		return false
	}
	r.charged += n
	return true
}

// chargedBytes returns the reply memory charged for r and its
// sub-requests. Called by the session when it renders r.
func (r *request) chargedBytes() int64 {
	n := int64(r.charged)
	for _, sub := range r.subs {
		n += int64(sub.charged)
	}
	return n
}

// charge accounts n more bytes held for s, or refuses them and cuts the
// client off when they would take it past the hard limit.
func (s *session) charge(n int) bool {
	if s.cut.Load() {
		return false
	}
	if s.held.Load()+int64(n) > s.hardLimit {
		s.cutOff()
		return false
	}
	s.held.Add(int64(n))
	return true
}

// cutOff disconnects a client over its hard output limit. It runs on the
// loop while a backend connection reads a reply, so it only marks the
// session, counts, and closes the socket; the session ends once its
// requests have finished, and the rest of their replies are read and
// dropped.
func (s *session) cutOff() {
	if s.cut.Swap(true) {
		return
	}
	s.p.stats.outputLimitDisconnects.Add(1)
	s.lost()
}

// logCutOff reports a disconnect for the output limit, once per client.
func (s *session) logCutOff() {
	s.p.log.Info("client disconnected: its replies passed the hard output limit",
		zap.String("client", s.remote),
		zap.Int64("hard_limit_bytes", s.hardLimit),
		zap.Int64("soft_limit_bytes", s.softLimit))
}

// HeldReplyBytes returns the reply memory held now for each client
// connection, for tests and diagnostics.
func (p *Proxy) HeldReplyBytes() []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int64, 0, len(p.sessions))
	for s := range p.sessions {
		out = append(out, s.held.Load())
	}
	return out
}
