package soak

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/memcachedproc"
)

// ChaosConfig is the failure schedule. Every Period, starting at Start, the
// kill backend gets SIGKILL and is started again, empty, on the same port
// KillDown later; half a period after each kill the freeze backend gets
// SIGSTOP and, FreezeFor later, SIGCONT. No action is scheduled in the last
// QuietTail of the run, so the proxy can re-add everything before the end.
type ChaosConfig struct {
	KillBackend   int // index into the backends; -1 for none
	FreezeBackend int // index into the backends; -1 for none
	Start         time.Duration
	Period        time.Duration
	KillDown      time.Duration
	FreezeFor     time.Duration
	QuietTail     time.Duration
}

// RegisterFlags registers mcsoak's flags of the failure schedule on fs:
// they set cc's fields and default to their current values.
func (cc *ChaosConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&cc.KillBackend, "kill", cc.KillBackend, "index of the backend to SIGKILL and restart (-1: none)")
	fs.IntVar(&cc.FreezeBackend, "freeze", cc.FreezeBackend, "index of the backend to SIGSTOP and SIGCONT (-1: none)")
	fs.DurationVar(&cc.Start, "chaos-start", cc.Start, "time of the first kill")
	fs.DurationVar(&cc.Period, "chaos-period", cc.Period, "time between kills (a freeze half way between)")
	fs.DurationVar(&cc.KillDown, "kill-down", cc.KillDown, "time a killed backend stays dead")
	fs.DurationVar(&cc.FreezeFor, "freeze-for", cc.FreezeFor, "time a frozen backend stays frozen")
	fs.DurationVar(&cc.QuietTail, "quiet-tail", cc.QuietTail, "no failure starts in this last part of the run")
}

type actKind uint8

const (
	actKill actKind = iota
	actRestart
	actFreeze
	actThaw
)

var actNames = [...]string{"SIGKILL", "restart on the same port", "SIGSTOP", "SIGCONT"}

// action is one step of the schedule, at an offset from the run's start.
type action struct {
	at      time.Duration
	kind    actKind
	backend int
}

// validate checks the schedule against n backends.
func (cc *ChaosConfig) validate(n int) error {
	for _, b := range []int{cc.KillBackend, cc.FreezeBackend} {
		if b < -1 || b >= n {
			return fmt.Errorf("chaos: backend index %d out of range for %d backends (-1 for none)", b, n)
		}
	}
	if cc.KillBackend >= 0 && cc.KillBackend == cc.FreezeBackend {
		return fmt.Errorf("chaos: backend %d cannot be both killed and frozen", cc.KillBackend)
	}
	if cc.Period <= 0 || cc.KillDown <= 0 || cc.FreezeFor <= 0 || cc.Start < 0 || cc.QuietTail < 0 {
		return fmt.Errorf("chaos: period, kill-down and freeze-for must be > 0, start and quiet tail >= 0")
	}
	return nil
}

// schedule lists the actions of a run of length d in time order. A kill or
// a freeze is scheduled only if its recovery still fits before the quiet
// tail.
func (cc *ChaosConfig) schedule(d time.Duration) []action {
	var acts []action
	last := d - cc.QuietTail
	for t := cc.Start; t < last; t += cc.Period {
		if cc.KillBackend >= 0 && t+cc.KillDown <= last {
			acts = append(acts, action{t, actKill, cc.KillBackend}, action{t + cc.KillDown, actRestart, cc.KillBackend})
		}
		if f := t + cc.Period/2; cc.FreezeBackend >= 0 && f+cc.FreezeFor <= last {
			acts = append(acts, action{f, actFreeze, cc.FreezeBackend}, action{f + cc.FreezeFor, actThaw, cc.FreezeBackend})
		}
	}
	sort.SliceStable(acts, func(i, j int) bool { return acts[i].at < acts[j].at })
	return acts
}

// runChaos performs acts on servers at their offsets from base until ctx
// ends, and returns what it did. now gives the checker time.
func runChaos(ctx context.Context, acts []action, servers []*memcachedproc.Server, base time.Time, now func() int64) []Event {
	var events []Event
	for _, a := range acts {
		if wait := time.Until(base.Add(a.at)); wait > 0 && !pause(ctx, wait) {
			break
		}
		s := servers[a.backend]
		pid := s.PID()
		var err error
		switch a.kind {
		case actKill:
			s.Kill()
		case actRestart:
			err = s.Relaunch()
		case actFreeze:
			err = s.Freeze()
		case actThaw:
			err = s.Thaw()
		}
		what := fmt.Sprintf("%s (pid %d)", actNames[a.kind], pid)
		if a.kind == actRestart {
			what = fmt.Sprintf("%s (pid %d)", actNames[a.kind], s.PID())
		}
		if err != nil {
			what += ": " + err.Error()
		}
		events = append(events, Event{At: now(), Source: "chaos", Backend: s.Addr, What: what})
	}
	return events
}
