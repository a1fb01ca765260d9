package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcproxy/mcproxy/health"
	"github.com/mcproxy/mcproxy/internal/admin"
	"github.com/mcproxy/mcproxy/internal/config"
	"github.com/mcproxy/mcproxy/proxy"
	"github.com/mcproxy/mcproxy/ring"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
)

// reloadDebounce gathers the burst of file events one save makes.
const reloadDebounce = 200 * time.Millisecond

// serve runs mcproxy with the config at path until ctx ends, then shuts
// down gracefully, draining clients for at most grace; it returns an error
// when grace ran out first. A value on reload (SIGHUP) or an edit of the
// file reloads the config.
func serve(ctx context.Context, path string, reload <-chan struct{}, log *zap.Logger, grace time.Duration) error {
	// The watcher starts before the file is read, so that no edit falls
	// between reading it and watching it: an edit before the watcher is
	// ready is in what Load reads, one after it reaches the reloader. The
	// reloader is locked until the proxy is running; a change seen before
	// then waits for it.
	rl := &reloader{path: path, log: log}
	rl.mu.Lock()
	setup := true
	defer func() {
		if setup {
			rl.mu.Unlock()
		}
	}()
	watch := startWatch(ctx, path, rl, log)
	defer watch.stop()

	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	disc, err := startDiscovery(cfg, log)
	if err != nil {
		return err
	}
	defer disc.stop()
	rl.disc = disc
	if err := disc.waitFirst(ctx, discoverFirstWait, log); err != nil {
		return err
	}
	st, err := start(cfg, disc.snapshot(), log)
	if err != nil {
		return err
	}
	p, lns, tl, old, adm := st.p, st.lns, st.tl, st.old, st.adm
	defer adm.shutdown()
	defer adm.markRegistered() // before the admin server's Shutdown waits for its requests
	defer old.close()
	adm.registerDiscovery(disc)
	adm.register(p, cfg, tl)
	tlsCtx, stopTLS := context.WithCancel(ctx)
	defer func() { stopTLS(); tl.wait() }()
	tl.watch(tlsCtx)
	log.Info("mcproxy started", zap.String("version", fullVersion()), zap.Stringers("listen", listenAddrs(lns)),
		zap.String("tls_listen", cfg.TLS.Listen),
		zap.String("admin", cfg.Admin), zap.String("config", path), zap.Int("backends", len(backendAddrs(cfg))),
		zap.Int("pools", len(cfg.PoolList())), zap.Strings("backend_addrs", backendAddrs(cfg)))
	lookedUp := warnUnresolved(cfg, path, log)
	defer func() { <-lookedUp }()

	serveErr := serveAll(p, lns, tl)
	if old != nil {
		old.adopt(p, grace, log)
	}
	upgrades, err := listenUpgrades(cfg, log)
	if err != nil {
		log.Error("no upgrades: the upgrade socket does not listen", zap.Error(err))
		upgrades, _ = listenUpgrades(config.Config{}, log)
	}
	defer upgrades.close()

	rl.running, rl.proxy = cfg, p
	rl.mu.Unlock()
	setup = false

	stopped, conn, err := runUntilStop(ctx, reload, rl, watch, serveErr, upgrades.requests, p, log)
	if stopped {
		return err
	}
	if conn != nil {
		handOver(p, conn, grace, log)
	}
	return drain(p, serveErr, grace, log)
}

// started is what start opened and started.
type started struct {
	p   *proxy.Proxy
	lns []net.Listener // the clear-text listeners
	tl  *tlsSetup      // the TLS listener and files
	old *oldProcess    // the process to take clients from, or nil
	adm *adminEndpoint
}

// start opens the listeners (or takes the clear-text ones over from the
// old process of an upgrade), the TLS listener and files, and the admin
// endpoint, and starts the proxy with the backends of found for the pools
// found in DNS. Without an upgrade every port is bound before the proxy
// starts, so that a port in use is the one thing reported, with no proxy
// to stop (and no drain logged) before the error.
func start(cfg config.Config, found map[string][]proxy.Backend, log *zap.Logger) (st started, err error) {
	defer func() {
		if err != nil {
			for _, l := range st.lns {
				_ = l.Close()
			}
			closeListeners(nil, st.tl)
			st.old.close()
		}
	}()
	if st.old = connectOld(cfg, log); st.old == nil && cfg.Listen != "" {
		l, err := listenTCP(cfg.Listen, cfg.ReusePort)
		if err != nil {
			return st, err
		}
		st.lns = append(st.lns, l)
	}
	if st.tl, err = setupTLS(cfg, log); err != nil {
		return st, err
	}
	if st.adm, err = startAdmin(cfg); err != nil {
		return st, err
	}
	opts, err := optionsFrom(cfg, found, log)
	if err == nil {
		opts.BackendTLS, opts.PoolTLS = backendTLS(cfg.Backend.TLS, st.tl), poolTLS(cfg, st.tl)
		st.p, err = proxy.New(opts)
	}
	if err != nil {
		st.adm.shutdown()
		return st, err
	}
	if st.old != nil {
		// Asked only now that the proxy is ready: the old process stops
		// accepting as soon as it has given its listeners.
		var handing bool
		st.lns, handing, err = st.old.takeListeners(cfg, log)
		if !handing {
			st.old = nil
		}
		if err != nil {
			_ = st.p.Shutdown(context.Background())
			st.adm.shutdown()
			return st, err
		}
	}
	return st, nil
}

// listenAddrs lists the listeners' addresses for the start-up log.
func listenAddrs(lns []net.Listener) []fmt.Stringer {
	out := make([]fmt.Stringer, len(lns))
	for i, l := range lns {
		out[i] = l.Addr()
	}
	return out
}

// configWatch is serve's watcher of the config file.
type configWatch struct {
	cancel context.CancelFunc
	done   chan error
	// ended is done until the watcher's end has been received, then nil.
	ended <-chan error
}

// startWatch starts watching the config file at path, each change
// reloading through rl, and returns once the watcher is ready or has
// failed to start.
func startWatch(ctx context.Context, path string, rl *reloader, log *zap.Logger) *configWatch {
	watchCtx, cancel := context.WithCancel(ctx)
	w := &configWatch{cancel: cancel, done: make(chan error, 1)}
	w.ended = w.done
	ready := make(chan struct{})
	go func() {
		w.done <- config.Watch(watchCtx, path, reloadDebounce, func() { rl.reload("file changed") },
			func() { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-w.done:
		// The proxy serves on without live reload; SIGHUP still works.
		w.ended = nil
		log.Error("config watch did not start; edits are picked up on SIGHUP only", zap.Error(err))
	}
	return w
}

// stop ends the watcher and waits for it.
func (w *configWatch) stop() {
	w.cancel()
	if w.ended != nil {
		<-w.done
	}
}

// adminEndpoint is serve's admin HTTP server, when the config has one, and
// the registry of the metrics it shows.
type adminEndpoint struct {
	srv     *admin.Server // nil without an admin address
	reg     *prometheus.Registry
	running atomic.Pointer[proxy.Proxy] // set once the proxy runs; /readyz asks it
	// registered is closed once reg holds every collector (or the start
	// failed): until then admin requests wait, so that a scrape in the
	// first moments gets the whole page, not an empty one.
	registered chan struct{}
	once       sync.Once
}

// startAdmin starts the admin server of cfg, if any.
func startAdmin(cfg config.Config) (*adminEndpoint, error) {
	a := &adminEndpoint{reg: prometheus.NewRegistry(), registered: make(chan struct{})}
	if cfg.Admin == "" {
		return a, nil
	}
	ready := func() (bool, string) {
		if p := a.running.Load(); p != nil {
			return p.Ready()
		}
		return false, "not started"
	}
	h := admin.Handler(a.reg, ready, cfg.Pprof)
	nl, err := listenTCP(cfg.Admin, cfg.ReusePort)
	if err != nil {
		return nil, fmt.Errorf("admin %w", err)
	}
	a.srv = admin.Serve(nl, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-a.registered
		h.ServeHTTP(w, r)
	}))
	return a, nil
}

// register shows p's metrics and readiness on the admin server, then lets
// the requests that waited for them through.
func (a *adminEndpoint) register(p *proxy.Proxy, cfg config.Config, tl *tlsSetup) {
	if a.srv != nil {
		a.reg.MustRegister(p.Collector(), p.TLSCollector(), tl, admin.BuildInfo(fullVersion()), admin.ConnectionLimit(cfg.Limits.MaxConnections),
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		a.running.Store(p)
	}
	a.markRegistered()
}

func (a *adminEndpoint) markRegistered() { a.once.Do(func() { close(a.registered) }) }

// shutdown stops the admin server, waiting a second at most for the
// requests under way.
func (a *adminEndpoint) shutdown() {
	if a.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
}

// warnUnresolved warns about each backend whose name does not resolve (the
// image's built-in config outside docker compose, a typo) at once, beside
// the config file's name, not only as probe failures. Off the start path:
// a slow DNS server delays nothing but this warning (by at most
// resolve.Timeout, which also bounds the wait for the channel it returns,
// closed when it is done).
func warnUnresolved(cfg config.Config, path string, log *zap.Logger) <-chan struct{} {
	lookedUp := make(chan struct{})
	go func() {
		defer close(lookedUp)
		for _, w := range unresolvedBackends(cfg) {
			log.Warn("backend address does not resolve", zap.String("config", path), zap.String("problem", w))
		}
	}()
	return lookedUp
}

// runUntilStop is serve's signal loop: it reloads the config on SIGHUP
// until ctx ends (stopped false), a new process asks for the clients
// (stopped false, with its connection) or Serve returns (stopped true,
// with Serve's error, after shutting p down). A change of the backends
// found in DNS is applied here too, off the Watchers' goroutines.
func runUntilStop(ctx context.Context, reload <-chan struct{}, rl *reloader, watch *configWatch,
	serveErr <-chan error, upgrades <-chan *net.UnixConn, p *proxy.Proxy, log *zap.Logger) (
	stopped bool, upgrade *net.UnixConn, _ error) {
	for {
		select {
		case <-reload:
			rl.reload("SIGHUP")
		case <-rl.disc.changes():
			rl.rediscovered()
		case err := <-watch.ended:
			// The proxy serves on without live reload; SIGHUP still works.
			log.Error("config watch stopped; edits are picked up on SIGHUP only", zap.Error(err))
			watch.ended = nil // received: nothing left to wait for
		case err := <-serveErr:
			_ = p.Shutdown(context.Background())
			return true, nil, err
		case conn := <-upgrades:
			return false, conn, nil
		case <-ctx.Done():
			return false, nil, nil
		}
	}
}

// drain shuts p down, draining its clients for at most grace, and returns
// Serve's error, or an error when grace ran out first.
func drain(p *proxy.Proxy, serveErr <-chan error, grace time.Duration, log *zap.Logger) error {
	log.Info("shutting down: draining clients", zap.Duration("grace", grace))
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	shutErr := p.Shutdown(sctx)
	if err := <-serveErr; err != nil {
		return err
	}
	if errors.Is(shutErr, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown grace of %v ran out before every client was drained", grace)
	}
	if shutErr != nil {
		return shutErr
	}
	log.Info("mcproxy stopped")
	return nil
}

// optionsFrom maps the validated config, with the backend lists found in
// DNS (nil without discovered pools), onto the proxy's options.
func optionsFrom(cfg config.Config, found map[string][]proxy.Backend, log *zap.Logger) (proxy.Options, error) {
	s, err := settingsFrom(cfg, found)
	if err != nil {
		return proxy.Options{}, err
	}
	return proxy.Options{
		Backends:          s.Backends,
		Replicas:          s.Replicas,
		Zone:              cfg.Zone,
		Ring:              s.Ring,
		Pools:             s.Pools,
		Routes:            s.Routes,
		EventLoops:        cfg.EventLoops,
		Connections:       cfg.Backend.Connections,
		Timeout:           cfg.Backend.Timeout,
		ConnectTimeout:    cfg.Backend.ConnectTimeout,
		MaxConnections:    cfg.Limits.MaxConnections,
		MaxItemSize:       cfg.Limits.MaxItemSize,
		ClientIdleTimeout: cfg.Limits.ClientIdleTimeout,
		ClientOutputLimit: cfg.Limits.ClientOutputLimit,
		ReqsPerEvent:      cfg.Limits.ReqsPerEvent,
		ReadBytesPerEvent: cfg.Limits.ReadBytesPerEvent,
		Health:            s.Health,
		AutoEject:         cfg.Health.AutoEject,
		FlushOnReadd:      cfg.Health.FlushOnReadd,
		MaxEjected:        s.MaxEjected,
		DisableFlushAll:   cfg.DisableFlushAll,
		FailoverTTL:       cfg.Failover.TTL,
		CommandLatency:    cfg.Admin != "", // only scraped with an admin endpoint
		ReservedFds:       reservedFds(cfg),
		Version:           buildVersion(),
		Logger:            log,
	}, nil
}

// reservedFds are the descriptors mcproxy keeps from the clients besides
// the proxy's own: the admin endpoint's, when it is on.
func reservedFds(cfg config.Config) int {
	if cfg.Admin == "" {
		return 0
	}
	return admin.ReservedDescriptors
}

// settingsFrom maps the validated config onto the settings a running
// proxy can change (config.AppliesLive): the proxy starts with them, and a
// reload and a change found in DNS pass them to Reconfigure. It is the one
// place where the file's config and the lists found in DNS meet: a pool
// with a discover section takes its list from found (by pool name).
func settingsFrom(cfg config.Config, found map[string][]proxy.Backend) (proxy.Settings, error) {
	found, err := discoveredPools(cfg, found)
	if err != nil {
		return proxy.Settings{}, err
	}
	var bs []proxy.Backend
	pools, routes := poolsFrom(cfg, found)
	if pools == nil {
		bs = proxyBackends(cfg.Backends)
	}
	return proxy.Settings{
		Backends: bs,
		Pools:    pools,
		Routes:   routes,
		Replicas: cfg.Replicas,
		Ring: ring.Config{
			Partitions:        cfg.Ring.Partitions,
			ReplicationFactor: cfg.Ring.ReplicationFactor,
			Load:              cfg.Ring.Load,
		},
		Health: health.Config{
			Interval:     cfg.Health.Interval,
			Timeout:      cfg.Health.Timeout,
			FailureLimit: cfg.Health.FailureLimit,
			SuccessLimit: cfg.Health.SuccessLimit,
		},
		MaxEjected: settingsCap(cfg),
	}, nil
}

// settingsCap is health.max_ejected as the proxy takes it.
func settingsCap(cfg config.Config) proxy.EjectionCap {
	n, percent, _ := cfg.Health.MaxEjected.Parse() // checked by validation
	if percent {
		return proxy.MaxEjectedPercent(n)
	}
	return proxy.MaxEjectedBackends(n)
}

// backendAddrs lists the configured servers for the start-up log, each
// once, of every pool.
func backendAddrs(cfg config.Config) []string {
	servers := configServers(cfg)
	addrs := make([]string, len(servers))
	for i, b := range servers {
		addrs[i] = b.Addr
	}
	return addrs
}
