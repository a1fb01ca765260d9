// Package backendwatch follows what an mcproxy publishes about its
// backends: it polls "stats backends" over the memcached protocol on a
// connection of its own and records every change of a backend's state,
// ring membership, ejection and re-add counts. mcfailover reads its moments
// (ejection, re-adding) from it and mcsoak its timeline; neither reads the
// proxy's log, whose wording is free to change.
package backendwatch

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/textclient"
)

// View is what one poll said about one backend: the fields
// backend:<name>:<field> of "stats backends".
type View struct {
	State      string // "up" or "down"
	InRing     bool   // in_ring: the backend owns keys in the current ring
	Ejections  uint64 // times the health checker marked it down
	Readds     uint64 // times it marked it up again
	LastChange int64  // last_change: Unix seconds of the last state change, 0 if none
	LastError  string // last_error, empty if none
}

// same reports whether v and o show the same state, membership and counts;
// a new last_error alone is not a change.
func (v View) same(o View) bool {
	return v.State == o.State && v.InRing == o.InRing && v.Ejections == o.Ejections && v.Readds == o.Readds
}

// Change is a change of a backend's view, stamped with the time the poll
// that first showed it got its reply (as the Watcher's clock gives it). The
// first poll that shows a backend gives it a Change with First set.
type Change struct {
	At      int64
	Backend string
	First   bool
	Old     View // zero when First
	New     View
}

// Summary is what the Watcher has seen so far.
type Summary struct {
	Polls, PollErrors int
	FirstPollError    string
	MaxPoll           time.Duration
	// Last is every line of the last good poll, name -> value.
	Last map[string]string
	// Views is each backend's view at the last poll that showed it.
	Views map[string]View
}

// Watcher polls an mcproxy's "stats backends" every interval until Stop.
// Its goroutine owns the connection; mu guards the rest.
type Watcher struct {
	addr     string
	backends []string
	interval time.Duration
	timeout  time.Duration
	now      func() int64

	mu      sync.Mutex
	changes []Change
	sum     Summary

	cancel context.CancelFunc
	done   chan struct{}
}

// Start polls addr (a loopback address) every interval until Stop or ctx
// ends. backends are the names to follow (as in backend:<name>:state);
// timeout bounds one exchange; now stamps the changes.
func Start(ctx context.Context, addr string, backends []string, interval, timeout time.Duration, now func() int64) *Watcher {
	w := &Watcher{addr: addr, backends: backends, interval: interval, timeout: timeout, now: now,
		sum: Summary{Views: map[string]View{}}, done: make(chan struct{})}
	ctx, w.cancel = context.WithCancel(ctx)
	go w.run(ctx)
	return w
}

// Stop ends the poller and waits for it. It may be called again.
func (w *Watcher) Stop() {
	w.cancel()
	<-w.done
}

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	var c *textclient.Conn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	tick := time.NewTicker(w.interval)
	defer tick.Stop()
	for {
		var err error
		if c == nil {
			if c, err = textclient.Dial(w.addr, w.timeout); err != nil {
				c = nil
			}
		}
		if c != nil {
			start := time.Now()
			var stats map[string]string
			if stats, err = c.Stats("backends", start.Add(w.timeout)); err != nil {
				c.Close()
				c = nil
			} else {
				w.record(stats, time.Since(start))
			}
		}
		if err != nil {
			w.mu.Lock()
			w.sum.PollErrors++
			if w.sum.FirstPollError == "" {
				w.sum.FirstPollError = err.Error()
			}
			w.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (w *Watcher) record(stats map[string]string, took time.Duration) {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sum.Polls++
	w.sum.MaxPoll = max(w.sum.MaxPoll, took)
	w.sum.Last = stats
	for _, b := range w.backends {
		v, ok := parseView(stats, b)
		if !ok {
			continue
		}
		old, seen := w.sum.Views[b]
		w.sum.Views[b] = v
		if seen && old.same(v) {
			continue
		}
		w.changes = append(w.changes, Change{At: now, Backend: b, First: !seen, Old: old, New: v})
	}
}

// parseView reads backend b's fields from a "stats backends" reply.
func parseView(stats map[string]string, b string) (View, bool) {
	pre := "backend:" + b + ":"
	state, ok := stats[pre+"state"]
	if !ok {
		return View{}, false
	}
	v := View{State: state, LastError: stats[pre+"last_error"]}
	v.InRing, _ = strconv.ParseBool(stats[pre+"in_ring"])
	v.Ejections, _ = strconv.ParseUint(stats[pre+"ejections"], 10, 64)
	v.Readds, _ = strconv.ParseUint(stats[pre+"readds"], 10, 64)
	v.LastChange, _ = strconv.ParseInt(stats[pre+"last_change"], 10, 64)
	return v, true
}

// Changes returns a copy of every change so far, in time order.
func (w *Watcher) Changes() []Change {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Change(nil), w.changes...)
}

// Summary returns a copy of what the Watcher has seen so far.
func (w *Watcher) Summary() Summary {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.sum
	s.Views = make(map[string]View, len(w.sum.Views))
	for b, v := range w.sum.Views {
		s.Views[b] = v
	}
	return s
}

// Current returns the last view of backend b, if any poll has shown it.
func (w *Watcher) Current(b string) (View, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, ok := w.sum.Views[b]
	return v, ok
}

// FirstAfter returns the first change of backend b at or after after whose
// new view satisfies ok.
func (w *Watcher) FirstAfter(b string, after int64, ok func(View) bool) (Change, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.changes {
		if c.Backend == b && c.At >= after && ok(c.New) {
			return c, true
		}
	}
	return Change{}, false
}

// AllInRing reports whether the last poll showed every backend in the ring.
func (w *Watcher) AllInRing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range w.backends {
		if v, ok := w.sum.Views[b]; !ok || !v.InRing {
			return false
		}
	}
	return true
}

// WaitFor waits until the current view of backend b satisfies ok, ctx ends
// or timeout passes, checking every poll interval, and reports whether it
// did.
func (w *Watcher) WaitFor(ctx context.Context, b string, ok func(View) bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		if v, seen := w.Current(b); seen && ok(v) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}
