package proxy

import (
	"errors"

	"github.com/mcproxy/mcproxy/protocol"
	"go.uber.org/zap"
)

// hardLimitFactor is the hard output limit as a multiple of the soft one:
// twice is enough for any item within max_item_size, since the window
// (outputWindow) lets the replies on their way when a client reaches the
// soft limit add at most one more soft limit.
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
// flight, and the most keys one piece of a multi-get has: the soft limit
// over the memory the largest item can take (max_item_size, its VALUE
// line, and the spare capacity of the reply buffer that holds it:
// protocol.MaxReplyCapacity).
func (o *Options) outputWindow() int {
	return min(max(o.ClientOutputLimit/protocol.MaxReplyCapacity(o.MaxItemSize+valueOverhead), 1), maxPendingReplies)
}

// Charge is the protocol.Budget of r's reply: it is called by the backend
// reader reading r's reply, before it takes n more bytes of memory for it.
//
// It is where the output limit begins: every byte of reply memory is
// charged to its client from the moment the reader takes it (a value
// whole, from its VALUE line) until the session has written or dropped it
// (renderReady, writeOut). While the charge is at the soft limit
// (limits.client_output_limit) the session reads no more commands
// (hasRoom); at most outputWindow retrieval keys are in flight, so a long
// multi-get goes in pieces (dispatch_pieces.go); a client past the hard
// limit is cut off (charge), and the rest of its replies are read and
// dropped, so a backend connection never waits for a client. The rules
// and measurements: docs/failover.md, "Output limit".
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
