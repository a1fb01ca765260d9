package proxy

import (
	"strconv"
	"sync/atomic"

	"github.com/mcproxy/mcproxy/protocol"
)

// Meta commands through the proxy (mg, ms, md, ma, mn, me).
//
// Each meta command with a key is one request routed like a text command on
// one key: by the key's bytes, decoded first when the client sent it in
// base64 (b), so that "set foo" and "mg Zm9v b v" reach the same backend.
// The line is forwarded as the client wrote it (protocol.AppendMetaCommand
// keeps every flag, in order), with two changes (protocol.MetaRewrite):
//
//   - Quiet mode is dropped. memcached leaves out some replies to a quiet
//     command (protocol.MetaQuietHides); a backend connection shared by many
//     clients matches replies to requests one for one, so the backend must
//     answer everything. The proxy then drops, when it renders, exactly the
//     replies memcached would have left out. Errors are never dropped.
//     The exception is a quiet ma with N (protocol.MetaQuietFenced), whose
//     reply does not say whether memcached would hide it (it shows a
//     creation and hides an increment): it goes with its q, fenced by an
//     mn, so the backend answers its reply or nothing, then MN, and the
//     client sees whatever the backend showed.
//   - The proxy's own opaque (O) replaces the client's, or is added. Every
//     reply echoes it, so the backend reader (protocol.ReadReplyTo) can tell
//     that a reply answers this very request and not another one a
//     misbehaving backend shifted onto it; the client's opaque, or none,
//     is put back when the reply is rendered. When the line has no room for
//     one more token (memcached takes at most protocol.MaxMetaTokens) the
//     client's line goes without it, checked by code and key alone.
//
// mn needs no backend. The client's replies leave in the order it sent its
// commands, so an MN queued at mn's place in the reply FIFO is written
// after every earlier reply has been written or dropped, on whichever
// backends they were: which is what memcached's MN tells a client.
//
// me is routed by key too and answers with that backend's own view of the
// item (ME ... or EN): the debug fields are the backend's, not the proxy's.

// metaState is what a meta request keeps for rendering its reply and for
// the failover rules, once the client's line is gone from the read buffer.
type metaState struct {
	quiet     bool // q: hide what memcached hides
	fenced    bool // sent with q and an mn after it: the backend decides what to hide
	hasOpaque bool // the client sent an O token
	// proxyOpaque is the O token (digits) the line carries in place of the
	// client's; 0 when the line carries the client's own, or none.
	proxyOpaque uint64
	// touch is set for an mg with T, which memcached counts as a touch.
	touch bool
	// vivify is set by N: mg and ma may create the item.
	vivify bool
	// mode is ma's mode letter, for the incr and decr counters.
	mode byte
	// buf holds the client's opaque token (buf[:opaqueEnd]), the key as it
	// is hashed (buf[opaqueEnd:keyEnd]) and, for mg, the EN line that a
	// failed backend's key gets (buf[keyEnd:]).
	buf               []byte
	opaqueEnd, keyEnd int
}

func (m *metaState) opaque() []byte { return m.buf[:m.opaqueEnd] }
func (m *metaState) key() []byte    { return m.buf[m.opaqueEnd:m.keyEnd] }
func (m *metaState) miss() []byte   { return m.buf[m.keyEnd:] }

// rewrite returns the change every line of the request gets: q dropped
// unless the request is fenced.
func (m *metaState) rewrite() protocol.MetaRewrite {
	return protocol.MetaRewrite{Loud: m.quiet && !m.fenced}
}

// hidden reports whether the backend's reply rep is one memcached leaves
// out in quiet mode: an MN alone, for a fenced request; by its code, for
// one sent loud.
func (m *metaState) hidden(op protocol.Op, rep *protocol.Reply) bool {
	switch {
	case rep.IsError || !m.quiet:
		return false
	case m.fenced:
		return rep.Meta.Code == protocol.MetaMN
	}
	return protocol.MetaQuietHides(op, rep.Meta.Code)
}

// reset empties m, keeping its buffer for the request's next use.
func (m *metaState) reset() {
	buf := m.buf[:0]
	if cap(buf) > maxRetainedBuffer {
		buf = nil
	}
	*m = metaState{buf: buf}
}

// metaOpaqueSeq numbers the opaque tokens the proxy puts on meta lines. It
// is shared by every session: a token tells one request on a backend
// connection from the others in flight there, which come from many
// sessions.
var metaOpaqueSeq atomic.Uint64

// dispatchMeta routes one meta command. It returns false when the session
// must stop reading (ms's data block cut short).
func (s *session) dispatchMeta(req *protocol.Request) bool {
	op := req.Op
	m := req.Meta
	if op == protocol.OpMetaGet && !s.keysFit(1) {
		s.parked = true // sent when earlier keys have been answered
		return true
	}
	s.p.stats.countMetaCommand(op, op == protocol.OpMetaGet && m.Flags.Has('T'))
	if op == protocol.OpMetaNoop {
		s.p.stats.countResult(op, resOK, 1)
		s.enqueueLocalFor(op, "MN")
		return true
	}
	r := newRequest(s, op)
	if op == protocol.OpMetaGet {
		// An mg may bring a value of up to max_item_size back, like a get
		// of one key: it takes one place in the window of retrieval keys
		// in flight (output_limit.go), so a client pipelining mg of large
		// values is held back at the window instead of cut off.
		r.nkeys = 1
	}
	rw := s.prepareMeta(r, req)
	var digits [20]byte
	if r.meta.proxyOpaque != 0 {
		rw.SetOpaque, rw.Opaque = true, strconv.AppendUint(digits[:0], r.meta.proxyOpaque, 10)
	}
	r.out = protocol.AppendMetaCommand(r.out, req, rw)
	if r.meta.fenced {
		r.out = protocol.AppendMetaNoop(r.out)
	}
	if op == protocol.OpMetaSet {
		// The data block goes straight into the outgoing command, as for
		// a text storage command, as it arrives (session.continueData);
		// storageArrived routes it.
		r.out = growBytes(r.out, req.Bytes+2)
		s.data, s.dataHave = r, 0
		return true
	}
	s.routeMeta(r, req)
	return true
}

// prepareMeta fills r.meta from req and returns the rewrite of its line,
// apart from the proxy's opaque (r.meta.proxyOpaque, when there is room).
func (s *session) prepareMeta(r *request, req *protocol.Request) protocol.MetaRewrite {
	m, st := req.Meta, &r.meta
	st.quiet = m.Quiet
	st.fenced = protocol.MetaQuietFenced(req)
	st.touch = req.Op == protocol.OpMetaGet && m.Flags.Has('T')
	st.vivify = m.Flags.Has('N')
	st.mode = m.Mode
	if tok, ok := m.Flags.Token('O'); ok {
		st.hasOpaque = true
		st.buf = append(st.buf, tok...)
	}
	st.opaqueEnd = len(st.buf)
	st.buf = append(st.buf, req.Key()...)
	st.keyEnd = len(st.buf)
	if req.Op == protocol.OpMetaGet {
		st.buf = protocol.AppendMetaMiss(st.buf, req)
	}
	rw := st.rewrite()
	withOpaque := rw
	withOpaque.SetOpaque = true
	if req.Op != protocol.OpMetaDebug && protocol.MetaTokens(req, withOpaque) <= protocol.MaxMetaTokens {
		st.proxyOpaque = metaOpaqueSeq.Add(1)
	}
	return rw
}

// routeMeta queues r for the client and sends it to the key's backend. A
// change (ms, md, ma) takes the failover path of any write while it is
// active (failover.go): capped expiries on a stand-in, invalidating deletes
// after a ring change. An mg only has its expiries capped, as gat has; me
// only reads.
func (s *session) routeMeta(r *request, req *protocol.Request) {
	rt, t, b, key := s.enqueueAndLocate(r, req)
	if t == nil {
		return
	}
	if rt.warm != nil {
		s.warmMeta(rt, b, r, key)
	}
	if metaMayCreate(req) {
		r.routed = t // for repairAfterSwap
	}
	if t.replicated() {
		s.routeMetaCopies(t, r, req, key) // replica_read.go
		return
	}
	if !t.fo.active(s.now) {
		s.sendTo(b, r)
		return
	}
	switch req.Op {
	case protocol.OpMetaSet, protocol.OpMetaDelete, protocol.OpMetaArithmetic:
		s.routeFailover(t, b, r, req, key)
	case protocol.OpMetaGet:
		if err := s.capMeta(t, b, r, req, key); err != nil {
			r.fail(err)
			return
		}
		s.sendTo(b, r)
	default:
		s.sendTo(b, r)
	}
}
