package health

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Event reports a change of one backend's state.
type Event struct {
	Addr  string
	State State // the new state
	// Reason is the last failure for a backend going down, empty when one
	// comes back.
	Reason string
	// Failures is the consecutive failure count that took it down.
	Failures int
}

// Status is a point-in-time view of one backend, for stats and metrics.
type Status struct {
	Addr                string
	State               State
	ConsecutiveFailures int
	LastChange          time.Time // zero if it never changed
	Ejections, Readds   uint64
	LastError           string
}

// Checker tracks the health of a set of backends. Its methods are safe for
// concurrent use.
type Checker struct {
	cfg      Config
	onChange func(Event)
	log      *zap.Logger

	mu      sync.RWMutex
	targets map[string]*target
	events  []Event
	closed  bool

	notify chan struct{} // events has something
	stop   chan struct{}
	wg     sync.WaitGroup
}

// target is one backend: its state machine and its prober's lifetime.
type target struct {
	addr string
	t    tracker       // guarded by Checker.mu
	stop chan struct{} // ends the prober
}

// New starts a checker with no backends; SetBackends gives it some.
// onChange is called for every state change, on the checker's own
// goroutine, one event at a time; it may call the Checker's methods.
func New(cfg Config, onChange func(Event), log *zap.Logger) *Checker {
	if log == nil {
		log = zap.NewNop()
	}
	if onChange == nil {
		onChange = func(Event) {}
	}
	c := &Checker{
		cfg:      cfg.withDefaults(),
		onChange: onChange,
		log:      log,
		targets:  map[string]*target{},
		notify:   make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	c.wg.Add(1)
	go c.deliver()
	return c
}

// SetBackends makes addrs the set of backends checked. New backends start
// up and are probed at once; backends no longer listed stop being probed
// and are forgotten; the rest keep their state.
func (c *Checker) SetBackends(addrs []string) { c.setBackends(addrs, Up) }

// SetBackendsPending is SetBackends for a running fleet: new backends start
// down and come up, with an Event, like a recovered backend: after
// SuccessLimit good probes and BeforeUp. A backend added by a config
// reload thus proves itself before it gets keys, and one that was in the
// pool before (and may hold stale values) is flushed first.
func (c *Checker) SetBackendsPending(addrs []string) { c.setBackends(addrs, Down) }

func (c *Checker) setBackends(addrs []string, initial State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	want := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		want[a] = true
		if _, ok := c.targets[a]; ok {
			continue
		}
		tg := &target{addr: a, t: tracker{cfg: c.cfg, state: initial}, stop: make(chan struct{})}
		c.targets[a] = tg
		c.wg.Add(1)
		go c.probeLoop(tg)
	}
	for a, tg := range c.targets {
		if !want[a] {
			close(tg.stop)
			delete(c.targets, a)
		}
	}
}

// IsUp reports whether addr is up. An address the checker does not know
// counts as up: health never takes out what it does not track.
func (c *Checker) IsUp(addr string) bool {
	c.mu.RLock()
	tg, ok := c.targets[addr]
	up := !ok || tg.t.state == Up
	c.mu.RUnlock()
	return up
}

// ReportFailure records a failure seen on the request path: a refused
// dial, a reset, a timeout. It counts towards FailureLimit like a failed
// probe.
func (c *Checker) ReportFailure(addr string, err error) {
	c.record(addr, err)
}

// Snapshot returns the status of every backend, sorted by address.
func (c *Checker) Snapshot() []Status {
	c.mu.RLock()
	out := make([]Status, 0, len(c.targets))
	for _, tg := range c.targets {
		out = append(out, Status{
			Addr:                tg.addr,
			State:               tg.t.state,
			ConsecutiveFailures: tg.t.failures,
			LastChange:          tg.t.lastChange,
			Ejections:           tg.t.ejections,
			Readds:              tg.t.readds,
			LastError:           tg.t.lastError,
		})
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

// Close stops every prober and the event goroutine and waits for them.
// Events not yet delivered are dropped.
func (c *Checker) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	for a, tg := range c.targets {
		close(tg.stop)
		delete(c.targets, a)
	}
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()
}

// record applies one probe result (err nil for success) to addr's state
// machine and queues an event if the state changed.
func (c *Checker) record(addr string, err error) {
	now := time.Now()
	c.mu.Lock()
	tg, ok := c.targets[addr]
	if !ok || c.closed {
		c.mu.Unlock()
		return
	}
	var ev *Event
	hold := time.Duration(0)
	if err == nil {
		if tg.t.success(now) {
			ev = &Event{Addr: addr, State: Up}
		}
	} else if tg.t.failure(now, err.Error()) {
		ev = &Event{Addr: addr, State: Down, Reason: err.Error(), Failures: tg.t.failures}
		hold = tg.t.holdDown
	}
	if ev != nil {
		c.events = append(c.events, *ev)
	}
	c.mu.Unlock()
	if ev == nil {
		return
	}
	if ev.State == Down {
		c.log.Warn("backend down", zap.String("backend", addr), zap.String("reason", ev.Reason),
			zap.Int("failures", ev.Failures), zap.Duration("hold_down", hold))
	} else {
		c.log.Info("backend up", zap.String("backend", addr))
	}
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// wouldComeUp reports whether a successful probe now would bring addr back.
func (c *Checker) wouldComeUp(addr string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	tg, ok := c.targets[addr]
	return ok && tg.t.wouldComeUp(time.Now())
}

// deliver hands events to onChange in order, outside any lock.
func (c *Checker) deliver() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.notify:
		}
		c.mu.Lock()
		evs := c.events
		c.events = nil
		c.mu.Unlock()
		for _, ev := range evs {
			c.onChange(ev)
		}
	}
}

// probeLoop probes one backend at once and then every Interval until its
// target is removed or the checker closes.
func (c *Checker) probeLoop(tg *target) {
	defer c.wg.Done()
	p := &prober{addr: tg.addr}
	defer p.close()
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		cfg := c.Config() // SetConfig may change it between probes
		p.timeout = cfg.Timeout
		err := p.probe()
		if err == nil && cfg.BeforeUp != nil && c.wouldComeUp(tg.addr) {
			if err = cfg.BeforeUp(tg.addr); err != nil {
				err = fmt.Errorf("before marking %s up: %w", tg.addr, err)
			}
		}
		c.record(tg.addr, err)
		wait.Reset(cfg.Interval)
		select {
		case <-tg.stop:
			return
		case <-c.stop:
			return
		case <-wait.C:
		}
	}
}

// Config returns the configuration in force, defaults applied.
func (c *Checker) Config() Config {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cfg
}

// SetConfig changes the configuration of a running checker. Probes pick up
// the new interval and timeout from their next round; the limits apply to
// the next failure or success, and every backend keeps its state and counts.
func (c *Checker) SetConfig(cfg Config) {
	cfg = cfg.withDefaults()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cfg = cfg
	for _, tg := range c.targets {
		tg.t.cfg = cfg
	}
}
