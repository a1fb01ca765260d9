package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcproxy/mcproxy/health"
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
	// Zone is the failure domain the backend is in (an availability
	// zone, a rack); a replicated pool puts a key's copies in distinct
	// zones first (replica.go). Empty: no zone.
	Zone string
}

// name returns the backend's identity: Name, or Addr when unnamed.
func (b Backend) name() string {
	if b.Name != "" {
		return b.Name
	}
	return b.Addr
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
	balance      loopBalancer // how many loops are awake (loop_balance.go)
	// dialCtx ends with Shutdown, cutting short backend dials under way;
	// dials counts them, so that Shutdown returns after the last.
	dialCtx    context.Context
	cancelDial context.CancelFunc
	dials      sync.WaitGroup
	draining   atomic.Bool // Shutdown has begun: new sessions drain at once
	dumping    atomic.Bool // an lru_crawler metadump runs (metadump.go)
	// handover is set while HandOver gives the clients to another process
	// (handover.go); sessions read it on their loops.
	handover atomic.Pointer[handoverSender]

	fds  descriptorCounts // what the descriptor budget counts (descriptors.go)
	tls  tlsState         // TLS listeners, backends and their bridges (tls_*.go)
	gate listenGate       // accepting on or off (accept.go)

	mu       sync.Mutex // guards everything below and ring rebuilds
	backends []*backend // every server of every pool, each once, in config order
	pools    []*pool    // config order (pool.go)
	routes   []Route
	// copyStats are the backends' copy counters by name (replica.go),
	// kept across reloads.
	copyStats map[string]*copyCounters
	// named: the pools came as Options.Pools, not as the default pool of
	// Options.Backends; Settings gives them back the way they came.
	named        bool
	ringCfg      ring.Config // Options.Ring, the default pool's ring
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
	// Check the pools before starting anything that would need stopping.
	c, err := checkSettings(Settings{Backends: opts.Backends, Ring: opts.Ring, Replicas: opts.Replicas, Pools: opts.Pools, Routes: opts.Routes})
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
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
	p.ringCfg = c.ring
	p.named = len(opts.Pools) > 0
	p.maxEjected = opts.MaxEjected
	p.stopRetiring = make(chan struct{})
	p.generation = 1
	p.lastReload = p.started
	p.dialCtx, p.cancelDial = context.WithCancel(context.Background())
	p.tls.setup(opts.BackendTLS, opts.PoolTLS)
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
	if p.tls.anyBackend {
		hc.Dial = p.dialBackend // probes speak TLS too
	}
	p.health = health.New(hc, p.onHealthEvent, p.log)
	byName := map[string]*backend{}
	p.setBackendTLS(c.pools) // before the backends dial
	for _, b := range c.servers {
		nb := newBackend(p, b.name(), b.Addr)
		p.backends = append(p.backends, nb)
		byName[nb.name] = nb
	}
	p.pools, p.routes = newPools(c.pools, c.placements, byName, nil), c.routes
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
	p.startBalancer()
	return p, nil
}

// stopLoops ends the event loops and waits for them and for backend dials
// still under way.
func (p *Proxy) stopLoops() {
	p.cancelDial()
	p.stopBalancer()
	for _, l := range p.loops {
		l.stop()
	}
	p.loopWG.Wait()
	p.dials.Wait()
	p.tls.wait()
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

// healthTargets lists backends for the health checker: by name, probed at
// their address.
func healthTargets(bs []*backend) []health.Target {
	ts := make([]health.Target, len(bs))
	for i, b := range bs {
		ts[i] = health.Target{Name: b.name, Addr: b.addr}
	}
	return ts
}

// Serve accepts clients on l until l is closed or Shutdown is called, and
// hands each to an event loop, round robin. It returns nil after Shutdown.
// l must be a socket listener (*net.TCPListener, *net.UnixListener): the
// proxy accepts on its socket itself, so that a client costs one
// descriptor (accept.go). Clients past the descriptor budget wait in the
// listen backlog until others leave (descriptors.go).
func (p *Proxy) Serve(l net.Listener) error { return p.serve(l, nil) }

// serve is Serve, and ServeTLS with t (tls_listen.go).
func (p *Proxy) serve(l net.Listener, t *tlsServer) error {
	a, err := newAcceptor(p, l)
	if err != nil {
		return fmt.Errorf("proxy: serve: %w", err)
	}
	if err := p.enlist(a, t); err != nil {
		return err
	}
	defer p.acceptors.Done()
	b := p.descriptorBudget()
	if b.clientCap() < 1 {
		a.close()
		a.waitUnwatched()
		return fmt.Errorf("proxy: serve on %s: %w", l.Addr(), b.tooLow())
	}
	p.log.Info("accepting clients", zap.String("listen", l.Addr().String()), zap.Int("descriptor_limit", b.limit),
		zap.Int("reserved_descriptors", b.reserved()), zap.Int("client_cap", b.clientCap()),
		zap.Int("max_connections", p.opts.MaxConnections))
	err = a.run()
	a.waitUnwatched() // the first loop's duplicate is closed too (accept_loop.go)
	return err
}

// enlist makes a one of the proxy's acceptors, counted in p.acceptors
// (the caller marks it done when a.run returns), with the first event
// loop watching its socket too; t is a TLS listener's handshakes. After
// Shutdown or a handover it closes a and refuses.
func (p *Proxy) enlist(a *acceptor, t *tlsServer) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.handover.Load() != nil {
		a.close()
		return errors.New("proxy: serve after shutdown or handover")
	}
	a.tls = t
	p.listeners = append(p.listeners, a)
	p.acceptors.Add(1)
	a.watchOnLoop(p.loops[0]) // loop 0 is always awake (accept_loop.go)
	return nil
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
