package main

import (
	"context"
	"errors"
	"fmt"
	"net"
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
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	p, err := proxy.New(optionsFrom(cfg, log))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = p.Shutdown(context.Background())
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	var adm *admin.Server
	if cfg.Admin != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(p.Collector(), collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		adm, err = admin.Start(cfg.Admin, admin.Handler(reg, p.Ready, cfg.Pprof))
		if err != nil {
			_ = l.Close()
			_ = p.Shutdown(context.Background())
			return err
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = adm.Shutdown(ctx)
		}()
	}
	log.Info("mcproxy started", zap.String("version", version), zap.String("listen", l.Addr().String()),
		zap.String("admin", cfg.Admin), zap.String("config", path), zap.Int("backends", len(cfg.Backends)))

	serveErr := make(chan error, 1)
	go func() { serveErr <- p.Serve(l) }()

	rl := &reloader{path: path, running: cfg, proxy: p, log: log}
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan error, 1)
	watching := watchDone // nil once the watcher has ended
	go func() {
		watchDone <- config.Watch(watchCtx, path, reloadDebounce, func() { rl.reload("file changed") })
	}()
	defer func() {
		stopWatch()
		if watching != nil {
			<-watchDone
		}
	}()

	for {
		select {
		case <-reload:
			rl.reload("SIGHUP")
			continue
		case err := <-watching:
			// The proxy serves on without live reload; SIGHUP still works.
			log.Error("config watch stopped; edits are picked up on SIGHUP only", zap.Error(err))
			watching = nil // received: nothing left to wait for
			continue
		case err := <-serveErr:
			_ = p.Shutdown(context.Background())
			return err
		case <-ctx.Done():
		}
		break
	}
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

// optionsFrom maps the validated config onto the proxy's options.
func optionsFrom(cfg config.Config, log *zap.Logger) proxy.Options {
	return proxy.Options{
		Backends:          backendsFrom(cfg),
		Ring:              ringFrom(cfg),
		Connections:       cfg.Backend.Connections,
		Timeout:           cfg.Backend.Timeout,
		ConnectTimeout:    cfg.Backend.ConnectTimeout,
		MaxConnections:    cfg.Limits.MaxConnections,
		MaxItemSize:       cfg.Limits.MaxItemSize,
		ClientIdleTimeout: cfg.Limits.ClientIdleTimeout,
		Health:            healthFrom(cfg),
		AutoEject:         cfg.Health.AutoEject,
		KeepDataOnReadd:   !cfg.Health.FlushOnReadd,
		CommandLatency:    cfg.Admin != "", // only scraped with an admin endpoint
		Version:           version,
		Logger:            log,
	}
}

func backendsFrom(cfg config.Config) []proxy.Backend {
	bs := make([]proxy.Backend, len(cfg.Backends))
	for i, b := range cfg.Backends {
		bs[i] = proxy.Backend{Addr: b.Addr, Weight: b.Weight}
	}
	return bs
}

func ringFrom(cfg config.Config) ring.Config {
	return ring.Config{
		Partitions:        cfg.Ring.Partitions,
		ReplicationFactor: cfg.Ring.ReplicationFactor,
		Load:              cfg.Ring.Load,
	}
}

func healthFrom(cfg config.Config) health.Config {
	return health.Config{
		Interval:     cfg.Health.Interval,
		Timeout:      cfg.Health.Timeout,
		FailureLimit: cfg.Health.FailureLimit,
		SuccessLimit: cfg.Health.SuccessLimit,
	}
}
