package health

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Target is one backend to check. Name identifies it to the checker
// (events, IsUp, ReportFailure, Forget); Addr is where probes go. A name
// whose address changes keeps its state: probes follow the new address.
type Target struct {
	Name, Addr string
}

// Event reports a change of one backend's state.
type Event struct {
	Name  string
	Addr  string // where it was probed
	State State  // the new state
	// Reason is the last failure for a backend going down, empty when one
	// comes back.
	Reason string
	// Failures is the consecutive failure count that took it down.
	Failures int
}

// Status is a point-in-time view of one backend, for stats and metrics.
type Status struct {
	Name, Addr string
	State      State
	// Joining: down since it was given to SetBackendsPending, and never up
	// since. Such a backend has not failed; it has yet to prove itself.
	Joining             bool
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
	targets map[string]*target // by name
	events  []Event
	closed  bool

	notify chan struct{} // events has something
	stop   chan struct{}
	wg     sync.WaitGroup
}

// target is one backend: its state machine and its prober's lifetime.
type target struct {
	name string
	addr string        // guarded by Checker.mu: SetBackends may change it
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

// SetBackends makes ts the set of backends checked. New names start up and
// are probed at once; names no longer listed stop being probed and are
// forgotten; the rest keep their state, and are probed at their new
// address if it changed.
func (c *Checker) SetBackends(ts []Target) { c.setBackends(ts, Up) }

// SetBackendsPending is SetBackends for a running fleet: new backends start
// down and come up, with an Event, like a recovered backend: after
// SuccessLimit good probes and BeforeUp. A backend added by a config
// reload thus proves itself before it gets keys, and one that was in the
// pool before (and may hold stale values) is flushed first.
func (c *Checker) SetBackendsPending(ts []Target) { c.setBackends(ts, Down) }

func (c *Checker) setBackends(ts []Target, initial State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if c.cfg.AlwaysUp {
		initial = Up // no probe would ever bring a pending backend up
	}
	want := make(map[string]bool, len(ts))
	for _, x := range ts {
		want[x.Name] = true
		if tg, ok := c.targets[x.Name]; ok {
			tg.addr = x.Addr
			continue
		}
		tg := &target{name: x.Name, addr: x.Addr, t: tracker{cfg: c.cfg, state: initial, joining: initial == Down},
			stop: make(chan struct{})}
		c.targets[x.Name] = tg
		if !c.cfg.AlwaysUp {
			c.wg.Add(1)
			go c.probeLoop(tg)
		}
	}
	for a, tg := range c.targets {
		if !want[a] {
			close(tg.stop)
			delete(c.targets, a)
		}
	}
}

// Forget stops checking the named backend and drops its state, so that the
// next SetBackends or SetBackendsPending that lists it starts it anew: the
// proxy does this when a name is moved to a different server.
func (c *Checker) Forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tg, ok := c.targets[name]; ok && !c.closed {
		close(tg.stop)
		delete(c.targets, name)
	}
}

// IsUp reports whether the named backend is up. A name the checker does
// not know counts as up: health never takes out what it does not track.
func (c *Checker) IsUp(name string) bool {
	c.mu.RLock()
	tg, ok := c.targets[name]
	up := !ok || tg.t.state == Up
	c.mu.RUnlock()
	return up
}

// ReportFailure records a failure seen on the request path: a refused
// dial, a reset, a timeout. It counts towards FailureLimit like a failed
// probe (and is ignored with Config.AlwaysUp).
func (c *Checker) ReportFailure(name string, err error) {
	c.record(name, err)
}

// Snapshot returns the status of every backend, sorted by name.
func (c *Checker) Snapshot() []Status {
	c.mu.RLock()
	out := make([]Status, 0, len(c.targets))
	for _, tg := range c.targets {
		out = append(out, Status{
			Name:                tg.name,
			Addr:                tg.addr,
			State:               tg.t.state,
			Joining:             tg.t.joining,
			ConsecutiveFailures: tg.t.failures,
			LastChange:          tg.t.lastChange,
			Ejections:           tg.t.ejections,
			Readds:              tg.t.readds,
			LastError:           tg.t.lastError,
		})
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
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

// record applies one probe result (err nil for success) to the named
// backend's state machine and queues an event if the state changed.
func (c *Checker) record(name string, err error) { c.apply(name, nil, err) }

// recordFor is record for the result of tg's own probe, which is dropped
// if tg has been forgotten meanwhile (its name may be a new server now).
func (c *Checker) recordFor(tg *target, err error) { c.apply(tg.name, tg, err) }

func (c *Checker) apply(name string, from *target, err error) {
	now := time.Now()
	c.mu.Lock()
	tg, ok := c.targets[name]
	if !ok || c.closed || c.cfg.AlwaysUp || (from != nil && from != tg) {
		c.mu.Unlock()
		return
	}
	addr := tg.addr
	var ev *Event
	hold := time.Duration(0)
	if err == nil {
		if tg.t.success(now) {
			ev = &Event{Name: name, Addr: addr, State: Up}
		}
	} else if tg.t.failure(now, err.Error()) {
		ev = &Event{Name: name, Addr: addr, State: Down, Reason: err.Error(), Failures: tg.t.failures}
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
		c.log.Warn("backend down", zap.String("backend", name), zap.String("addr", addr), zap.String("reason", ev.Reason),
			zap.Int("failures", ev.Failures), zap.Duration("hold_down", hold))
	} else {
		c.log.Info("backend up", zap.String("backend", name), zap.String("addr", addr))
	}
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// wouldComeUp reports whether a successful probe now would bring tg back.
func (c *Checker) wouldComeUp(tg *target) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.targets[tg.name] == tg && tg.t.wouldComeUp(time.Now())
}

// addrOf returns where tg is probed now.
func (c *Checker) addrOf(tg *target) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return tg.addr
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
	p := &prober{}
	defer p.close()
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		cfg := c.Config() // SetConfig may change it between probes
		p.timeout, p.dial = cfg.Timeout, cfg.Dial
		if addr := c.addrOf(tg); addr != p.addr {
			p.close() // respelled by SetBackends: probe the new address
			p.addr = addr
		}
		err := p.probe()
		if err == nil && cfg.BeforeUp != nil && c.wouldComeUp(tg) {
			if err = cfg.BeforeUp(p.addr); err != nil {
				err = fmt.Errorf("before marking %s up: %w", tg.name, err)
			}
		}
		c.recordFor(tg, err)
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

// SetConfig changes the configuration of a running checker and reports
// whether its tuning (everything but BeforeUp and AlwaysUp) changed. Probes
// pick up the new interval and timeout from their next round; the limits
// apply to the next failure or success, and every backend keeps its state
// and counts. AlwaysUp stays as New set it.
func (c *Checker) SetConfig(cfg Config) bool {
	cfg = cfg.withDefaults()
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg.AlwaysUp, cfg.Dial = c.cfg.AlwaysUp, c.cfg.Dial
	changed := !cfg.sameTuning(c.cfg)
	c.cfg = cfg
	for _, tg := range c.targets {
		tg.t.cfg = cfg
	}
	return changed
}
