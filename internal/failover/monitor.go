package failover

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// pollTimeout bounds one "stats backends" exchange of the monitor.
const pollTimeout = time.Second

// backendView is what one poll said about one backend.
type backendView struct {
	State  string // "up" or "down", as mcproxy reports it
	InRing bool
}

// transition is a change of a backend's view, stamped with the time the
// poll that first showed it got its reply (ns since the run's base time).
// The first poll gives every backend a transition from nothing.
type transition struct {
	At     int64
	Addr   string
	State  string
	InRing bool
}

// monitor polls the proxy's "stats backends" on a connection of its own
// and keeps the changes of every backend's state and ring membership.
type monitor struct {
	addr     string
	backends []string
	interval time.Duration
	base     time.Time

	mu          sync.Mutex
	transitions []transition
	last        map[string]backendView
	lastStats   map[string]string // every line of the last good poll
	polls       int
	pollErrors  int
	firstErr    string
	maxPoll     time.Duration

	cancel context.CancelFunc
	done   chan struct{}
}

// startMonitor starts polling addr every interval until stop.
func startMonitor(ctx context.Context, addr string, backends []string, interval time.Duration, base time.Time) *monitor {
	m := &monitor{addr: addr, backends: backends, interval: interval, base: base,
		last: map[string]backendView{}, done: make(chan struct{})}
	ctx, m.cancel = context.WithCancel(ctx)
	go m.run(ctx)
	return m
}

// stop ends the poller and waits for it.
func (m *monitor) stop() {
	m.cancel()
	<-m.done
}

func (m *monitor) run(ctx context.Context) {
	defer close(m.done)
	var t *textConn
	defer func() {
		if t != nil {
			t.Close()
		}
	}()
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	for {
		var err error
		if t == nil {
			t, err = dialText(m.addr, pollTimeout)
			if err != nil {
				t = nil
			}
		}
		if t != nil {
			start := time.Now()
			var stats map[string]string
			stats, err = poll(t, start.Add(pollTimeout))
			if err != nil {
				t.Close()
				t = nil
			} else {
				m.record(stats, time.Since(start))
			}
		}
		if err != nil {
			m.mu.Lock()
			m.pollErrors++
			if m.firstErr == "" {
				m.firstErr = err.Error()
			}
			m.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// poll runs one "stats backends" exchange.
func poll(t *textConn, deadline time.Time) (map[string]string, error) {
	t.buf = append(t.buf[:0], "stats backends\r\n"...)
	if err := t.send(deadline); err != nil {
		return nil, fmt.Errorf("stats backends: %w", err)
	}
	stats, err := t.readStats()
	if err != nil {
		return nil, fmt.Errorf("stats backends: %w", err)
	}
	return stats, nil
}

func (m *monitor) record(stats map[string]string, took time.Duration) {
	now := time.Since(m.base).Nanoseconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.polls++
	m.maxPoll = max(m.maxPoll, took)
	m.lastStats = stats
	for _, a := range m.backends {
		pre := "backend:" + a + ":"
		state, ok := stats[pre+"state"]
		if !ok {
			continue
		}
		inRing, _ := strconv.ParseBool(stats[pre+"in_ring"])
		v := backendView{State: state, InRing: inRing}
		if old, seen := m.last[a]; seen && old == v {
			continue
		}
		m.last[a] = v
		m.transitions = append(m.transitions, transition{At: now, Addr: a, State: state, InRing: inRing})
	}
}

// firstAfter returns the time of the first transition of addr at or after
// after whose view satisfies ok.
func (m *monitor) firstAfter(addr string, after int64, ok func(backendView) bool) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, tr := range m.transitions {
		if tr.Addr == addr && tr.At >= after && ok(backendView{State: tr.State, InRing: tr.InRing}) {
			return tr.At, true
		}
	}
	return 0, false
}

// current returns the last view of addr, if any poll has shown it.
func (m *monitor) current(addr string) (backendView, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.last[addr]
	return v, ok
}

// waitFor waits until the current view of addr satisfies ok, ctx ends or
// timeout passes, checking every interval, and reports whether it did.
func (m *monitor) waitFor(ctx context.Context, addr string, ok func(backendView) bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if v, seen := m.current(addr); seen && ok(v) {
			return true
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false
		}
		pause(ctx, m.interval)
	}
}

// snapshot returns a copy of what the monitor has seen.
func (m *monitor) snapshot() (trs []transition, lastStats map[string]string, polls, pollErrors int, firstErr string, maxPoll time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]transition(nil), m.transitions...), m.lastStats, m.polls, m.pollErrors, m.firstErr, m.maxPoll
}
