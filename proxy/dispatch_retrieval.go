package proxy

import "github.com/mcproxy/mcproxy/protocol"

// dispatchRetrieval sends a get/gets/gat/gats. Keys that live on one
// backend go as one command (sendWhole); otherwise the command is split
// into one command per backend and the replies are merged in the client's
// key order (sendSplit). A gat/gats line is also split wherever it would
// pass protocol.MaxGatLine, which memcached cannot be relied on to read.
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
	loc, placed := s.locateKeys(t, req)
	if !placed {
		s.p.stats.countResult(req.Op, resError, len(keys))
		s.enqueueLocal("SERVER_ERROR " + errNoBackends.Error())
		return
	}
	fits := loc.lineLimit == 0 || loc.lineLen <= loc.lineLimit
	// One key on a replicated pool: its copies are tried one after the
	// other (replica_read.go).
	if t.replicated && len(keys) == 1 && s.copySlots[0] >= 0 && (!t.warmed || t.route(keys[0]).warm == nil) && fits {
		s.sendWhole(t, req, loc.first, true)
		return
	}
	var second []int
	var copyKey []bool
	if t.warmed || t.replicated {
		// warm.go, replica_read.go: such a retrieval is always split
		second, copyKey = s.secondSlots(t, keys)
	}
	if loc.single && second == nil && fits {
		s.sendWhole(t, req, loc.first, false)
		return
	}
	s.sendSplit(t, req, loc, second, copyKey)
}

// secondSlots returns where the second round of a split retrieval asks
// each key that the first round did not find (-1: nowhere): the old pool
// of a warm-up route (warm.go), else the key's next copy on a replicated
// pool, which copyKey marks; nil when no key has one.
func (s *session) secondSlots(t *routeTable, keys [][]byte) ([]int, []bool) {
	var slots []int
	if t.warmed {
		slots = warmSlots(t, keys)
	}
	if !t.replicated {
		return slots, nil
	}
	var copyKey []bool
	for i, next := range s.copySlots {
		if next < 0 || slots != nil && slots[i] >= 0 {
			continue
		}
		if slots == nil {
			slots = make([]int, len(keys))
			for j := range slots {
				slots[j] = -1
			}
		}
		if copyKey == nil {
			copyKey = make([]bool, len(keys))
		}
		slots[i], copyKey[i] = next, true
	}
	return slots, copyKey
}

// keysLocated is where the keys of one retrieval go, as locateKeys found
// them; the owner of each key is in session.owners.
type keysLocated struct {
	single bool // every key has the same owner: first
	first  int
	// standIns: owners of gat keys on a stand-in are n+i, n the number of
	// ring members, so that they get sub-requests of their own whose
	// exptime is capped (failover.go).
	standIns  bool
	lineLen   int // the length of the line as one command, without CRLF
	lineLimit int // the longest line a backend reads (gat, gats); 0: no limit
}

// locateKeys finds the owner of each key of req in t, into s.owners, and
// the part of its line before the keys, into s.lineHead. An owner is a
// slot of t (routeTable.slots): a backend as a member of one pool. It
// reports false when some key's pool has no backend in its placement.
func (s *session) locateKeys(t *routeTable, req *protocol.Request) (keysLocated, bool) {
	keys := req.Keys
	var loc keysLocated
	s.lineHead = retrievalHead(s.lineHead[:0], req)
	if req.Op == protocol.OpGat || req.Op == protocol.OpGats {
		loc.lineLimit = protocol.MaxGatLine - len("\r\n")
	}
	owners := s.owners[:0]
	loc.single = true
	loc.lineLen = len(s.lineHead)
	pt := t.routes[0].pool // every key's pool, unless routes have prefixes
	s.copySlots = s.copySlots[:0]
	for j, k := range keys {
		if t.prefixed {
			pt = t.poolOf(k)
		}
		if pt.place == nil {
			return loc, false
		}
		var i int
		if t.replicated {
			next := -1
			if pt.replicated() {
				i, next = firstCopy(pt, k, req.Op, s.copyScratch[:0])
			} else {
				i = pt.base + pt.place.Locate(k)
			}
			s.copySlots = append(s.copySlots, next)
		} else {
			i = pt.base + pt.place.Locate(k)
		}
		if j == 0 {
			loc.first = i
		}
		owners = append(owners, i)
		loc.single = loc.single && i == loc.first
		loc.lineLen += 1 + len(k)
	}
	// A gat on a stand-in has its exptime capped like a write there
	// (failover.go): such keys get sub-requests of their own, owner n+i.
	loc.standIns = t.anyStandIns() && (req.Op == protocol.OpGat || req.Op == protocol.OpGats)
	if loc.standIns {
		owners, loc.single = s.gatStandIns(t, keys, owners)
		loc.first = owners[0]
	}
	s.owners = owners
	return loc, true
}

// sendWhole sends a retrieval whose keys all have one owner as one
// command. replica: it has one key, on a replicated pool, whose copies are
// tried in turn (replica_read.go).
func (s *session) sendWhole(t *routeTable, req *protocol.Request, owner int, replica bool) {
	n := len(t.slots)
	r := newRequest(s, req.Op)
	r.nkeys = len(req.Keys)
	r.more = s.morePiece
	exptime := req.Exptime
	b := t.slots[owner%n]
	if replica {
		k := req.Keys[0]
		b = readCopies(t.poolOf(k), r, k, req.Op == protocol.OpGets || req.Op == protocol.OpGats)
		// a later copy may be a stand-in: cap a gat's expiry on all
		owner += n * boolInt(t.anyStandIns() && (req.Op == protocol.OpGat || req.Op == protocol.OpGats))
	}
	if owner >= n {
		exptime = capExptime(exptime, failoverTTL(s.p), s.now)
	}
	r.out = protocol.AppendRetrieval(r.out, req.Op, exptime, req.Keys)
	s.enqueue(r)
	s.sendTo(b, r)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sendSplit sends a retrieval as one sub-request per owner (more, where
// a gat line would pass loc.lineLimit) under a parent that keeps the
// client's keys in order, for the merge of their replies (render.go).
//
// warm, when not nil, is where each key's old copy is on a route with a
// warm-up pool (warm.go): the keys that miss are asked there.
//
// copyKey, when not nil, marks the keys whose warm slot is their next copy
// on a replicated pool (replica_read.go): a failure is asked there too.
func (s *session) sendSplit(t *routeTable, req *protocol.Request, loc keysLocated, warm []int, copyKey []bool) {
	keys, owners, head := req.Keys, s.owners, s.lineHead
	n := len(t.slots)
	var capHead []byte
	if loc.standIns {
		capHead = gatHead(nil, req, failoverTTL(s.p), s.now)
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
	if loc.standIns {
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
		if j < 0 || loc.lineLimit > 0 && len(parent.subs[j].out)+1+len(k) > loc.lineLimit {
			j = len(parent.subs)
			subOf[b] = j
			sub := newRequest(s, req.Op)
			sub.parent = parent
			sub.backend = t.slots[b%n]
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
	if warm != nil {
		parent.warm = &warmRetrieval{t: t, slots: warm, copy: copyKey, exptime: -1}
		if req.Op == protocol.OpGat || req.Op == protocol.OpGats {
			parent.warm.exptime = req.Exptime
		}
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
