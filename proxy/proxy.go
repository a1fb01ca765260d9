// Package proxy is mcproxy's data path: event loops that own the client
// sessions and the backend connections, routing and fan-out, and the
// proxy's own stats.
//
// A client command is parsed by its session on its event loop (loop.go),
// routed by key through an immutable ring snapshot to a backend, queued on
// the loop's own connection to that backend, written with the turn's other
// commands in one writev, and answered in the order the client sent its
// commands. Ring snapshots are rebuilt off the hot path, when the health
// checker ejects or re-adds a backend or the backend list changes, and
// swapped in atomically.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcproxy/mcproxy/health"
	"github.com/mcproxy/mcproxy/internal/defaults"
	"github.com/mcproxy/mcproxy/ring"
	"go.uber.org/zap"
)

// Backend is one memcached server to shard over.
type Backend struct {
	// Name is the backend's identity on the ring: its keys follow the
	// name, so Addr may change without moving them. Empty means Addr.
	Name   string
	Addr   string
	Weight int
}

// name returns the backend's identity: Name, or Addr when unnamed.
func (b Backend) name() string {
	if b.Name != "" {
		return b.Name
	}
	return b.Addr
}

// Options configure a Proxy. Zero values take the defaults noted, except
// the bools, whose zero value is off.
type Options struct {
	Backends []Backend
	Ring     ring.Config

	// EventLoops is the number of event loops, each serving its share of
	// the clients with its own backend connections; 0 is one per CPU the
	// process may use (runtime.GOMAXPROCS).
	EventLoops int
	// Connections is the number of connections from each event loop to
	// each backend (DefaultBackendConnections); a client's commands to a
	// backend all go on one of them, so they stay in order.
	Connections int
	// Timeout bounds how long a command waits for its backend
	// (DefaultBackendTimeout).
	Timeout time.Duration
	// ConnectTimeout bounds a dial to a backend (DefaultConnectTimeout).
	ConnectTimeout time.Duration

	// MaxConnections caps concurrent client connections
	// (DefaultMaxConnections).
	MaxConnections int
	// MaxItemSize is the largest value accepted, in bytes
	// (DefaultMaxItemSize).
	MaxItemSize int
	// ClientIdleTimeout closes a client idle this long; 0 never does.
	ClientIdleTimeout time.Duration
	// ClientOutputLimit is the reply memory held for one client past which
	// its commands are no longer read; twice as much disconnects it
	// (DefaultClientOutputLimit; see output_limit.go).
	ClientOutputLimit int
	// ReqsPerEvent and ReadBytesPerEvent are a client's budget for one turn
	// of its event loop: past either, it yields to the loop's other
	// clients until the next turn (turn_budget.go; DefaultReqsPerEvent,
	// DefaultReadBytesPerEvent).
	ReqsPerEvent      int
	ReadBytesPerEvent int

	// Health configures the checker (with Health.AlwaysUp it tracks the
	// backends but never probes or ejects one).
	Health health.Config
	// AutoEject takes down backends out of the ring so their keys move to
	// the others; when false their keys fail fast instead (config:
	// health.auto_eject, default DefaultAutoEject).
	AutoEject bool
	// FlushOnReadd, with AutoEject, empties an ejected backend with
	// flush_all before it rejoins the ring, so that it never serves values
	// that changed elsewhere while it was out (config: health.flush_on_readd,
	// default DefaultFlushOnReadd).
	FlushOnReadd bool
	// MaxEjected caps the failed backends out of the ring at once
	// (config: health.max_ejected; half the pool).
	MaxEjected EjectionCap

	// DisableFlushAll answers clients' flush_all with memcached -F's
	// refusal instead of flushing every backend (config: disable_flush_all).
	DisableFlushAll bool
	// FailoverTTL caps the expiry of writes to stand-in backends and sets
	// the invalidation window after a ring change (failover.go;
	// DefaultFailoverTTL). Whole seconds count.
	FailoverTTL time.Duration

	// ReservedFds are file descriptors the program embedding the
	// proxy keeps for itself (mcproxy's admin endpoint): the clients'
	// share of the descriptor limit leaves them free (descriptors.go).
	ReservedFds int

	// CommandLatency records the per-command latency histogram that
	// Collector exports. It costs a clock read and an Observe per command,
	// so it is on only when metrics are scraped.
	CommandLatency bool

	// Version is the proxy's version; "version" answers
	// "VERSION " + FullVersion(Version), and "stats" shows the same string.
	Version string
	Logger  *zap.Logger
}

func (o *Options) setDefaults() {
	defaults.Positive(&o.EventLoops, runtime.GOMAXPROCS(0))
	defaults.Positive(&o.Connections, DefaultBackendConnections)
	defaults.Positive(&o.Timeout, DefaultBackendTimeout)
	defaults.Positive(&o.ConnectTimeout, DefaultConnectTimeout)
	defaults.Positive(&o.MaxConnections, DefaultMaxConnections)
	defaults.Positive(&o.MaxItemSize, DefaultMaxItemSize)
	defaults.Positive(&o.ClientOutputLimit, DefaultClientOutputLimit)
	defaults.Positive(&o.ReqsPerEvent, DefaultReqsPerEvent)
	defaults.Positive(&o.ReadBytesPerEvent, DefaultReadBytesPerEvent)
	if o.Version == "" {
		o.Version = "dev"
	}
	defaults.Positive(&o.FailoverTTL, DefaultFailoverTTL)
	// A cap of 0 seconds would mean "never expires" to memcached.
	o.FailoverTTL = max(o.FailoverTTL, MinFailoverTTL)
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// ProtocolLevel is the memcached release whose text protocol mcproxy
// speaks. "version" leads with it because clients parse the reply as
// major.minor.patch (libmemcached calls anything else malformed) and some
// enable features by it.
const ProtocolLevel = "1.6.0"

// routeTable is an immutable snapshot of where keys go.
type routeTable struct {
	ring    *ring.Ring // nil when no backend is live
	members []*backend // members[i] is the backend of ring member i
	all     []*backend // every configured backend, live or not
	ringCfg ring.Config
	fo      failoverRoutes // home ring and recent rings (failover.go)
}

// Proxy is a running mcproxy data path: its event loops (loop.go), the
// backends they share, and the route table that says where keys go.
type Proxy struct {
	opts    Options
	log     *zap.Logger
	health  *health.Checker
	table   atomic.Pointer[routeTable]
	stats   counters
	latency *commandLatency // nil unless Options.CommandLatency
	started time.Time
	// versionLine is the reply to "version", without CRLF.
	versionLine string

	loops        []*eventLoop
	connsPerLoop int // connections from each loop to each backend
	loopWG       sync.WaitGroup
	// dialCtx ends with Shutdown, cutting short backend dials under way;
	// dials counts them, so that Shutdown returns after the last.
	dialCtx    context.Context
	cancelDial context.CancelFunc
	dials      sync.WaitGroup
	draining   atomic.Bool // Shutdown has begun: new sessions drain at once
	dumping    atomic.Bool // an lru_crawler metadump runs (metadump.go)

	fds  descriptorCounts // what the descriptor budget counts (descriptors.go)
	gate listenGate       // accepting on or off (accept.go)

	mu           sync.Mutex // guards everything below and ring rebuilds
	backends     []*backend // configured, in config order
	ringCfg      ring.Config
	maxEjected   EjectionCap
	retiring     sync.WaitGroup // backends removed by a reload, draining
	stopRetiring chan struct{}  // closed by Shutdown: close them at once
	generation   uint64         // config generation: 1 + successful reconfigurations
	lastReload   time.Time      // when the last reconfiguration was applied
	listeners    []*acceptor
	acceptors    sync.WaitGroup
	sessions     map[*session]struct{}
	closed       bool
	nextID       uint64
	sessWG       sync.WaitGroup
}

// New builds a proxy for the given backends, starts its event loops and
// starts connecting to the backends and health checking them. Call Serve to accept clients.
func New(opts Options) (*Proxy, error) {
	opts.setDefaults()
	if len(opts.Backends) == 0 {
		return nil, errors.New("proxy: no backends")
	}
	p := &Proxy{
		opts:     opts,
		log:      opts.Logger,
		started:  time.Now(),
		sessions: make(map[*session]struct{}),
	}
	p.versionLine = "VERSION " + FullVersion(opts.Version)
	p.gate.init(&p.stats, p.log)
	p.fds.readLimit()
	if opts.CommandLatency {
		p.latency = newCommandLatency()
	}
	if err := checkBackends(opts.Backends); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	// Validate the ring before starting anything that would need stopping.
	rc, err := opts.Ring.WithDefaults()
	if err != nil {
		return nil, fmt.Errorf("proxy: ring: %w", err)
	}
	if _, err := ring.New(ringMembers(opts.Backends), rc); err != nil {
		return nil, fmt.Errorf("proxy: build ring: %w", err)
	}
	p.ringCfg = rc
	p.maxEjected = opts.MaxEjected
	p.stopRetiring = make(chan struct{})
	p.generation = 1
	p.lastReload = p.started
	p.dialCtx, p.cancelDial = context.WithCancel(context.Background())
	p.connsPerLoop = opts.Connections
	for i := range opts.EventLoops {
		l, err := newEventLoop(p, i)
		if err != nil {
			p.stopLoops()
			return nil, fmt.Errorf("proxy: event loop: %w", err)
		}
		p.loops = append(p.loops, l)
		p.loopWG.Add(1)
		go func() {
			defer p.loopWG.Done()
			l.run()
		}()
	}
	// The checker exists before the backends, whose connections report
	// failures to it from their first dial; it tracks no backend until
	// SetBackends, so no event can arrive before the first ring is built.
	hc := opts.Health
	if opts.AutoEject && opts.FlushOnReadd {
		hc.BeforeUp = p.flushBeforeReadd
	}
	p.health = health.New(hc, p.onHealthEvent, p.log)
	for _, b := range opts.Backends {
		p.backends = append(p.backends, newBackend(p, b.name(), b.Addr, max(b.Weight, 1)))
	}
	p.mu.Lock()
	err = p.rebuildLocked()
	p.mu.Unlock()
	if err != nil {
		p.closeBackends()
		p.health.Close()
		p.stopLoops()
		return nil, err
	}
	p.health.SetBackends(healthTargets(p.backends))
	return p, nil
}

// stopLoops ends the event loops and waits for them and for backend dials
// still under way.
func (p *Proxy) stopLoops() {
	p.cancelDial()
	for _, l := range p.loops {
		l.stop()
	}
	p.loopWG.Wait()
	p.dials.Wait()
}

// checkBackends refuses a name or an address listed twice. (Two spellings
// of one server are the config loader's to refuse: it resolves them.)
func checkBackends(bs []Backend) error {
	names := make(map[string]bool, len(bs))
	addrs := make(map[string]bool, len(bs))
	for _, b := range bs {
		if names[b.name()] {
			return fmt.Errorf("backend name %s listed twice", b.name())
		}
		if addrs[b.Addr] {
			return fmt.Errorf("backend %s listed twice", b.Addr)
		}
		names[b.name()], addrs[b.Addr] = true, true
	}
	return nil
}

// ringMembers places backends on the ring by name, so that an address
// may change under a name without moving its keys. Unnamed backends are
// named by their address, which keeps the placement of configs from
// before names existed.
func ringMembers(bs []Backend) []ring.Member {
	m := make([]ring.Member, len(bs))
	for i, b := range bs {
		m[i] = ring.Member{Addr: b.name(), Weight: max(b.Weight, 1)}
	}
	return m
}

// healthTargets lists backends for the health checker: by name, probed at
// their address.
func healthTargets(bs []*backend) []health.Target {
	ts := make([]health.Target, len(bs))
	for i, b := range bs {
		ts[i] = health.Target{Name: b.name, Addr: b.addr}
	}
	return ts
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
		members = append(members, ring.Member{Addr: b.name, Weight: int(b.weight.Load())})
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

// Serve accepts clients on l until l is closed or Shutdown is called, and
// hands each to an event loop, round robin. It returns nil after Shutdown.
// l must be a socket listener (*net.TCPListener, *net.UnixListener): the
// proxy accepts on its socket itself, so that a client costs one
// descriptor (accept.go). Clients past the descriptor budget wait in the
// listen backlog until others leave (descriptors.go).
func (p *Proxy) Serve(l net.Listener) error {
	a, err := newAcceptor(p, l)
	if err != nil {
		return fmt.Errorf("proxy: serve: %w", err)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		a.close()
		return errors.New("proxy: serve after shutdown")
	}
	p.listeners = append(p.listeners, a)
	p.acceptors.Add(1)
	p.mu.Unlock()
	defer p.acceptors.Done()
	b := p.descriptorBudget()
	if b.clientCap() < 1 {
		a.close()
		return fmt.Errorf("proxy: serve on %s: %w", l.Addr(), b.tooLow())
	}
	p.log.Info("accepting clients", zap.String("listen", l.Addr().String()), zap.Int("descriptor_limit", b.limit),
		zap.Int("reserved_descriptors", b.reserved()), zap.Int("client_cap", b.clientCap()),
		zap.Int("max_connections", p.opts.MaxConnections))
	return a.run()
}

// sessionEnded forgets a session that has closed.
func (p *Proxy) sessionEnded(s *session) {
	p.stats.currConnections.Add(-1)
	p.gate.release()
	p.mu.Lock()
	delete(p.sessions, s)
	p.mu.Unlock()
	p.sessWG.Done()
}

// eachSession runs f on every client session, on the session's own event
// loop.
func (p *Proxy) eachSession(f func(*session)) {
	for _, l := range p.loops {
		l.post(func() {
			for s := range l.sessions {
				f(s)
			}
		})
	}
}

// Shutdown stops accepting and drains every client: each session goes on
// reading and answering what its client has already sent, until the client
// has been quiet for a moment (drainQuiet) or leaves, then writes the last
// of its replies and half-closes, so the client reads every reply it is
// owed and then EOF. Then it closes backends, health checking and the
// event loops. When ctx ends first, remaining client connections are
// closed at once and Shutdown returns ctx's error.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.draining.Store(true)
	for _, a := range p.listeners {
		a.close()
	}
	draining := len(p.sessions)
	p.mu.Unlock()
	p.eachSession((*session).drain)
	start := time.Now()

	done := make(chan struct{})
	go func() { p.sessWG.Wait(); close(done) }()
	var err error
	select {
	case <-done:
		p.log.Info("clients drained", zap.Int("sessions", draining), zap.Duration("took", time.Since(start)))
	case <-ctx.Done():
		err = ctx.Err()
		p.mu.Lock()
		left := len(p.sessions)
		p.mu.Unlock()
		p.eachSession(func(s *session) {
			s.lost()
			s.maybeEnd()
		})
		// Fail what is still waiting for a backend, so that the grace bounds
		// the shutdown rather than the grace plus a backend timeout.
		p.closeBackends()
		p.log.Warn("drain cut short: closed the clients still draining", zap.Int("sessions", draining),
			zap.Int("still_draining", left), zap.Duration("took", time.Since(start)))
		<-done // sessions end at once: their requests have all failed
	}
	p.acceptors.Wait()
	p.health.Close()
	close(p.stopRetiring)
	p.retiring.Wait()
	p.closeBackends()
	p.stopLoops()
	return err
}

func (p *Proxy) closeBackends() {
	for _, b := range p.backends {
		b.close()
	}
}

// Addrs returns the addresses the proxy listens on.
func (p *Proxy) Addrs() []net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]net.Addr, len(p.listeners))
	for i, l := range p.listeners {
		out[i] = l.Addr()
	}
	return out
}

// Ready reports whether the proxy can serve: a listener is open and at
// least one backend is in the ring. The reason says what is missing.
func (p *Proxy) Ready() (bool, string) {
	p.mu.Lock()
	listening := len(p.listeners) > 0 && !p.closed
	p.mu.Unlock()
	if !listening {
		return false, "not listening"
	}
	if p.table.Load().liveBackends() > 0 {
		return true, "ok"
	}
	return false, "no live backend"
}
