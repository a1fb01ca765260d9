package proxy

import "github.com/mcproxy/mcproxy/protocol"

// dispatchRetrieval sends a get/gets/gat/gats. Keys that live on one
// backend go as one command; otherwise the command is split into one
// command per backend and the replies are merged in the client's key order.
// A gat/gats line is also split wherever it would pass protocol.MaxGatLine,
// which memcached cannot be relied on to read.
func (s *session) dispatchRetrieval(req *protocol.Request) {
	if len(req.Keys) > s.window {
		s.dispatchPieces(req)
		return
	}
	keys := req.Keys
	if !s.keysFit(len(keys)) {
		s.parked = true // sent when earlier keys have been answered
		return
	}
	s.p.stats.countCommand(req.Op, len(keys))
	if len(keys) == 0 { // "gat <exptime>" with no key: memcached answers END
		s.enqueueLocal("END")
		return
	}
	t := s.p.table.Load()
	if t.ring == nil {
		s.p.stats.countResult(req.Op, resError, len(keys))
		s.enqueueLocal("SERVER_ERROR " + errNoBackends.Error())
		return
	}
	lineLimit := 0 // no limit for get and gets
	s.lineHead = retrievalHead(s.lineHead[:0], req)
	head := s.lineHead
	if req.Op == protocol.OpGat || req.Op == protocol.OpGats {
		lineLimit = protocol.MaxGatLine - len("\r\n")
	}
	owners := s.owners[:0]
	first := t.ring.Locate(keys[0])
	single := true
	lineLen := len(head)
	for _, k := range keys {
		i := t.ring.Locate(k)
		owners = append(owners, i)
		single = single && i == first
		lineLen += 1 + len(k)
	}
	// A gat on a stand-in has its exptime capped like a write there
	// (failover.go): such keys get sub-requests of their own, owner n+i.
	n := len(t.members)
	standIns := t.fo.standIns && (req.Op == protocol.OpGat || req.Op == protocol.OpGats)
	if standIns {
		owners, single = s.gatStandIns(t, keys, owners)
		first = owners[0]
	}
	s.owners = owners
	if single && (lineLimit == 0 || lineLen <= lineLimit) {
		r := newRequest(s, req.Op)
		r.nkeys = len(keys)
		r.more = s.morePiece
		exptime := req.Exptime
		if first >= n {
			exptime = capExptime(exptime, t.fo.ttl, s.now)
		}
		r.out = protocol.AppendRetrieval(r.out, req.Op, exptime, keys)
		s.enqueue(r)
		s.sendTo(t.members[first%n], r)
		return
	}
	var capHead []byte
	if standIns {
		capHead = gatHead(nil, req, t.fo.ttl, s.now)
	}

	parent := newRequest(s, req.Op)
	parent.nkeys = len(keys)
	parent.more = s.morePiece
	// The keys point into the read buffer, which the next command reuses:
	// keep a copy for the merge.
	for _, k := range keys {
		parent.keyBuf = append(parent.keyBuf, k...)
	}
	off := 0
	subOf := s.subOf[:0] // owner (backend index, +n on a stand-in) -> its current sub-request
	slots := n
	if standIns {
		slots = 2 * n
	}
	for range slots {
		subOf = append(subOf, -1)
	}
	for i, k := range keys {
		parent.keys = append(parent.keys, parent.keyBuf[off:off+len(k)])
		off += len(k)
		b := owners[i]
		j := subOf[b]
		if j < 0 || lineLimit > 0 && len(parent.subs[j].out)+1+len(k) > lineLimit {
			j = len(parent.subs)
			subOf[b] = j
			sub := newRequest(s, req.Op)
			sub.parent = parent
			sub.backend = t.members[b%n]
			if b >= n {
				sub.out = append(sub.out, capHead...)
			} else {
				sub.out = append(sub.out, head...)
			}
			parent.subs = append(parent.subs, sub)
		}
		// Each sub's line is built as its keys come, in the client's order,
		// which is the order the merge expects its values in.
		sub := parent.subs[j]
		sub.out = append(append(sub.out, ' '), k...)
		parent.owner = append(parent.owner, j)
	}
	s.subOf = subOf
	for _, sub := range parent.subs {
		sub.out = append(sub.out, "\r\n"...)
	}
	parent.pending.Store(int32(len(parent.subs)))
	s.enqueue(parent)
	for _, sub := range parent.subs {
		s.sendTo(sub.backend, sub)
	}
}

// retrievalHead appends "get", "gets", "gat <exptime>" or "gats <exptime>",
// the part of a retrieval line before its keys.
func retrievalHead(dst []byte, req *protocol.Request) []byte {
	dst = append(dst, req.Op.String()...)
	if req.Op == protocol.OpGat || req.Op == protocol.OpGats {
		dst = append(dst, ' ')
		dst = protocol.AppendInt32(dst, req.Exptime)
	}
	return dst
}
