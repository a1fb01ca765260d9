package proxy

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/mcproxy/mcproxy/protocol"
)

// The failover rules (failover.go) for meta commands.
//
// The cap on expiries on a stand-in covers every meta flag that gives
// an item an expiry: T of mg (a touch, like gat), ma and md (with I, the
// TTL of the stale item); N of mg and ma (the TTL of an item they create);
// and ms's expiry, which is T or, without T, 0 (never). An ms without T
// gets a T of failover.ttl on a stand-in, as a set with exptime 0 does;
// except in append and prepend mode, where memcached keeps the old item's
// expiry (already capped if it was written on this stand-in).
//
// The invalidation after a ring change covers every meta command that
// changes an item: ms, md (with I too: the stale item it leaves is a copy
// like any other) and ma. The invalidating deletes are text deletes, or
// "md <key> b" for a key that only base64 can carry (protocol.AppendDeleteOf).
//
// The race around a table swap (repairAfterSwap) concerns the commands that
// can create an item where none was: ms, and mg and ma with N.

// errNoRoomToCap answers a meta write to a stand-in that has no T and whose
// line already has as many tokens as memcached takes, so the proxy cannot
// add the capped T it must send there.
var errNoRoomToCap = errors.New("meta command has no room for the failover expiry")

// metaCarriesExptime reports whether req gives its item an expiry that a
// stand-in must cap.
func metaCarriesExptime(req *protocol.Request) bool {
	m := req.Meta
	switch req.Op {
	case protocol.OpMetaSet:
		return m.Mode != 'A' && m.Mode != 'P' || m.Flags.Has('T')
	case protocol.OpMetaGet, protocol.OpMetaArithmetic:
		return m.Flags.Has('T') || m.Flags.Has('N')
	case protocol.OpMetaDelete:
		return m.Flags.Has('T')
	}
	return false
}

// metaMayCreate reports whether req can create an item that was not
// there, so that a copy routed with an old table could outlive the swap.
func metaMayCreate(req *protocol.Request) bool {
	switch req.Op {
	case protocol.OpMetaSet:
		return true
	case protocol.OpMetaGet, protocol.OpMetaArithmetic:
		return req.Meta.Flags.Has('N')
	}
	return false
}

// capMeta rewrites r's line, sent to b, the location of key in t, with its
// expiries capped when b stands in for the key's home. It fails only when
// the line has no room for a T it lacks.
func (s *session) capMeta(t *poolTable, b *backend, r *request, req *protocol.Request, key []byte) error {
	if !metaCarriesExptime(req) || !t.standIn(key, b) {
		return nil
	}
	m := req.Meta
	st := &r.meta
	rw := st.rewrite()
	ttl := t.fo.ttl
	if m.Flags.Has('T') || req.Op == protocol.OpMetaSet && m.Mode != 'A' && m.Mode != 'P' {
		rw.SetTTL, rw.TTL = true, capExptime(req.Exptime, ttl, s.now)
	}
	if m.Flags.Has('N') {
		rw.SetVivify, rw.Vivify = true, capExptime(m.Vivify, ttl, s.now)
	}
	withOpaque := rw
	withOpaque.SetOpaque = true
	if st.proxyOpaque != 0 && protocol.MetaTokens(req, withOpaque) > protocol.MaxMetaTokens {
		st.proxyOpaque = 0 // the cap matters more than the extra check
	}
	if protocol.MetaTokens(req, rw) > protocol.MaxMetaTokens {
		return errNoRoomToCap
	}
	s.p.stats.failoverCappedWrites.Add(1)
	t.pool.counters.failoverCappedWrites.Add(1)
	var digits [20]byte
	if st.proxyOpaque != 0 {
		rw.SetOpaque, rw.Opaque = true, strconv.AppendUint(digits[:0], st.proxyOpaque, 10)
	}
	var scratch [protocol.MaxGatLine]byte
	line := protocol.AppendMetaCommand(scratch[:0], req, rw)
	replaceLine(r, line)
	return nil
}

// replaceLine puts line in place of the command line at the head of
// r.out, moving the data block of a storage command or an ms behind it.
func replaceLine(r *request, line []byte) {
	oldN := bytes.IndexByte(r.out, '\n') + 1
	size := len(r.out)
	newSize := size - oldN + len(line)
	if newSize > size {
		r.out = growBytes(r.out, newSize-size)
	}
	copy(r.out[len(line):newSize], r.out[oldN:size])
	r.out = r.out[:newSize]
	copy(r.out, line)
}

// newDeleteOf returns a request deleting key, whatever its bytes
// (protocol.AppendDeleteOf), for the invalidations of failover.go.
func newDeleteOf(s *session, key []byte) *request {
	var scratch [512]byte
	op, line := protocol.AppendDeleteOf(scratch[:0], key)
	d := newRequest(s, op)
	d.out = append(d.out, line...)
	return d
}

// plantedCopy reports whether r, a command routed with an older table
// (r.routed), left an item on its backend: a set or add that was STORED,
// an ms that was stored (HD), an mg or ma with N that found or made one
// (a fenced ma's hidden reply is a success too).
func (r *request) plantedCopy() bool {
	if !r.op.IsMeta() {
		return bytes.HasPrefix(r.reply.Raw, storedLine)
	}
	if r.reply.IsError {
		return false
	}
	switch c := r.metaCode(); r.op {
	case protocol.OpMetaSet:
		return c == protocol.MetaHD
	default:
		return c == protocol.MetaHD || c == protocol.MetaVA
	}
}

// routedKey returns the key r was routed by: the second word of a text
// line, the (decoded) key a meta request kept.
func (r *request) routedKey() []byte {
	if r.op.IsMeta() {
		return r.meta.key()
	}
	return lineKey(r.out)
}
