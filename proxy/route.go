package proxy

import (
	"fmt"

	"github.com/mcproxy/mcproxy/health"
	"github.com/mcproxy/mcproxy/protocol"
	"github.com/mcproxy/mcproxy/ring"
	"go.uber.org/zap"
)

// routeTable is an immutable snapshot of where keys go.
type routeTable struct {
	ring    *ring.Ring // nil when no backend is live
	members []*backend // members[i] is the backend of ring member i
	all     []*backend // every configured backend, live or not
	ringCfg ring.Config
	fo      failoverRoutes // home ring and recent rings (failover.go)
}

// ringMembers places backends on the ring by name, so that an address
// may change under a name without moving its keys. Unnamed backends are
// named by their address, which keeps the placement of configs from
// before names existed.
func ringMembers(bs []Backend) []ring.Member {
	m := make([]ring.Member, len(bs))
	for i, b := range bs {
		m[i] = ring.Member{Name: b.name(), Weight: max(b.Weight, 1)}
	}
	return m
}

// onHealthEvent runs on the checker's goroutine: rebuilding the ring here
// keeps the work off the request path.
func (p *Proxy) onHealthEvent(ev health.Event) {
	if ev.State == health.Up {
		// Before the backend rejoins the ring, end any reconnect backoff of
		// its connections, so its first requests wait for a dial instead of
		// failing fast.
		p.mu.Lock()
		for _, b := range p.backends {
			if b.name == ev.Name {
				b.retryNow()
			}
		}
		p.mu.Unlock()
	}
	if !p.opts.AutoEject {
		return // the ring keeps the backend; sendTo fails its keys fast
	}
	if err := p.rebuild(); err != nil {
		p.log.Error("rebuild ring after health change", zap.String("backend", ev.Name), zap.Error(err))
	}
}

// rebuild computes a new route table from the configured backends and
// their health and swaps it in.
func (p *Proxy) rebuild() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rebuildLocked()
}

func (p *Proxy) rebuildLocked() error {
	t := &routeTable{all: append([]*backend(nil), p.backends...), ringCfg: p.ringCfg}
	var members []ring.Member
	out := p.outOfRingLocked()
	for _, b := range p.backends {
		if out[b] {
			continue
		}
		t.members = append(t.members, b)
		members = append(members, ring.Member{Name: b.name, Weight: int(b.weight.Load())})
	}
	if len(members) > 0 {
		r, err := ring.New(members, p.ringCfg)
		if err != nil {
			return fmt.Errorf("build ring of %d backends: %w", len(members), err)
		}
		t.ring = r
	}
	p.attachFailover(t, p.table.Load())
	old := p.table.Swap(t)
	if old != nil && len(old.members) != len(t.members) {
		p.log.Info("ring rebuilt", zap.Int("ring_members", len(t.members)), zap.Int("live_backends", t.liveBackends()),
			zap.Int("backends", len(t.all)))
	}
	return nil
}

// liveBackends counts the ring members that serve: a member the ejection
// cap holds in the ring is down and fails fast. The proxy is ready
// (/readyz) while this is above 0.
func (t *routeTable) liveBackends() int {
	n := 0
	for _, b := range t.members {
		if !b.capped.Load() {
			n++
		}
	}
	return n
}

// enqueueAndLocate queues r for the client and returns the current route
// table, the backend of req's key in it, and the key. When no backend is
// live it fails r instead and returns a nil table.
func (s *session) enqueueAndLocate(r *request, req *protocol.Request) (*routeTable, *backend, []byte) {
	s.enqueue(r)
	t := s.p.table.Load()
	if t.ring == nil {
		r.fail(errNoBackends)
		return nil, nil, nil
	}
	key := req.Key()
	return t, t.members[t.ring.Locate(key)], key
}

// routeByKey queues r, encoded from req, for the client and sends it to
// the key's backend. While a backend is out of the ring or the ring changed
// recently, routeFailover adds what keeps reads fresh (failover.go).
func (s *session) routeByKey(r *request, req *protocol.Request) {
	t, b, key := s.enqueueAndLocate(r, req)
	if t == nil {
		return
	}
	if req.Op == protocol.OpSet || req.Op == protocol.OpAdd {
		r.routed = t // for repairAfterSwap
	}
	if t.fo.active(s.now) {
		s.routeFailover(t, b, r, req, key)
		return
	}
	s.sendTo(b, r)
}

// sendTo sends r to b unless b is known to be down. With auto_eject off a
// down backend stays in the ring, and its keys fail fast here instead of
// moving to another backend.
func (s *session) sendTo(b *backend, r *request) {
	if !s.p.opts.AutoEject && !s.p.health.IsUp(b.name) {
		r.backend = b
		b.countFailed(errBackendDown, 1)
		r.fail(errBackendDown)
		return
	}
	b.send(s, r)
}

// sendToEveryBackend queues parent for the client and sends cmd to every
// live backend, one sub-request each (flush_all, stats and its backend
// groups). parent finishes when the last sub-request does, or at once when
// no backend is live, with noLive as its error if that is not nil.
func (s *session) sendToEveryBackend(parent *request, cmd []byte, noLive error) {
	t := s.p.table.Load()
	for _, b := range t.members {
		sub := newRequest(s, parent.op)
		sub.parent = parent
		sub.backend = b
		sub.out = append(sub.out, cmd...)
		parent.subs = append(parent.subs, sub)
	}
	s.enqueue(parent)
	if len(parent.subs) == 0 {
		parent.err = noLive
		parent.finish()
		return
	}
	parent.pending.Store(int32(len(parent.subs)))
	for _, sub := range parent.subs {
		s.sendTo(sub.backend, sub)
	}
}
