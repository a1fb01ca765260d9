package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/mcproxy/mcproxy/health"
	"go.uber.org/zap"
)

// EjectionCap is health.max_ejected: how many failed backends may be out
// of the ring at once. Past it, further failed backends stay in the ring
// and their keys fail fast, as with auto_eject off, rather than pile onto
// the survivors (a miss storm on the database and an overloaded last
// server). The zero value is the default, half the pool.
type EjectionCap struct {
	n       int  // backends, or percent of the pool when percent
	percent bool // n is a share of the pool
	set     bool // false: the default
}

// DefaultMaxEjectedPercent is the default cap: floor(half) of the pool, so
// 3 backends may lose 1 to ejection and 1 backend none.
const DefaultMaxEjectedPercent = 50

// MaxEjectedBackends caps ejections at n backends (n >= 0; 0 never ejects).
func MaxEjectedBackends(n int) EjectionCap { return EjectionCap{n: max(n, 0), set: true} }

// MaxEjectedPercent caps ejections at floor(pool*pct/100) backends, pct in
// 0..100.
func MaxEjectedPercent(pct int) EjectionCap {
	return EjectionCap{n: min(max(pct, 0), 100), percent: true, set: true}
}

// Limit is the number of backends of a pool of the given size that may be
// ejected.
func (c EjectionCap) Limit(pool int) int {
	if !c.set {
		c = MaxEjectedPercent(DefaultMaxEjectedPercent)
	}
	if c.percent {
		return pool * c.n / 100
	}
	return min(c.n, pool)
}

// String is the cap as the config file writes it: "1" or "50%".
func (c EjectionCap) String() string {
	if !c.set {
		c = MaxEjectedPercent(DefaultMaxEjectedPercent)
	}
	if c.percent {
		return strconv.Itoa(c.n) + "%"
	}
	return strconv.Itoa(c.n)
}

// outOfRingLocked decides, from the health states, which backends leave
// each pool's placement, and marks the failed ones the cap keeps in it.
// The cap applies to each pool on its own: a pool of 3 may lose 1, a pool
// of 2 none, whatever the other pools hold. A backend is capped (fails
// fast) when some pool holds it down in its placement. Caller holds p.mu.
//
// A backend that is joining (added by a reload, or a name moved to a new
// server) stays out until it proves itself and does not count against the
// cap: it has not failed, and its keys simply stay where they were. Failed
// backends are ejected in the order they failed, up to the cap; the rest
// are capped: in the placement, failing fast. The checker's state, not
// the order of its events, decides, so a rebuild from any event gives the
// same answer for the same states; when an ejected backend recovers, the
// next rebuild ejects the earliest-failed capped one in its place.
func (p *Proxy) outOfRingLocked() (out, capped map[*pool]map[*backend]bool) {
	out = map[*pool]map[*backend]bool{}
	capped = map[*pool]map[*backend]bool{}
	anyCapped := map[*backend]bool{}
	if p.opts.AutoEject {
		status := make(map[string]health.Status, len(p.backends))
		for _, st := range p.health.Snapshot() {
			status[st.Name] = st
		}
		for _, pl := range p.pools {
			out[pl], capped[pl] = p.ejectFromPoolLocked(pl, status)
			for b := range capped[pl] {
				anyCapped[b] = true
			}
		}
	}
	for _, b := range p.backends {
		now := anyCapped[b]
		if b.capped.Swap(now) == now {
			continue
		}
		if now {
			b.cappedEjections.Add(1)
			continue // logged by ejectFromPoolLocked, with the whole picture
		}
		p.log.Info("backend no longer held in the ring by the ejection cap", zap.String("backend", b.name),
			zap.String("addr", b.addr), zap.String("reason", "it is up again, an ejected backend recovered or the cap was raised"))
	}
	return out, capped
}

// ejectFromPoolLocked applies the ejection cap to one pool: the joining
// and the ejected backends leave its placement (out), failed backends past
// the cap stay in it (capped).
func (p *Proxy) ejectFromPoolLocked(pl *pool, status map[string]health.Status) (out, capped map[*backend]bool) {
	out, capped = map[*backend]bool{}, map[*backend]bool{}
	var failed []*backend
	for _, b := range pl.backends {
		st, ok := status[b.name]
		switch {
		case !ok || st.State == health.Up:
		case st.Joining:
			out[b] = true
		default:
			failed = append(failed, b)
		}
	}
	// Earliest failure first; config order breaks ties.
	sort.SliceStable(failed, func(i, j int) bool {
		return status[failed[i].name].LastChange.Before(status[failed[j].name].LastChange)
	})
	limit := p.maxEjected.Limit(len(pl.backends))
	for i, b := range failed {
		if i < limit {
			out[b] = true
		} else {
			capped[b] = true
		}
	}
	if len(capped) > 0 {
		p.logCapLocked(pl, limit, failed, capped)
	}
	return out, capped
}

// logCapLocked warns once for each backend that the cap has just kept in
// a pool's placement.
func (p *Proxy) logCapLocked(pl *pool, limit int, failed []*backend, capped map[*backend]bool) {
	for _, b := range failed {
		if !capped[b] || b.capped.Load() {
			continue
		}
		p.log.Warn("backend down but not ejected: ejection cap reached; its keys fail fast",
			zap.String("pool", pl.name), zap.String("backend", b.name), zap.String("addr", b.addr),
			zap.String("max_ejected", p.maxEjected.String()), zap.Int("ejected", limit),
			zap.Int("down", len(failed)), zap.Int("backends", len(pl.backends)))
	}
}

// flushBeforeReadd empties a backend that is about to rejoin the ring.
// While it was out, its keys were set and deleted on the other backends;
// its own copies are stale, and serving them again would undo writes the
// clients saw succeed. Losing them costs only misses. It runs on the
// health checker's goroutine, on a connection of its own, bounded by the
// connect and backend timeouts.
func (p *Proxy) flushBeforeReadd(addr string) error {
	conn, err := p.dialBackendTimeout(addr, p.opts.ConnectTimeout) // TLS when backends speak it
	if err != nil {
		return fmt.Errorf("flush before re-adding: dial %s: %w", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(p.opts.Timeout))
	if _, err := conn.Write([]byte("flush_all\r\n")); err != nil {
		return fmt.Errorf("flush before re-adding %s: %w", addr, err)
	}
	line, err := bufio.NewReaderSize(conn, 64).ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("flush before re-adding %s: %w", addr, err)
	}
	if !bytes.Equal(line, okLine) {
		return fmt.Errorf("flush before re-adding %s: reply %.64q", addr, line)
	}
	p.log.Info("backend flushed before rejoining the ring", zap.String("backend", addr))
	return nil
}
