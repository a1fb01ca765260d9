package proxy

import (
	"slices"
	"time"
)

// A reload that changes the routes moves keys from one pool to another
// without copying or deleting them. If the keys moved back before long (an
// operator undoing a mistaken reload), the first pool would serve the
// copies it kept, older than the writes made meanwhile. So for one
// invalidation window after a route change (failoverRoutes.window, as after
// a ring change), a change of a key also deletes it in the pool the
// previous routes sent it to. docs/pools.md, "Reloads", says what remains
// uncovered: a move back after the window.

// pastRoutes is a route table that was in force until retired.
type pastRoutes struct {
	t       *routeTable
	retired time.Time
}

// sameRoutes reports whether a and b send every key to the pool of the
// same name.
func sameRoutes(a, b *routeTable) bool {
	return slices.EqualFunc(a.routes, b.routes, func(x, y tableRoute) bool {
		return x.prefix == y.prefix && x.pool.pool.name == y.pool.pool.name
	})
}

// attachMoves gives the pools of t, a new route table, the route tables
// of the last window that routed differently, kept from old (nil at
// start), and opens a window when t itself routes differently from old.
// Each pool's failover then covers the keys that left or joined it
// (movedTargets). It runs under p.mu, before t is published.
func attachMoves(t, old *routeTable, now time.Time) {
	if old == nil || len(t.pools) == 0 {
		return
	}
	window := t.pools[0].fo.window
	var moved []pastRoutes
	if !sameRoutes(old, t) {
		moved = append(moved, pastRoutes{t: old, retired: now})
	}
	if len(old.pools) > 0 {
		for _, m := range old.pools[0].fo.moved {
			if now.Before(m.retired.Add(window)) {
				moved = append(moved, m)
			}
		}
	}
	if len(moved) == 0 {
		return
	}
	byName := make(map[string]*poolTable, len(t.pools))
	for _, pt := range t.pools {
		byName[pt.pool.name] = pt
	}
	end := moved[0].retired.Add(window)
	for _, pt := range t.pools {
		pt.fo.moved, pt.fo.pools = moved, byName
		if pt.fo.windowEnd.Before(end) {
			pt.fo.windowEnd = end
		}
	}
}

// movedTargets appends to dst where the routes of the window put key, in
// another pool than t's (all its copies there), when live there and not
// already in dst.
func (t *poolTable) movedTargets(dst []*backend, key []byte, cur []*backend, now time.Time) []*backend {
	for _, m := range t.fo.moved {
		if !now.Before(m.retired.Add(t.fo.window)) {
			break // newest first: the rest are older still
		}
		name := m.t.poolOf(key).pool.name
		o := t.fo.pools[name]
		if name == t.pool.name || o == nil || o.place == nil {
			continue
		}
		var buf [MaxReplicas]*backend
		for _, b := range o.locations(buf[:0], key) {
			if !slices.Contains(cur, b) && !slices.Contains(dst, b) {
				dst = append(dst, b)
			}
		}
	}
	return dst
}
