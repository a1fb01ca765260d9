package proxy

import (
	"bytes"
	"slices"
	"time"

	"github.com/mcproxy/mcproxy/protocol"
	"github.com/mcproxy/mcproxy/ring"
	"go.uber.org/zap"
)

// Failover TTL default and range; internal/config takes them from here.
const (
	// DefaultFailoverTTL is mcrouter's failover_exptime.
	DefaultFailoverTTL = 60 * time.Second
	MinFailoverTTL     = time.Second
	MaxFailoverTTL     = 24 * time.Hour
)

// failoverClockMargin covers memcached's clock, which advances once a
// second, so an item can outlive its exptime by up to a second, plus one
// second of slack for a loaded host.
const failoverClockMargin = 2 * time.Second

// maxRelativeExptime is memcached's REALTIME_MAXDELTA: a larger exptime is
// an absolute unix time.
const maxRelativeExptime = 60 * 60 * 24 * 30

// pastRing is a pool's placement that was in force until retired.
type pastRing struct {
	src     copySource // its placement, members, zones and replicas
	retired time.Time
}

// homeRing is the placement of every configured backend of a pool, as
// built for the weights and options it records (a reload may change
// them).
type homeRing struct {
	src     copySource // place over members (every configured backend)
	weights []int
	opts    ring.PlacementOptions
}

func (h *homeRing) matches(pl *pool) bool {
	return h != nil && h.opts == pl.opts && slices.Equal(h.src.members, pl.backends) && slices.Equal(h.weights, pl.weights) &&
		h.src.replicas == pl.replicas && slices.Equal(h.src.zones, pl.zones)
}

// failoverRoutes is the failover part of a route table: what keeps reads
// from going stale while a backend is out of the ring (its keys on
// stand-ins) and for a window after any ring change. A write to a stand-in
// has its expiry capped at failover.ttl (capExptime, routeFailover); in
// the window, a change of a key also deletes it where the window's rings
// put it (invalidationTargets); repairAfterSwap closes the race around a
// table swap. Why that is enough, what it does not cover and what it
// costs: docs/failover.md, "Failover and stale reads". With every backend
// in the ring and no change in the window, a command pays one time
// comparison (active).
//
// It is built by attachFailover under Proxy.mu before the table is
// published and is immutable afterwards, so sessions read it without
// locks.
type failoverRoutes struct {
	// home is kept from table to table while the backend list stands; it
	// is consulted only when standIns is set.
	home *homeRing
	// standIns: some configured backend is not in the ring, so some keys
	// are away from home.
	standIns bool
	// history holds the rings in force during the last window, newest
	// first; windowEnd is when the newest of them leaves the window.
	history   []pastRing
	windowEnd time.Time
	window    time.Duration
	// live is the set of ring members, for picking invalidation targets.
	live map[*backend]bool
	// ttl is failover.ttl in whole seconds, as exptimes are written.
	ttl int32
	// moved holds the route tables of the last window whose routes sent
	// some keys to other pools (a reload changed the routes), newest
	// first; pools is the current table's pools by name, where those keys'
	// old copies are deleted when they change (route_moves.go).
	moved []pastRoutes
	pools map[string]*poolTable
}

// active reports whether a command read at now needs the failover path.
// It is the only cost the steady path pays.
func (fo *failoverRoutes) active(now time.Time) bool {
	return fo.standIns || now.Before(fo.windowEnd)
}

// attachFailover fills t.fo, keeping the home placement and the recent
// history of old, the pool's table t replaces (nil at start or for a new
// pool). It runs under p.mu.
func (p *Proxy) attachFailover(t, old *poolTable) {
	now := time.Now()
	fo := &t.fo
	fo.ttl = failoverTTL(p)
	fo.window = time.Duration(fo.ttl)*time.Second + p.opts.Timeout + failoverClockMargin
	fo.live = make(map[*backend]bool, len(t.members))
	for _, b := range t.members {
		fo.live[b] = true
	}
	if old != nil && old.fo.home.matches(t.pool) {
		fo.home = old.fo.home
	}
	fo.standIns = t.place != nil && len(t.members) < len(t.all)
	if fo.standIns && fo.home == nil {
		h, err := buildHomeRing(t.pool)
		if err != nil {
			// The pool's placement was checked over all its backends when
			// it was configured, so this cannot happen; without a home
			// nothing is capped.
			p.log.Error("build the placement of all backends for failover", zap.String("pool", t.pool.name), zap.Error(err))
			fo.standIns = false
		}
		fo.home = h
	}
	if old == nil {
		return
	}
	if samePlacement(old, t) {
		fo.history, fo.windowEnd = old.fo.history, old.fo.windowEnd
		return
	}
	if old.place != nil {
		fo.history = append(fo.history, pastRing{src: old.src, retired: now})
	}
	for _, h := range old.fo.history {
		if now.Before(h.retired.Add(fo.window)) {
			fo.history = append(fo.history, h)
		}
	}
	fo.windowEnd = now.Add(fo.window)
}

func buildHomeRing(pl *pool) (*homeRing, error) {
	h := &homeRing{weights: pl.weights, opts: pl.opts,
		src: copySource{members: pl.backends, zones: pl.zones, replicas: pl.replicas, zoned: anyZone(pl.zones)}}
	servers := make([]ring.Server, len(pl.backends))
	for i, b := range pl.backends {
		servers[i] = placementServer(b, pl.weights[i])
	}
	pc, err := ring.NewPlacement(servers, pl.opts)
	if err != nil {
		return nil, err
	}
	h.src.place = pc
	return h, nil
}

// standIn reports whether b, a location of key in t, is not its home (in
// a replicated pool: none of its home copies).
func (t *poolTable) standIn(key []byte, b *backend) bool {
	if !t.fo.standIns {
		return false
	}
	var buf [MaxReplicas]*backend
	return !slices.Contains(appendLocations(buf[:0], &t.fo.home.src, key), b)
}

// appendLocations appends where src puts key: its home, or in a
// replicated pool its copies.
func appendLocations(dst []*backend, src *copySource, key []byte) []*backend {
	if src.replicas <= 1 {
		return append(dst, src.members[src.place.Locate(key)])
	}
	return appendCopyBackends(dst, src, key)
}

// invalidationTargets appends to dst the backends that must lose key when
// it changes at cur (its location, or in a replicated pool its copies): its
// home (copies), when cur stands in for a home in the ring, and its
// locations in the rings of the window, each once, if in the ring now and
// not in cur.
func (t *poolTable) invalidationTargets(dst []*backend, key []byte, cur []*backend, now time.Time) []*backend {
	var buf [MaxReplicas]*backend
	if t.fo.standIns {
		for _, b := range appendLocations(buf[:0], &t.fo.home.src, key) {
			dst = t.addTarget(dst, b, cur)
		}
	}
	for i := range t.fo.history {
		h := &t.fo.history[i]
		if !now.Before(h.retired.Add(t.fo.window)) {
			break // newest first: the rest are older still
		}
		for _, b := range appendLocations(buf[:0], &h.src, key) {
			dst = t.addTarget(dst, b, cur)
		}
	}
	return t.movedTargets(dst, key, cur, now)
}

func (t *poolTable) addTarget(dst []*backend, b *backend, cur []*backend) []*backend {
	if slices.Contains(cur, b) || !t.fo.live[b] {
		return dst
	}
	for _, x := range dst {
		if x == b {
			return dst
		}
	}
	return append(dst, b)
}

// failoverTTL is failover.ttl in whole seconds, as exptimes are written.
func failoverTTL(p *Proxy) int32 { return int32(p.opts.FailoverTTL / time.Second) }

// capExptime returns the exptime a command to a stand-in carries: at most
// ttl seconds from now. 0 (never), a relative time past ttl and an
// absolute unix time past now+ttl become ttl; a negative exptime (expire at
// once) and an absolute time already past stay as they are.
func capExptime(e, ttl int32, now time.Time) int32 {
	switch {
	case e < 0:
		return e
	case e == 0:
		return ttl
	case e <= maxRelativeExptime:
		return min(e, ttl)
	case int64(e) > now.Unix()+int64(ttl):
		return ttl
	}
	return e
}

// carriesExptime reports whether op sets an item's expiry.
func carriesExptime(op protocol.Op) bool {
	switch op {
	case protocol.OpSet, protocol.OpAdd, protocol.OpReplace, protocol.OpCas, protocol.OpTouch:
		return true
	}
	return false
}

// routeFailover sends r, a command on key whose location in t is b, when
// t.fo is active: it caps the exptime of a write to a stand-in and sends
// the invalidating deletes beside r, which then completes when they all
// have. req is the parsed command r.out was encoded from; nil for an
// internal delete.
func (s *session) routeFailover(t *poolTable, b *backend, r *request, req *protocol.Request, key []byte) {
	if req != nil && req.Meta != nil {
		if err := s.capMeta(t, b, r, req, key); err != nil {
			r.fail(err)
			return
		}
	} else if req != nil && carriesExptime(req.Op) && t.standIn(key, b) {
		s.p.stats.failoverCappedWrites.Add(1)
		t.pool.counters.failoverCappedWrites.Add(1)
		if e := capExptime(req.Exptime, t.fo.ttl, s.now); e != req.Exptime {
			rewriteExptime(r, req, e)
		}
	}
	var buf [8]*backend
	cur := [1]*backend{b}
	targets := t.invalidationTargets(buf[:0], key, cur[:], s.now)
	if len(targets) == 0 {
		s.sendTo(b, r)
		return
	}
	// r is the client's request and also the parent of the deletes: it is
	// finished by the last of them and itself (request.complete). The
	// client sees r's own reply; a delete that fails is counted, not
	// shown.
	r.pending.Store(int32(1 + len(targets)))
	for _, tb := range targets {
		d := newDeleteOf(s, key) // a meta client's key may be binary
		d.parent = r
		d.invalidation = true
		d.backend = tb
		r.subs = append(r.subs, d)
	}
	s.p.stats.failoverInvalidations.Add(uint64(len(targets)))
	t.pool.counters.failoverInvalidations.Add(uint64(len(targets)))
	s.sendTo(b, r)
	for _, d := range r.subs {
		s.sendTo(d.backend, d)
	}
}

// rewriteExptime re-encodes the command line at the head of r.out with
// exptime e, moving the data block of a storage command behind it.
func rewriteExptime(r *request, req *protocol.Request, e int32) {
	rq := *req
	rq.Exptime = e
	var scratch [512]byte
	var line []byte
	if rq.Op.IsStorage() {
		line = protocol.AppendStorageLine(scratch[:0], &rq)
	} else {
		line = protocol.AppendKeyCommand(scratch[:0], &rq)
	}
	replaceLine(r, line)
}

// repairAfterSwap closes the race around a table swap. A set or add (or a
// meta command that can create an item, failover_meta.go) routed
// with one table can reach its backend after the table was replaced and
// after a command routed with the new table deleted the key there (the
// invalidation after a ring change): it would plant a copy where the new ring does not look, which a
// later ring could serve although newer writes were acknowledged. Only set
// and add can do that: every other command needs the item to exist, and a
// delete leaves nothing. So when such a command is answered STORED and the
// table changed since it was routed, it is treated as a write made under
// the current table: the key is deleted on the backend it went to, unless
// that is the key's location now, and on the current table's invalidation
// targets, before the client gets its reply. It runs on the goroutine
// that completes r, before r counts itself done.
func (r *request) repairAfterSwap() {
	s := r.sess
	if s == nil || r.err != nil || !r.plantedCopy() {
		return
	}
	key := r.routedKey()
	cur := s.p.table.Load().poolOf(key)
	if cur == r.routed || cur.place == nil {
		return
	}
	var buf [8]*backend
	var locBuf [MaxReplicas]*backend
	loc := cur.locations(locBuf[:0], key)
	targets := cur.invalidationTargets(buf[:0], key, loc, time.Now())
	targets = cur.addTarget(targets, r.backend, loc)
	if len(targets) == 0 {
		return
	}
	// r's own share of pending is still counted, so pending cannot reach
	// 0 under us; 0 means r has no deletes in flight at all. A copy's
	// write (replica_write.go) hangs its deletes on the client's request.
	top := r
	if r.parent != nil {
		top = r.parent
	}
	if top.pending.Load() == 0 {
		top.pending.Store(int32(1 + len(targets)))
	} else {
		top.pending.Add(int32(len(targets)))
	}
	s.p.stats.failoverInvalidations.Add(uint64(len(targets)))
	cur.pool.counters.failoverInvalidations.Add(uint64(len(targets)))
	s.p.stats.failoverLateWrites.Add(1)
	for _, b := range targets {
		// Not in r.subs, which the dispatching goroutine may still be
		// reading; nobody releases it to the pool, the collector frees it.
		d := newDeleteOf(nil, key)
		d.parent = top
		d.invalidation = true
		b.sendLate(s, d)
	}
}

var storedLine = []byte("STORED\r\n")

// lineKey returns the key of a command line: its second word.
func lineKey(line []byte) []byte {
	_, rest, _ := bytes.Cut(line, []byte(" "))
	end := bytes.IndexAny(rest, " \r")
	if end < 0 {
		return rest
	}
	return rest[:end]
}

// sendLate is backend.send for a request made while another completes,
// after the session's command was dispatched: the deadline counts from the
// loop's clock.
func (b *backend) sendLate(s *session, r *request) {
	r.backend = b
	r.deadline = requestDeadline(s.l.now, b.p.opts.Timeout)
	b.connOf(s).send(r)
}

// countInvalidation counts the outcome of an invalidating delete; DELETED
// and NOT_FOUND both mean the copy is gone.
func (r *request) countInvalidation() {
	if r.err != nil || r.reply.IsError {
		r.backend.p.stats.failoverInvalidationErrors.Add(1)
	}
}

// gatStandIns marks the keys of a gat or gats that go to a stand-in, by
// adding n (the number of ring members) to their owner, so that they get a
// sub-request of their own whose exptime is capped. It returns the owners
// and whether they are all the same.
func (s *session) gatStandIns(t *routeTable, keys [][]byte, owners []int) ([]int, bool) {
	n := len(t.slots)
	single := true
	for i, k := range keys {
		if pt := t.poolOf(k); pt.standIn(k, t.slots[owners[i]]) {
			owners[i] += n
			s.p.stats.failoverCappedWrites.Add(1)
			pt.pool.counters.failoverCappedWrites.Add(1)
		}
		single = single && owners[i] == owners[0]
	}
	return owners, single
}

// gatHead appends "gat <exptime>" or "gats <exptime>" with the exptime a
// stand-in gets.
func gatHead(dst []byte, req *protocol.Request, ttl int32, now time.Time) []byte {
	dst = append(dst, req.Op.String()...)
	dst = append(dst, ' ')
	return protocol.AppendInt32(dst, capExptime(req.Exptime, ttl, now))
}
