package soak

import (
	"fmt"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/backendwatch"
)

// pollTimeout bounds one "stats backends" exchange of the watcher.
const pollTimeout = 2 * time.Second

// Event is one line of the run's timeline: an action of the chaos schedule,
// or a change the proxy reported in "stats backends".
type Event struct {
	At      int64  // checker time
	Source  string // "chaos" or "proxy"
	Backend string // address
	What    string
}

// ProxyView is the summary of "stats backends" for the report.
type ProxyView struct {
	Polls, PollErrors int
	FirstPollError    string
	Ejections, Readds map[string]uint64 // the last poll's counts per backend
	InRing            map[string]bool   // per backend, at the last poll
}

// proxyTimeline turns what the watcher saw into timeline events and the
// report's summary.
func proxyTimeline(w *backendwatch.Watcher) ([]Event, ProxyView) {
	var events []Event
	for _, c := range w.Changes() {
		v := c.New
		what := fmt.Sprintf("state %s, in_ring %v, ejections %d, readds %d", v.State, v.InRing, v.Ejections, v.Readds)
		if !c.First {
			what = fmt.Sprintf("%s -> %s", describeChange(c.Old, v), what)
		}
		events = append(events, Event{At: c.At, Source: "proxy", Backend: c.Backend, What: what})
	}
	s := w.Summary()
	pv := ProxyView{Polls: s.Polls, PollErrors: s.PollErrors, FirstPollError: s.FirstPollError,
		Ejections: map[string]uint64{}, Readds: map[string]uint64{}, InRing: map[string]bool{}}
	for a, v := range s.Views {
		pv.Ejections[a], pv.Readds[a], pv.InRing[a] = v.Ejections, v.Readds, v.InRing
	}
	return events, pv
}

// describeChange names what changed between two views of a backend.
func describeChange(old, v backendwatch.View) string {
	switch {
	case old.InRing && !v.InRing:
		return "ejected"
	case !old.InRing && v.InRing:
		return "re-added"
	case old.State != v.State:
		return "marked " + v.State
	}
	return "counters moved"
}
