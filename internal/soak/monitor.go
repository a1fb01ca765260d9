package soak

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// pollTimeout bounds one "stats backends" exchange of the monitor.
const pollTimeout = 2 * time.Second

// Event is one line of the run's timeline: an action of the chaos schedule,
// or a change the proxy reported in "stats backends".
type Event struct {
	At      int64  // checker time
	Source  string // "chaos" or "proxy"
	Backend string // address
	What    string
}

// backendView is what one poll said about one backend.
type backendView struct {
	state            string
	inRing           bool
	ejections, readd uint64
}

// monitor polls the proxy's "stats backends" on a connection of its own and
// records every change of a backend's state, ring membership, ejection and
// re-add counts. Its goroutine owns the connection; mu guards the rest.
type monitor struct {
	addr     string
	backends []string
	interval time.Duration
	now      func() int64

	mu         sync.Mutex
	events     []Event
	last       map[string]backendView
	polls      int
	pollErrors int
	firstErr   string

	cancel context.CancelFunc
	done   chan struct{}
}

// startMonitor polls addr every interval until stop.
func startMonitor(ctx context.Context, addr string, backends []string, interval time.Duration, now func() int64) *monitor {
	m := &monitor{addr: addr, backends: backends, interval: interval, now: now,
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
			if t, err = dialText(m.addr, pollTimeout); err != nil {
				t = nil
			}
		}
		if t != nil {
			var stats map[string]string
			if stats, err = pollBackends(t); err != nil {
				t.Close()
				t = nil
			} else {
				m.record(stats)
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

// pollBackends runs one "stats backends" exchange.
func pollBackends(t *textConn) (map[string]string, error) {
	t.buf = append(t.buf[:0], "stats backends\r\n"...)
	if err := t.flush(time.Now().Add(pollTimeout)); err != nil {
		return nil, fmt.Errorf("stats backends: %w", err)
	}
	stats, err := t.readStats()
	if err != nil {
		return nil, fmt.Errorf("stats backends: %w", err)
	}
	return stats, nil
}

func (m *monitor) record(stats map[string]string) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.polls++
	for _, a := range m.backends {
		pre := "backend:" + a + ":"
		state, ok := stats[pre+"state"]
		if !ok {
			continue
		}
		v := backendView{state: state}
		v.inRing, _ = strconv.ParseBool(stats[pre+"in_ring"])
		v.ejections, _ = strconv.ParseUint(stats[pre+"ejections"], 10, 64)
		v.readd, _ = strconv.ParseUint(stats[pre+"readds"], 10, 64)
		old, seen := m.last[a]
		m.last[a] = v
		if seen && old == v {
			continue
		}
		what := fmt.Sprintf("state %s, in_ring %v, ejections %d, readds %d", v.state, v.inRing, v.ejections, v.readd)
		if seen {
			what = fmt.Sprintf("%s -> %s", describeChange(old, v), what)
		}
		m.events = append(m.events, Event{At: now, Source: "proxy", Backend: a, What: what})
	}
}

// describeChange names what changed between two views of a backend.
func describeChange(old, v backendView) string {
	switch {
	case old.inRing && !v.inRing:
		return "ejected"
	case !old.inRing && v.inRing:
		return "re-added"
	case old.state != v.state:
		return "marked " + v.state
	}
	return "counters moved"
}

// ProxyView is the monitor's summary for the report.
type ProxyView struct {
	Polls, PollErrors int
	FirstPollError    string
	Ejections, Readds map[string]uint64 // the last poll's counts per backend
	InRing            map[string]bool   // per backend, at the last poll
}

// view returns the events so far and the summary.
func (m *monitor) view() ([]Event, ProxyView) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pv := ProxyView{Polls: m.polls, PollErrors: m.pollErrors, FirstPollError: m.firstErr,
		Ejections: map[string]uint64{}, Readds: map[string]uint64{}, InRing: map[string]bool{}}
	for a, v := range m.last {
		pv.Ejections[a], pv.Readds[a], pv.InRing[a] = v.ejections, v.readd, v.inRing
	}
	return append([]Event(nil), m.events...), pv
}

// allInRing reports whether the last poll showed every backend in the ring.
func (m *monitor) allInRing() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range m.backends {
		if v, ok := m.last[a]; !ok || !v.inRing {
			return false
		}
	}
	return true
}
