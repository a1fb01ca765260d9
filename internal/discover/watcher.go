package discover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Options configure a Watcher.
type Options struct {
	// Spec says what to look up; New validates it and applies its defaults.
	Spec Spec
	// OnChange receives each new backend list (sorted by Name; the
	// receiver owns the slice). It runs on the Watcher's goroutine, so a
	// slow OnChange delays the next lookup, and Stop waits for it.
	OnChange func([]Backend)
	// MaxRemove caps how many backends DNS may take out of the list over
	// a streak of removals, given the size of the list before the streak
	// (the proxy applies health.max_ejected here): answers that keep
	// lacking backends never take more than that in all. The streak ends
	// when the backends it took out are back, or on ResetRemovals. A
	// result below 1 removes none; nil means no cap.
	MaxRemove func(total int) int
	// Logger logs failed and empty lookups, once per streak; nil: none.
	Logger *zap.Logger
}

// Counts are a Watcher's lookup counters since it started.
type Counts struct {
	// Lookups is every lookup done, good or not.
	Lookups uint64
	// Failures is lookups with no answer: an error, SERVFAIL, a timeout.
	Failures uint64
	// Empty is lookups whose answer named no backend.
	Empty uint64
	// Capped is backends that would have left but for MaxRemove, summed
	// over lookups.
	Capped uint64
	// LastSuccess is when the last good (non-empty) answer came; zero
	// before the first.
	LastSuccess time.Time
}

// Watcher looks up a Spec's backends every interval on its own goroutine
// and calls OnChange when the list changes. Its list and streak state are
// owned by that goroutine; Counts and Backends may be called from any.
type Watcher struct {
	spec      Spec
	onChange  func([]Backend)
	log       *zap.Logger
	resolver  *net.Resolver
	members   *members
	tick      <-chan time.Time // nil: a ticker every spec.Interval
	lookups   atomic.Uint64
	failures  atomic.Uint64
	empty     atomic.Uint64
	capped    atomic.Uint64
	reset     atomic.Bool  // ResetRemovals was called; the goroutine clears it
	lastGood  atomic.Int64 // unix nanoseconds of the last good answer; 0: none
	mu        sync.Mutex
	current   []Backend // the last list delivered
	stop      chan struct{}
	done      chan struct{}
	startOnce sync.Once
	started   bool // set under startOnce
	stopOnce  sync.Once
	streak    streak // owned by the goroutine
}

// streak is a run of bad lookups of one kind, logged when it starts and
// when it ends, so an outage writes two lines, not one per interval.
type streak struct {
	kind  string // "", "failed" or "empty"
	count int
}

// New validates o.Spec and returns a Watcher that has not started.
func New(o Options) (*Watcher, error) {
	if err := o.Spec.Validate(); err != nil {
		return nil, err
	}
	spec := o.Spec.WithDefaults()
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	what := zap.String("srv", spec.SRV)
	if spec.SRV == "" {
		what = zap.String("host", spec.Host)
	}
	return &Watcher{
		spec:     spec,
		onChange: o.OnChange,
		log:      log.With(what),
		resolver: newResolver(spec),
		members:  newMembers(spec.MissingLimit, o.MaxRemove),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}, nil
}

// Start looks up at once and then every interval, on a new goroutine, until
// Stop. A second Start does nothing.
func (w *Watcher) Start() {
	w.startOnce.Do(func() {
		w.started = true
		go w.run()
	})
}

// Stop ends the goroutine, aborting a lookup under way, and waits for it.
// It may be called more than once, and before Start.
func (w *Watcher) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.startOnce.Do(func() {}) // a later Start does nothing
	if w.started {            // startOnce orders this read after Start's write
		<-w.done
	}
}

// Counts returns the lookup counters.
func (w *Watcher) Counts() Counts {
	c := Counts{Lookups: w.lookups.Load(), Failures: w.failures.Load(),
		Empty: w.empty.Load(), Capped: w.capped.Load()}
	if ns := w.lastGood.Load(); ns != 0 {
		c.LastSuccess = time.Unix(0, ns)
	}
	return c
}

// ResetRemovals ends the streak of removals that MaxRemove counts against,
// from the next answer on: the cap then counts from the list as it is. The
// proxy calls it on an operator's reload, the way to let a pool shrink by
// more than the cap on purpose. Any goroutine may call it.
func (w *Watcher) ResetRemovals() { w.reset.Store(true) }

// Backends returns the last list delivered to OnChange (nil before the
// first good answer), a copy the caller owns.
func (w *Watcher) Backends() []Backend {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.current == nil {
		return nil
	}
	return append([]Backend(nil), w.current...)
}

func (w *Watcher) run() {
	defer close(w.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // a Stop aborts a lookup under way
		select {
		case <-w.stop:
			cancel()
		case <-w.done:
		}
	}()
	tick := w.tick
	if tick == nil {
		t := time.NewTicker(w.spec.Interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		w.once(ctx)
		select {
		case <-w.stop:
			return
		case <-tick:
		}
	}
}

// once does one lookup and applies its answer.
func (w *Watcher) once(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, w.spec.LookupTimeout)
	answer, err := lookup(lctx, w.resolver, w.spec)
	cancel()
	if ctx.Err() != nil {
		return // stopping: not a DNS failure
	}
	defer w.lookups.Add(1) // last, so a reader of Counts sees the result applied
	if err != nil {
		kind := "failed"
		if errors.Is(err, errEmpty) {
			kind = "empty"
			w.empty.Add(1)
		} else {
			w.failures.Add(1)
		}
		w.bad(kind, err)
		return
	}
	w.good()
	w.lastGood.Store(time.Now().UnixNano())
	if w.reset.Swap(false) {
		w.members.resetRemovals()
	}
	changed, capped := w.members.apply(answer)
	if capped > 0 {
		w.capped.Add(uint64(capped))
		w.log.Info("discover: backends missing from DNS kept by the removal cap", zap.Int("kept", capped))
	}
	w.mu.Lock()
	first := w.current == nil
	if changed || first {
		w.current = w.members.snapshot()
	}
	list := w.current
	w.mu.Unlock()
	if (changed || first) && w.onChange != nil {
		w.onChange(append([]Backend(nil), list...))
	}
}

// bad logs the first lookup of a streak of failed or empty ones; the list
// stays as it is.
func (w *Watcher) bad(kind string, err error) {
	if w.streak.kind == kind {
		w.streak.count++
		return
	}
	w.good()
	w.streak = streak{kind: kind, count: 1}
	w.log.Warn(fmt.Sprintf("discover: lookup %s; keeping the last good backend list", kind), zap.Error(err))
}

// good ends a streak of bad lookups, saying how long it was.
func (w *Watcher) good() {
	if w.streak.kind != "" {
		w.log.Info(fmt.Sprintf("discover: lookups no longer %s", w.streak.kind), zap.Int("lookups", w.streak.count))
	}
	w.streak = streak{}
}
