package main

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/mcproxy/mcproxy/internal/config"
	"github.com/mcproxy/mcproxy/internal/tlsfiles"
	"github.com/mcproxy/mcproxy/proxy"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// tlsSetup is serve's TLS: the listener's and the backends' files, the
// TLS listener, and the watch that reloads the files when they change.
// Built once at start; the files' contents rotate, the keys need a
// restart (config.AppliesLive).
type tlsSetup struct {
	listener net.Listener    // nil without tls.listen
	server   *tlsfiles.Store // the listener's files; nil without tls.listen
	// backends are the stores of the backend side, one per distinct set
	// of files over backend.tls and the pools' own tls, in that order;
	// byFiles finds them.
	backends []namedStore
	byFiles  map[tlsfiles.Files]*tlsfiles.Store
	opts     proxy.TLSServer
	log      *zap.Logger
	watches  sync.WaitGroup
}

// namedStore is a store and the config section that first named its
// files (the section label of its log lines and metrics).
type namedStore struct {
	what  string
	store *tlsfiles.Store
}

// setupTLS opens the TLS files and binds the TLS listener, if the config
// has them.
func setupTLS(cfg config.Config, log *zap.Logger) (*tlsSetup, error) {
	t := &tlsSetup{log: log, byFiles: map[tlsfiles.Files]*tlsfiles.Store{}}
	if err := t.openBackend("backend.tls", cfg.Backend.TLS); err != nil {
		return nil, err
	}
	for _, pl := range cfg.Pools {
		if err := t.openBackend("pools."+pl.Name+".tls", pl.TLS); err != nil {
			return nil, err
		}
	}
	if cfg.TLS.Listen == "" {
		return t, nil
	}
	s, err := tlsfiles.Open(cfg.TLS.Files())
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	t.server = s
	t.opts = proxy.TLSServer{Certs: s, MinVersion: proxy.TLSVersions[cfg.TLS.MinVersion],
		HandshakeTimeout: cfg.TLS.HandshakeTimeout}
	// With reuse_port, the new process of an upgrade binds it beside the
	// old one (the TLS listener is not handed over: TLS clients drain).
	if t.listener, err = listenTCP(cfg.TLS.Listen, cfg.ReusePort); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return t, nil
}

// openBackend opens the files of an enabled backend TLS section, once per
// distinct set: pools naming the same files share a store.
func (t *tlsSetup) openBackend(what string, b config.BackendTLS) error {
	if !b.Enabled || t.byFiles[b.Files()] != nil {
		return nil
	}
	s, err := tlsfiles.Open(b.Files())
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	t.byFiles[b.Files()] = s
	t.backends = append(t.backends, namedStore{what, s})
	return nil
}

// backendTLS is the proxy's Options.BackendTLS, or a pool's entry of
// Options.PoolTLS: b over its store; nil for clear text.
func backendTLS(b config.BackendTLS, t *tlsSetup) *proxy.BackendTLS {
	if t == nil || !b.Enabled {
		return nil
	}
	return &proxy.BackendTLS{Certs: t.byFiles[b.Files()], ServerName: b.ServerName,
		MinVersion: proxy.TLSVersions[b.MinVersion]}
}

// poolTLS is the proxy's Options.PoolTLS: the TLS of each named pool
// (backend.tls's unless it has its own section).
func poolTLS(cfg config.Config, t *tlsSetup) map[string]*proxy.BackendTLS {
	if len(cfg.Pools) == 0 {
		return nil
	}
	m := make(map[string]*proxy.BackendTLS, len(cfg.Pools))
	for _, pl := range cfg.Pools {
		m[pl.Name] = backendTLS(pl.TLS, t)
	}
	return m
}

// stores are the listener's store, if any, then the backends'.
func (t *tlsSetup) stores() []namedStore {
	var out []namedStore
	if t.server != nil {
		out = append(out, namedStore{"tls", t.server})
	}
	return append(out, t.backends...)
}

// close releases the TLS listener when the proxy never served on it.
func (t *tlsSetup) close() {
	if t.listener != nil {
		_ = t.listener.Close()
	}
}

// watch reloads each store when one of its files changes, until ctx
// ends; wait waits for the watches to stop. A watch that cannot start is
// logged: the files in force stay, and rotation needs a restart.
func (t *tlsSetup) watch(ctx context.Context) {
	for _, s := range t.stores() {
		f := s.store.Files()
		for _, path := range []string{f.Cert, f.Key, f.CA} {
			if path == "" {
				continue
			}
			t.watches.Add(1)
			go func() {
				defer t.watches.Done()
				err := config.Watch(ctx, path, reloadDebounce, func() { t.reload(s.what, s.store) }, nil)
				if err != nil {
					t.log.Error("TLS file watch did not start: a change of the file needs a restart",
						zap.String("section", s.what), zap.String("file", path), zap.Error(err))
				}
			}()
		}
	}
}

func (t *tlsSetup) wait() { t.watches.Wait() }

// reload reads a store's files again after a change.
func (t *tlsSetup) reload(what string, s *tlsfiles.Store) {
	changed, err := s.Reload()
	switch {
	case err != nil:
		t.log.Error("TLS files changed but were refused; the ones in force stay", zap.String("section", what), zap.Error(err))
	case changed:
		cur := s.Current()
		t.log.Info("TLS files reloaded: new handshakes use them", zap.String("section", what),
			zap.Time("certificate_not_after", cur.NotAfter))
	}
}

var (
	descCertExpiry = prometheus.NewDesc("mcproxy_tls_certificate_expiry_timestamp_seconds",
		"When the certificate in force expires (Unix time), by section: tls (the listener's), backend.tls or pools.<name>.tls (the proxy's client certificate; a pool's own files).",
		[]string{"section"}, nil)
	descCertReloadFailures = prometheus.NewDesc("mcproxy_tls_certificate_reload_failures_total",
		"Changed TLS files that were refused (bad certificate, key or CA); the files in force stayed.",
		[]string{"section"}, nil)
)

// Describe and Collect make the setup a collector of its files' expiry and
// refused reloads.
func (t *tlsSetup) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCertExpiry
	ch <- descCertReloadFailures
}

func (t *tlsSetup) Collect(ch chan<- prometheus.Metric) {
	for _, s := range t.stores() {
		if cur := s.store.Current(); cur.Cert != nil {
			ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(cur.NotAfter.Unix()), s.what)
		}
		ch <- prometheus.MustNewConstMetric(descCertReloadFailures, prometheus.CounterValue, float64(s.store.Failures()), s.what)
	}
}

// closeListeners closes what listenAll bound, when the proxy does not start.
func closeListeners(l net.Listener, tl *tlsSetup) {
	if l != nil {
		_ = l.Close()
	}
	if tl != nil {
		tl.close()
	}
}
