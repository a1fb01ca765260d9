package health

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder collects events.
type recorder struct {
	mu  sync.Mutex
	evs []Event
	ch  chan Event
}

func newRecorder() *recorder { return &recorder{ch: make(chan Event, 100)} }

func (r *recorder) on(ev Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
	r.ch <- ev
}

func (r *recorder) wait(t *testing.T, addr string, st State) Event {
	t.Helper()
	timer := time.NewTimer(memcachedtest.WaitBound)
	defer timer.Stop()
	for {
		select {
		case ev := <-r.ch:
			if ev.Addr == addr && ev.State == st {
				return ev
			}
		case <-timer.C:
			t.Fatalf("no %s event for %s within %v", st, addr, memcachedtest.WaitBound)
		}
	}
}

func fastConfig() Config {
	return Config{Interval: 20 * time.Millisecond, Timeout: 50 * time.Millisecond, FailureLimit: 3, SuccessLimit: 2}
}

func TestCheckerKillAndRestart(t *testing.T) {
	a, b := memcachedtest.Start(t), memcachedtest.Start(t)
	rec := newRecorder()
	c := New(fastConfig(), rec.on, zaptest.NewLogger(t))
	defer c.Close()
	c.SetBackends(byAddr(a.Addr, b.Addr))
	if !c.IsUp(a.Addr) || !c.IsUp(b.Addr) {
		t.Fatal("backends not up at start")
	}

	a.Kill()
	ev := rec.wait(t, a.Addr, Down)
	if ev.Failures != 3 || ev.Reason == "" {
		t.Fatalf("down event: %+v", ev)
	}
	if c.IsUp(a.Addr) || !c.IsUp(b.Addr) {
		t.Fatal("wrong backend marked down")
	}
	a.Restart(t)
	rec.wait(t, a.Addr, Up)
	if !c.IsUp(a.Addr) {
		t.Fatal("not up after its up event")
	}
	for _, st := range c.Snapshot() {
		if st.Addr == a.Addr && (st.Ejections != 1 || st.Readds != 1 || st.LastChange.IsZero()) {
			t.Fatalf("snapshot of %s: %+v", a.Addr, st)
		}
		if st.Addr == b.Addr && (st.Ejections != 0 || st.State != Up) {
			t.Fatalf("snapshot of %s: %+v", b.Addr, st)
		}
	}
}

// freezeUntilDown freezes a, to be thawed when the test ends at the
// latest, and waits until rec has seen it go down.
func freezeUntilDown(t *testing.T, a *memcachedtest.Server, rec *recorder) {
	t.Helper()
	if err := a.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Thaw() })
	rec.wait(t, a.Addr, Down)
}

// A frozen process keeps its socket and accepts connections, but never
// answers: only the probe timeout can tell.
func TestCheckerFrozenBackend(t *testing.T) {
	a := memcachedtest.Start(t)
	rec := newRecorder()
	c := New(fastConfig(), rec.on, zaptest.NewLogger(t))
	defer c.Close()
	c.SetBackends(byAddr(a.Addr))
	freezeUntilDown(t, a, rec)
	if err := a.Thaw(); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, a.Addr, Up)
}

func TestCheckerPassiveFailures(t *testing.T) {
	a := memcachedtest.Start(t)
	rec := newRecorder()
	cfg := fastConfig()
	cfg.Interval = time.Hour // only the first probe runs: failures below are passive
	c := New(cfg, rec.on, zaptest.NewLogger(t))
	defer c.Close()
	c.SetBackends(byAddr(a.Addr))
	// The one probe may succeed in between and reset the count; the loop
	// goes on until three failures in a row take the backend down.
	memcachedtest.WaitFor(t, "passive failures to take the backend down", func() bool {
		c.ReportFailure(a.Addr, errors.New("connection reset"))
		return !c.IsUp(a.Addr)
	})
	ev := rec.wait(t, a.Addr, Down)
	if ev.Reason != "connection reset" || ev.Failures != 3 {
		t.Fatalf("down event: %+v", ev)
	}
	c.ReportFailure("127.0.0.1:1", errors.New("unknown")) // ignored
	if !c.IsUp("127.0.0.1:1") {
		t.Fatal("an untracked address must count as up")
	}
}

func TestCheckerSetBackends(t *testing.T) {
	a, b := memcachedtest.Start(t), memcachedtest.Start(t)
	c := New(fastConfig(), nil, zaptest.NewLogger(t))
	defer c.Close()
	c.SetBackends(byAddr(a.Addr))
	a.Kill()
	memcachedtest.WaitFor(t, "the killed backend to be down", func() bool { return !c.IsUp(a.Addr) })
	// b joins, a stays down; then a leaves and is forgotten.
	c.SetBackends(byAddr(a.Addr, b.Addr))
	if c.IsUp(a.Addr) || !c.IsUp(b.Addr) {
		t.Fatal("SetBackends changed the state of a kept backend")
	}
	c.SetBackends(byAddr(b.Addr))
	if s := c.Snapshot(); len(s) != 1 || s[0].Addr != b.Addr {
		t.Fatalf("snapshot after removal: %+v", s)
	}
	if !c.IsUp(a.Addr) {
		t.Fatal("a forgotten backend must count as up")
	}
}

// BeforeUp runs before a down backend is marked up; while it fails, the
// backend stays down.
func TestCheckerBeforeUp(t *testing.T) {
	a := memcachedtest.Start(t)
	rec := newRecorder()
	var allow atomic.Bool
	var calls atomic.Int64
	cfg := fastConfig()
	cfg.BeforeUp = func(addr string) error {
		calls.Add(1)
		if addr != a.Addr {
			return fmt.Errorf("unexpected address %s", addr)
		}
		if !allow.Load() {
			return errors.New("not yet")
		}
		return nil
	}
	c := New(cfg, rec.on, zaptest.NewLogger(t))
	defer c.Close()
	c.SetBackends(byAddr(a.Addr))
	freezeUntilDown(t, a, rec)
	if calls.Load() != 0 {
		t.Fatalf("BeforeUp ran %d times before the backend went down", calls.Load())
	}
	if err := a.Thaw(); err != nil {
		t.Fatal(err)
	}
	memcachedtest.WaitFor(t, "BeforeUp calls for the recovered backend", func() bool { return calls.Load() >= 3 })
	if c.IsUp(a.Addr) {
		t.Fatal("marked up although BeforeUp failed")
	}
	allow.Store(true)
	rec.wait(t, a.Addr, Up)
}

// SetBackendsPending: new backends start down and come up with an event
// once probed, without counting a re-add; kept ones keep their state.
func TestCheckerSetBackendsPending(t *testing.T) {
	a, b := memcachedtest.Start(t), memcachedtest.Start(t)
	rec := newRecorder()
	c := New(fastConfig(), rec.on, zaptest.NewLogger(t))
	defer c.Close()
	c.SetBackends(byAddr(a.Addr))
	c.SetBackendsPending(byAddr(a.Addr, b.Addr))
	if !c.IsUp(a.Addr) {
		t.Fatal("a kept backend lost its state")
	}
	if c.IsUp(b.Addr) {
		t.Fatal("a pending backend is up before any probe")
	}
	rec.wait(t, b.Addr, Up)
	for _, st := range c.Snapshot() {
		if st.Addr == b.Addr && (st.Readds != 0 || st.Ejections != 0) {
			t.Fatalf("a backend joining counted as a re-add: %+v", st)
		}
	}
}

// SetConfig changes the limits of a running checker; states are kept.
func TestCheckerSetConfig(t *testing.T) {
	a := memcachedtest.Start(t)
	cfg := fastConfig()
	cfg.Interval = time.Hour // only the first probe: the failures below are passive
	c := New(cfg, nil, zaptest.NewLogger(t))
	defer c.Close()
	c.SetBackends(byAddr(a.Addr))
	cfg.FailureLimit = 1
	c.SetConfig(cfg)
	if got := c.Config(); got.FailureLimit != 1 || got.Interval != time.Hour {
		t.Fatalf("Config after SetConfig: %+v", got)
	}
	// One failure is enough now; the wait only rides out a racing probe.
	memcachedtest.WaitFor(t, "one failure to take the backend down with failure_limit 1", func() bool {
		c.ReportFailure(a.Addr, errors.New("reset"))
		return !c.IsUp(a.Addr)
	})
	if st := c.Snapshot()[0]; st.ConsecutiveFailures > 2 {
		t.Fatalf("went down only after %d failures with failure_limit 1", st.ConsecutiveFailures)
	}
}

// SetConfig reports whether the tuning changed, and keeps AlwaysUp as New
// set it.
func TestCheckerSetConfigChanged(t *testing.T) {
	c := New(Config{}, nil, zaptest.NewLogger(t))
	defer c.Close()
	if c.SetConfig(Config{Interval: DefaultInterval}) {
		t.Fatal("SetConfig of the defaults, spelled out, reported a change")
	}
	if !c.SetConfig(Config{FailureLimit: 7}) {
		t.Fatal("SetConfig of a new failure limit reported no change")
	}
	if c.SetConfig(Config{FailureLimit: 7, AlwaysUp: true}) || c.Config().AlwaysUp {
		t.Fatal("SetConfig switched a probing checker to AlwaysUp")
	}
}

// An AlwaysUp checker tracks its backends but never probes them and never
// takes one down: every backend, pending ones too, is up whatever is
// reported, and no event is sent.
func TestCheckerAlwaysUp(t *testing.T) {
	l, dials := countingListener(t)
	// A probing checker beside it, on a listener of its own: once that
	// one has probed five times, five intervals have passed in which the
	// AlwaysUp checker would have probed too.
	clock, clockDials := countingListener(t)
	probing := New(fastConfig(), newRecorder().on, zaptest.NewLogger(t))
	defer probing.Close()
	probing.SetBackends([]Target{{Name: "clock", Addr: clock.Addr().String()}})
	rec := newRecorder()
	cfg := fastConfig()
	cfg.FailureLimit = 1
	cfg.AlwaysUp = true
	var beforeUp atomic.Int64
	cfg.BeforeUp = func(string) error { beforeUp.Add(1); return nil }
	c := New(cfg, rec.on, zaptest.NewLogger(t))
	defer c.Close()
	c.SetBackends([]Target{{Name: "a", Addr: l.Addr().String()}})
	c.SetBackendsPending([]Target{{Name: "a", Addr: l.Addr().String()}, {Name: "b", Addr: l.Addr().String()}})
	for range 5 {
		c.ReportFailure("a", errors.New("reset"))
		c.ReportFailure("b", errors.New("reset"))
	}
	memcachedtest.WaitFor(t, "the probing checker beside it to probe five times", func() bool { return clockDials.Load() >= 5 })
	if !c.IsUp("a") || !c.IsUp("b") {
		t.Fatal("an AlwaysUp checker took a backend down")
	}
	snap := c.Snapshot()
	if len(snap) != 2 {
		t.Fatalf("tracks %d backends, want 2", len(snap))
	}
	for _, st := range snap {
		if st.State != Up || st.Joining || st.ConsecutiveFailures != 0 {
			t.Fatalf("AlwaysUp status %+v", st)
		}
	}
	if n := dials.Load(); n != 0 {
		t.Fatalf("an AlwaysUp checker probed: %d dials", n)
	}
	if n := beforeUp.Load(); n != 0 {
		t.Fatalf("BeforeUp ran %d times", n)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.evs) != 0 {
		t.Fatalf("AlwaysUp checker sent events: %+v", rec.evs)
	}
}

// byAddr names each backend by its address, as the proxy does by default.
func byAddr(addrs ...string) []Target {
	ts := make([]Target, len(addrs))
	for i, a := range addrs {
		ts[i] = Target{Name: a, Addr: a}
	}
	return ts
}

// A backend whose address is respelled keeps its name's state, and its
// probes follow the new address; Forget drops a name's state so that it
// can be listed again as a new server.
func TestCheckerRespellAndForget(t *testing.T) {
	a, b := memcachedtest.Start(t), memcachedtest.Start(t)
	rec := newRecorder()
	c := New(fastConfig(), rec.on, zaptest.NewLogger(t))
	defer c.Close()
	c.SetBackends([]Target{{Name: "cache", Addr: a.Addr}})
	a.Kill()
	rec.wait(t, a.Addr, Down)
	// The same name at a server that answers: still down until probes
	// (now sent to b) bring it back, counted as a re-add, not a new start.
	c.SetBackends([]Target{{Name: "cache", Addr: b.Addr}})
	if c.IsUp("cache") {
		t.Fatal("respelling reset the state of a down backend")
	}
	ev := rec.wait(t, b.Addr, Up)
	if ev.Name != "cache" {
		t.Fatalf("up event: %+v", ev)
	}
	st := c.Snapshot()[0]
	if st.Name != "cache" || st.Addr != b.Addr || st.Ejections != 1 || st.Readds != 1 || st.Joining {
		t.Fatalf("after respelling: %+v", st)
	}

	c.Forget("cache")
	if len(c.Snapshot()) != 0 {
		t.Fatal("Forget kept the backend")
	}
	c.SetBackendsPending([]Target{{Name: "cache", Addr: b.Addr}})
	if st := c.Snapshot()[0]; st.State != Down || !st.Joining || st.Ejections != 0 {
		t.Fatalf("listed again after Forget: %+v", st)
	}
	rec.wait(t, b.Addr, Up)
	if st := c.Snapshot()[0]; st.Joining || st.Readds != 0 {
		t.Fatalf("joined after Forget: %+v", st)
	}
}

// countingListener accepts and closes connections on a loopback port and
// counts them; it closes with the test.
func countingListener(t *testing.T) (net.Listener, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var dials atomic.Int64
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			_ = conn.Close()
		}
	}()
	t.Cleanup(func() { _ = l.Close() })
	return l, &dials
}
