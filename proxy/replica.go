package proxy

import (
	"fmt"
	"sync/atomic"

	"github.com/mcproxy/mcproxy/ring"
)

// A replicated pool (Pool.Replicas > 1) keeps each key on several of its
// backends, its copies, taken in order from the pool's placement
// (ring.Placement.AppendLocations: the home first, then the next distinct
// backends); when backends carry a zone, the copies go to distinct zones
// first. The rules, and why no client reads a value older than a change it
// was told was made (docs/replicas.md):
//
//   - Reads (replica_read.go) go to one copy, the one in the proxy's zone
//     first; an error, a timeout or a miss there asks the next copy.
//   - Writes (replica_write.go) go to every copy; the client is told a
//     change was made only when every copy made it. A command whose effect
//     depends on what the copy holds (add, cas, incr, decr, append,
//     prepend and their meta forms) goes to the first copy alone, which
//     decides; once it has changed the key, the other copies are deleted.
//   - Failover (failover.go) treats the copy set as it treats one home:
//     a backend outside the key's copies on the full placement is a
//     stand-in, and after a ring change every copy of the key on the
//     window's rings that is not a copy now is deleted by a change.

// Replica count default and range; internal/config takes them from here.
const (
	DefaultReplicas = 1
	MinReplicas     = 1
	// MaxReplicas bounds the copies of a key: each costs a backend write
	// per change and the memory of one more copy.
	MaxReplicas = 4
)

// copyCounters count one pool's or one backend's copy traffic, for stats
// pools, stats backends and the metrics. Written by any event loop.
type copyCounters struct {
	// laterReads: reads a later copy served after the first failed or
	// missed.
	laterReads atomic.Uint64
	// copyWrites: changes sent to a copy besides the first (their writes
	// and the deletes that follow a deciding copy).
	copyWrites atomic.Uint64
	// copyWriteErrors: those that failed; the client got an error.
	copyWriteErrors atomic.Uint64
}

// copyStatsLocked returns the copy counters of the backend named name,
// made on first use and kept across reloads. Caller holds p.mu.
func (p *Proxy) copyStatsLocked(name string) *copyCounters {
	if p.copyStats == nil {
		p.copyStats = map[string]*copyCounters{}
	}
	c := p.copyStats[name]
	if c == nil {
		c = &copyCounters{}
		p.copyStats[name] = c
	}
	return c
}

// checkReplicas checks a pool's replica count. A count above the pool's
// backends is not an error: each then holds a copy, as after ejections.
func checkReplicas(pl Pool) error {
	n := pl.Replicas
	if n == 0 {
		return nil
	}
	if n < MinReplicas || n > MaxReplicas {
		return fmt.Errorf("pool %s: replicas %d out of range [%d, %d]", pl.Name, n, MinReplicas, MaxReplicas)
	}
	return nil
}

// checkZones checks that a server listed in several pools has one zone.
// zoneOf maps names to the zone seen first.
func checkZones(pl Pool, zoneOf map[string]string) error {
	for _, b := range pl.Backends {
		if z, ok := zoneOf[b.name()]; ok && z != b.Zone {
			return fmt.Errorf("pool %s: backend %s is in zone %q in another pool; a server has one zone", pl.Name, b.name(), z)
		}
		zoneOf[b.name()] = b.Zone
	}
	return nil
}

// copySource is a placement with what choosing copies on it takes: the
// members its indexes name and their zones. A pool's table, its home
// placement and the placements of the failover window are each one.
// Built under Proxy.mu with its table and immutable once the table is
// published: every event loop reads it without locks.
type copySource struct {
	place    ring.Placement
	members  []*backend
	zones    []string // zones[i] is members[i]'s; nil or all "" for none
	replicas int
	zoned    bool // some member has a zone
}

// maxCandidates is the size of a session's scratch for pickCopies; a
// zoned pool larger than this allocates while choosing.
const maxCandidates = 16

// pickCopies appends to dst the member indexes of key's copies on src:
// up to src.replicas distinct members in placement order, members in
// zones not yet chosen first when src is zoned. With skipCapped, members
// the ejection cap holds down are passed over (they are flushed before
// they serve again); capped is how many there are, so that enough
// candidates are asked for. It appends nothing when no member is left.
// scratch, when not nil, is where the placement's candidates are put: a
// buffer the caller's loop owns (session.copyScratch), so that the steady
// path allocates nothing; the placement is an interface, and a buffer
// handed to it does not stay on the stack.
func pickCopies(dst []int, src *copySource, key []byte, skipCapped bool, capped int, scratch []int) []int {
	want := src.replicas
	if skipCapped {
		want += capped
	}
	if src.zoned {
		want = len(src.members)
	}
	cand := src.place.AppendLocations(scratch[:0], key, want)
	if skipCapped && capped > 0 {
		live := cand[:0]
		for _, i := range cand {
			if !src.members[i].capped.Load() {
				live = append(live, i)
			}
		}
		cand = live
	}
	n := min(src.replicas, len(cand))
	if !src.zoned {
		return append(dst, cand[:n]...)
	}
	start := len(dst)
	for pass := 0; pass < 2; pass++ {
		for _, i := range cand {
			if len(dst)-start == n {
				return dst
			}
			if containsInt(dst[start:], i) || pass == 0 && zoneTaken(dst[start:], src, i) {
				continue
			}
			dst = append(dst, i)
		}
	}
	return dst
}

// zoneTaken reports whether a member of chosen is in i's zone. A member
// with no zone shares it with nobody.
func zoneTaken(chosen []int, src *copySource, i int) bool {
	z := src.zones[i]
	if z == "" {
		return false
	}
	for _, c := range chosen {
		if src.zones[c] == z {
			return true
		}
	}
	return false
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// anyZone reports whether some zone is set.
func anyZone(zones []string) bool {
	for _, z := range zones {
		if z != "" {
			return true
		}
	}
	return false
}

// appendCopyBackends appends key's copies on src as backends.
func appendCopyBackends(dst []*backend, src *copySource, key []byte) []*backend {
	var buf [MaxReplicas]int
	for _, i := range pickCopies(buf[:0], src, key, false, 0, nil) {
		dst = append(dst, src.members[i])
	}
	return dst
}

// copyIndexes appends to dst the member indexes of key's live copies in
// t, in placement order: the first decides the commands copies could
// disagree on. Empty when every copy is held down by the ejection cap.
// scratch is pickCopies'.
func (t *poolTable) copyIndexes(dst []int, key []byte, scratch []int) []int {
	return pickCopies(dst, &t.src, key, true, t.capped, scratch)
}

// readOrder moves the copy in the proxy's zone, if any, to the front of
// idx, keeping the others in order: reads go there first.
func (t *poolTable) readOrder(idx []int) []int {
	if t.zone == "" {
		return idx
	}
	for j, i := range idx {
		if t.zones[i] == t.zone {
			copy(idx[1:j+1], idx[:j])
			idx[0] = i
			break
		}
	}
	return idx
}

// replicated reports whether t keeps more than one copy of a key.
func (t *poolTable) replicated() bool { return t.pool.replicas > 1 && len(t.members) > 1 }

// locations appends where key is in t now: its backend, or in a
// replicated pool its live copies (its backend when none is live).
func (t *poolTable) locations(dst []*backend, key []byte) []*backend {
	if !t.replicated() {
		return append(dst, t.locate(key))
	}
	var buf [MaxReplicas]int
	idx := t.copyIndexes(buf[:0], key, nil)
	if len(idx) == 0 {
		return append(dst, t.locate(key))
	}
	for _, i := range idx {
		dst = append(dst, t.members[i])
	}
	return dst
}
