package soak

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/backendwatch"
	"github.com/mcproxy/mcproxy/internal/tools/mcproxyproc"
)

// settlePoll is how often the end of a run checks that every backend is
// back in the ring.
const settlePoll = 100 * time.Millisecond

// readAgeMargin is added to the reply timeout to bound the age of a read's
// snapshot when it is judged.
const readAgeMargin = 5 * time.Second

// Config is one soak run.
type Config struct {
	Mcproxy       string        // path of the mcproxy binary
	Backends      int           // memcached processes
	MemcachedArgs []string      // extra memcached arguments
	Duration      time.Duration // of the load
	Workload      WorkloadConfig
	Chaos         ChaosConfig
	Proxy         ProxyConfig
	PollInterval  time.Duration // of "stats backends"
	// SettleWait bounds the wait, after the load, for every backend to be
	// back in the ring before the end sample of the proxy's footprint.
	SettleWait time.Duration
	Seed       int64
	KeepDir    bool                          // keep the temp dir with the proxy's config and log
	Progress   func(format string, a ...any) // a line every ProgressEvery, if set
	// ProgressEvery is the interval of progress lines.
	ProgressEvery time.Duration
}

// DefaultConfig is a three-minute soak of 16 connections over three
// backends, one killed and one frozen on a schedule.
func DefaultConfig() Config {
	return Config{
		Mcproxy:       "bin/mcproxy",
		Backends:      3,
		MemcachedArgs: []string{"-m", "64"},
		Duration:      3 * time.Minute,
		Workload: WorkloadConfig{
			Conns:        16,
			Pipeline:     8,
			MultiGet:     8,
			RegisterKeys: 3000,
			CounterKeys:  300,
			ValueSize:    100,
			ReplyTimeout: 5 * time.Second,
			DialTimeout:  2 * time.Second,
		},
		Chaos: ChaosConfig{
			KillBackend:   0,
			FreezeBackend: 1,
			Start:         10 * time.Second,
			Period:        45 * time.Second,
			KillDown:      3 * time.Second,
			FreezeFor:     4 * time.Second,
			QuietTail:     15 * time.Second,
		},
		Proxy: ProxyConfig{
			Health: mcproxyproc.HealthSettings{
				Interval:     200 * time.Millisecond,
				Timeout:      200 * time.Millisecond,
				FailureLimit: 2,
				SuccessLimit: 2,
			},
			FlushOnReadd:   true,
			BackendTimeout: 500 * time.Millisecond,
			ConnectTimeout: 200 * time.Millisecond,
		},
		PollInterval:  50 * time.Millisecond,
		SettleWait:    30 * time.Second,
		Seed:          1,
		ProgressEvery: 10 * time.Second,
	}
}

func (c *Config) validate() error {
	w := &c.Workload
	switch {
	case c.Backends < 1 || c.Backends > 64:
		return fmt.Errorf("backends: %d, want 1..64", c.Backends)
	case c.Duration <= 0:
		return errors.New("duration must be > 0")
	case w.Conns < 1 || w.Conns > 1024:
		return fmt.Errorf("conns: %d, want 1..1024", w.Conns)
	case w.Pipeline < 1 || w.Pipeline > 1024:
		return fmt.Errorf("pipeline: %d, want 1..1024", w.Pipeline)
	case w.MultiGet < 1 || w.MultiGet > 100:
		return fmt.Errorf("multiget: %d, want 1..100", w.MultiGet)
	case w.RegisterKeys < 1 || w.RegisterKeys > 1_000_000:
		return fmt.Errorf("keys: %d, want 1..1000000", w.RegisterKeys)
	case w.CounterKeys < 0 || w.CounterKeys > 1_000_000:
		return fmt.Errorf("counters: %d, want 0..1000000", w.CounterKeys)
	case w.ValueSize < 1 || w.ValueSize > 512<<10:
		return fmt.Errorf("value size: %d, want 1..%d", w.ValueSize, 512<<10)
	case w.ReplyTimeout <= 0 || w.DialTimeout <= 0 || c.PollInterval <= 0 || c.SettleWait < 0:
		return errors.New("reply timeout, dial timeout and poll interval must be > 0, settle wait >= 0")
	}
	return c.Chaos.validate(c.Backends)
}

// Run starts the backends and the proxy, drives the load and the chaos
// schedule for cfg.Duration, and reports. It returns an error only if the
// run could not be carried out; stale and bogus reads are in the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cl, err := mcproxyproc.StartCluster(mcproxyproc.ClusterSpec{
		Mcproxy:       cfg.Mcproxy,
		MemcachedArgs: cfg.MemcachedArgs,
		Backends:      cfg.Backends,
		TempPrefix:    "mcsoak-",
		KeepDir:       cfg.KeepDir,
		Admin:         true, // for /metrics: the proxy's goroutines
		Config:        cfg.Proxy.render,
		Args:          []string{"-log-format", "json"},
	})
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	proxy, servers, addrs := cl.Proxy, cl.Backends, cl.Addrs()

	base := time.Now()
	ks := newKeyspace(cfg.Workload.RegisterKeys, cfg.Workload.CounterKeys)
	// A read is answered or given up within the reply timeout of its
	// batch's write, which follows its snapshot at once; the margin covers
	// a loaded machine.
	chk := NewChecker(base, cfg.Workload.ReplyTimeout+readAgeMargin, cfg.Workload.ValueSize, ks.registers, ks.counters)
	mon := backendwatch.Start(ctx, proxy.Addr, addrs, cfg.PollInterval, pollTimeout, chk.Now)
	defer mon.Stop() // Stop may be called again
	rep := &Report{Config: cfg, Backends: addrs, ProxyPID: proxy.PID()}
	if cfg.KeepDir {
		rep.Dir = cl.Dir
	}
	if rep.Start, err = sampleProxy(ctx, proxy, chk.Now()); err != nil {
		return nil, fmt.Errorf("start sample: %w", err)
	}

	var cn counts
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	end := base.Add(cfg.Duration)
	var chaosEvents []Event
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		chaosEvents = runChaos(runCtx, cfg.Chaos.schedule(cfg.Duration), servers, base, chk.Now)
	}()
	if cfg.Progress != nil && cfg.ProgressEvery > 0 {
		bg.Add(1)
		go func() {
			defer bg.Done()
			progress(runCtx, cfg, chk, &cn, end)
		}()
	}
	runWorkload(runCtx, proxy.Addr, &cfg.Workload, &ks, chk, &cn, end, cfg.Seed)
	rep.LoadEnd = chk.Now()
	cancel()
	bg.Wait()

	// Every backend should be back in the ring (the schedule leaves a quiet
	// tail for it); wait a bounded time so that the end sample is of a
	// proxy at rest with its full ring.
	settle := time.Now().Add(cfg.SettleWait)
	for !mon.AllInRing() && time.Now().Before(settle) && pause(ctx, settlePoll) {
	}
	rep.AllInRing = mon.AllInRing()
	if rep.End, err = sampleProxy(ctx, proxy, chk.Now()); err != nil {
		rep.SampleErr = err.Error()
	}
	mon.Stop()
	if _, err := proxy.Stop(); err != nil {
		rep.ProxyExit = err.Error()
	} else {
		rep.ProxyExit = "clean exit after SIGTERM"
	}

	rep.fill(chk, &cn, mon, chaosEvents)
	return rep, nil
}

// progress prints a line every cfg.ProgressEvery until ctx ends.
func progress(ctx context.Context, cfg Config, chk *Checker, cn *counts, end time.Time) {
	for i := 0; i < 100_000 && pause(ctx, cfg.ProgressEvery); i++ {
		var sent int64
		for k := range cn.sent {
			sent += cn.sent[k].Load()
		}
		var errs int64
		for k := range cn.errs {
			errs += cn.errs[k].Load()
		}
		v := chk.Verdicts()
		cfg.Progress("%s: %d commands, %d errors, reads ok %d miss %d stale %d bogus %d; %s left",
			fmtNanos(chk.Now()), sent, errs, v[VerdictOK], v[VerdictMiss], v[VerdictStale], v[VerdictBogus],
			time.Until(end).Round(time.Second))
	}
}
