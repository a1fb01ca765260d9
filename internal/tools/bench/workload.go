package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/loadgen"
	"github.com/mcproxy/mcproxy/internal/tools/textclient"
)

// Limits on a Config; they keep a typo from turning into a runaway test.
const (
	maxConns     = 10000
	maxPipeline  = 10000
	maxMultiGet  = 1000
	maxKeys      = 100_000_000
	maxValueSize = 1 << 20
	maxKeyLen    = 250 // memcached's key limit
	// prefillDepth is how many sets a prefill connection keeps in one batch.
	prefillDepth = 64
)

// Config describes one load run. DefaultConfig returns the defaults mcbench
// uses; Run validates every field.
type Config struct {
	// Addr is the target, "host:port"; it must be a loopback address (see
	// textclient.ResolveLoopback).
	Addr string
	// Conns is the number of connections, each driven by one goroutine.
	Conns int
	// Pipeline is the number of commands a connection sends in one write
	// before it reads their replies.
	Pipeline int
	// Duration bounds the measured phase; it must be positive.
	Duration time.Duration
	// Warmup runs the same load, unmeasured, before Duration starts.
	Warmup time.Duration
	// Requests, when positive, ends the measured phase after that many
	// commands have been sent.
	Requests int64
	// Timeout bounds every connect and every batch (write plus replies).
	Timeout time.Duration
	// Keys is the key space: keys are KeyPrefix followed by 0..Keys-1.
	Keys      int
	KeyPrefix string
	// ValueSize is the size in bytes of every value set. A value begins with
	// its key (loadgen.AppendValue) so that get replies can be checked
	// against the key asked for.
	ValueSize int
	// GetWeight:SetWeight is the mix of commands, e.g. 9:1.
	GetWeight, SetWeight int
	// MultiGet is the number of keys each get asks for.
	MultiGet int
	// Prefill sets every key once, before the warmup, so gets hit.
	Prefill bool
	// Seed seeds the per-connection random generators; the same seed gives
	// every target the same key sequence.
	Seed uint64
	// WatchPID, when not 0, is a process (the target) whose CPU time and
	// system calls are sampled at the start and end of the measured phase.
	WatchPID int
	// TLS, when not nil, makes every connection TLS (tls.go).
	TLS *tls.Config
	// NewClientEvery, when positive, runs the new-client probe over the
	// measured phase: a client connects this often, asks "version" and
	// leaves (new_clients.go).
	NewClientEvery time.Duration
}

// DefaultConfig returns the defaults of mcbench.
func DefaultConfig() Config {
	return Config{
		Addr:      "127.0.0.1:11211",
		Conns:     50,
		Pipeline:  1,
		Duration:  10 * time.Second,
		Timeout:   time.Second,
		Keys:      100000,
		KeyPrefix: "mcbench:",
		ValueSize: 100,
		GetWeight: 9,
		SetWeight: 1,
		MultiGet:  1,
		Seed:      1,
	}
}

// ParseRatio parses a get:set mix such as "9:1", "1:0" (gets only) or "0:1"
// (sets only).
func ParseRatio(s string) (get, set int, err error) {
	g, st, ok := strings.Cut(s, ":")
	if ok {
		get, err = strconv.Atoi(g)
		if err == nil {
			set, err = strconv.Atoi(st)
		}
	}
	if !ok || err != nil || get < 0 || set < 0 || get+set == 0 || get > 1e6 || set > 1e6 {
		return 0, 0, fmt.Errorf("ratio %q: want get:set with non-negative integers, not both 0, e.g. 9:1", s)
	}
	return get, set, nil
}

// validate checks c and returns the loopback address to dial.
func (c *Config) validate() (string, error) {
	dial, err := textclient.ResolveLoopback(c.Addr)
	if err != nil {
		return "", err
	}
	var problems []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			problems = append(problems, fmt.Errorf(format, args...))
		}
	}
	check(c.Conns >= 1 && c.Conns <= maxConns, "conns must be 1..%d, got %d", maxConns, c.Conns)
	check(c.Pipeline >= 1 && c.Pipeline <= maxPipeline, "pipeline must be 1..%d, got %d", maxPipeline, c.Pipeline)
	check(c.Duration > 0, "duration must be positive, got %v", c.Duration)
	check(c.Warmup >= 0, "warmup must not be negative, got %v", c.Warmup)
	check(c.NewClientEvery >= 0, "new-client interval must not be negative, got %v", c.NewClientEvery)
	check(c.Requests >= 0, "requests must not be negative, got %d", c.Requests)
	check(c.Timeout > 0, "timeout must be positive, got %v", c.Timeout)
	check(c.WatchPID >= 0, "watched pid must not be negative, got %d", c.WatchPID)
	check(c.Keys >= 1 && c.Keys <= maxKeys, "keys must be 1..%d, got %d", maxKeys, c.Keys)
	check(c.ValueSize >= 0 && c.ValueSize <= maxValueSize, "value size must be 0..%d, got %d", maxValueSize, c.ValueSize)
	check(c.GetWeight >= 0 && c.SetWeight >= 0 && c.GetWeight+c.SetWeight > 0, "ratio must be get:set with non-negative weights, not both 0")
	check(c.MultiGet >= 1 && c.MultiGet <= maxMultiGet, "multiget must be 1..%d, got %d", maxMultiGet, c.MultiGet)
	longest := len(c.KeyPrefix) + len(strconv.Itoa(max(c.Keys-1, 0)))
	check(longest <= maxKeyLen, "key prefix too long: keys would be up to %d bytes, memcached allows %d", longest, maxKeyLen)
	for i := 0; i < len(c.KeyPrefix); i++ {
		if b := c.KeyPrefix[i]; b <= ' ' || b == 0x7f {
			problems = append(problems, fmt.Errorf("key prefix %q has a space or control character", c.KeyPrefix))
			break
		}
	}
	if err := errors.Join(problems...); err != nil {
		return "", err
	}
	return dial, nil
}

// spec returns the load of one connection.
func (c *Config) spec() *loadgen.Spec {
	return &loadgen.Spec{Keys: c.Keys, KeyPrefix: c.KeyPrefix, ValueSize: c.ValueSize,
		GetWeight: c.GetWeight, SetWeight: c.SetWeight, MultiGet: c.MultiGet, Timeout: c.Timeout, Seed: c.Seed,
		TLS: c.TLS}
}

// Count names one of the counts of a run.
type Count int

// The counts of a run, the indexes of Counts.
const (
	// Ops counts commands that got a valid reply; Gets and Sets split it.
	Ops Count = iota
	Gets
	Sets
	// Hits and Misses count keys asked for by successful gets.
	Hits
	Misses
	// ErrorReplies counts SERVER_ERROR, CLIENT_ERROR or ERROR in place of a
	// reply.
	ErrorReplies
	// ProtocolErrors counts malformed or unexpected replies (the connection
	// is then closed and reopened).
	ProtocolErrors
	// Timeouts counts commands whose batch ran past Timeout.
	Timeouts
	// ConnErrors counts commands lost to a failed connect, read or write,
	// and failed connects themselves.
	ConnErrors
	// Reconnects counts connections reopened after an error.
	Reconnects
	// Prefilled counts keys stored by the prefill; PrefillErrors its
	// failures.
	Prefilled
	PrefillErrors
	numCounts
)

// Counts holds one value per Count. Each connection counts into its own,
// and Run adds them up.
type Counts [numCounts]uint64

// add adds o to c.
func (c *Counts) add(o *Counts) {
	for i := range c {
		c[i] += o[i]
	}
}

// Result is what a run measured. Counts cover only the measured phase.
type Result struct {
	Config Config
	// Elapsed is the measured phase: from its start until the last
	// connection stopped (the end of its last batch, which may run up to
	// Timeout past Duration).
	Elapsed time.Duration
	// Counts are what the run counted, one value per Count.
	Counts Counts
	// Errors counts commands that failed: the sum of ErrorReplies,
	// ProtocolErrors, Timeouts and ConnErrors.
	Errors uint64
	// FirstError describes the first error seen, for diagnosis.
	FirstError string
	// Latency holds the latency of every successful command: from the write
	// of its batch to the end of its reply.
	Latency *Histogram
	// Proc is what Config.WatchPID cost over the measured phase; nil when
	// no process was watched.
	Proc *ProcSample
	// NewClients holds the new-client probe's times from dial to the
	// reply to "version", and NewClientErrors its failures; nil and 0
	// when Config.NewClientEvery is 0.
	NewClients      *Histogram
	NewClientErrors uint64
}

// Keys returns the keys handled in the measured phase: every key a
// successful get asked for, and every set.
func (r *Result) Keys() uint64 { return r.Counts[Hits] + r.Counts[Misses] + r.Counts[Sets] }

// OpsPerSec returns successful commands per second of the measured phase.
func (r *Result) OpsPerSec() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Counts[Ops]) / r.Elapsed.Seconds()
}

// HitRatio returns hits/(hits+misses), or 0 with no gets.
func (r *Result) HitRatio() float64 {
	hits, misses := r.Counts[Hits], r.Counts[Misses]
	if hits+misses == 0 {
		return 0
	}
	return float64(hits) / float64(hits+misses)
}

// counters are one worker's share of a Result.
type counters struct {
	n          Counts
	firstErr   string
	firstErrAt time.Time
	lastEnd    time.Time
	latency    Histogram
}

func (c *counters) noteErr(err error) {
	if c.firstErr == "" {
		c.firstErr, c.firstErrAt = err.Error(), time.Now()
	}
}

// Run drives the load described by cfg and returns what it measured. It
// returns an error, before sending any load, when cfg is invalid, the target
// is not a loopback address, or nothing accepts connections there. It stops
// by itself after Warmup+Duration (or Requests commands), or earlier when ctx
// ends; then it returns the partial result and ctx's error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	dialAddr, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: cfg.Timeout}
	probe, err := d.DialContext(ctx, "tcp", dialAddr)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", cfg.Addr, err)
	}
	probe.Close()

	res := &Result{Config: cfg, Latency: new(Histogram)}
	spec := cfg.spec()
	workers := make([]*worker, cfg.Conns)
	for i := range workers {
		workers[i] = newWorker(&cfg, spec, dialAddr, i)
	}
	defer func() {
		for _, w := range workers {
			w.close()
		}
	}()

	if cfg.Prefill {
		runAll(workers, func(w *worker) { w.prefill(ctx) })
	}

	start := time.Now()
	p := &phase{
		measureStart: start.Add(cfg.Warmup),
		end:          start.Add(cfg.Warmup + cfg.Duration),
	}
	p.budget.Store(cfg.Requests)
	var watch *procWatch
	if cfg.WatchPID != 0 {
		watch = startProcWatch(cfg.WatchPID, p.measureStart)
	}
	newClients := startNewClients(ctx, &cfg, spec, dialAddr, p)
	runAll(workers, func(w *worker) { w.load(ctx, p) })
	newClients.finish(res)
	if watch != nil {
		cost, err := watch.finish()
		if err != nil {
			return nil, err
		}
		res.Proc = &cost
	}

	var lastEnd time.Time
	var firstErrAt time.Time
	for _, w := range workers {
		c := &w.c
		res.Counts.add(&c.n)
		res.Latency.Merge(&c.latency)
		if c.firstErr != "" && (firstErrAt.IsZero() || c.firstErrAt.Before(firstErrAt)) {
			res.FirstError, firstErrAt = c.firstErr, c.firstErrAt
		}
		if c.lastEnd.After(lastEnd) {
			lastEnd = c.lastEnd
		}
	}
	res.Errors = res.Counts[ErrorReplies] + res.Counts[ProtocolErrors] + res.Counts[Timeouts] + res.Counts[ConnErrors]
	if !lastEnd.IsZero() {
		res.Elapsed = lastEnd.Sub(p.measureStart)
	}
	return res, ctx.Err()
}

// runAll runs f once per worker, concurrently, and waits for all of them.
func runAll(workers []*worker, f func(*worker)) {
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(w)
		}()
	}
	wg.Wait()
}

// phase is the shared clock of the load: warmup until measureStart, measured
// until end, and a shared budget of commands when Requests is set.
type phase struct {
	measureStart, end time.Time
	budget            atomic.Int64
}

// take reserves up to n commands from the budget; 0 means it is spent.
func (p *phase) take(n int) int {
	for {
		left := p.budget.Load()
		if left <= 0 {
			return 0
		}
		k := min(int64(n), left)
		if p.budget.CompareAndSwap(left, left-k) {
			return int(k)
		}
	}
}

// worker is one connection of the load (a loadgen.Worker) and what it
// counted.
type worker struct {
	cfg *Config
	id  int
	lw  *loadgen.Worker
	c   counters
	// measure tells whether the current batch counts; lost whether its
	// connection was lost (counted once per batch as a reconnect).
	measure, lost bool
	// record counts one command's reply; made once so that exchange does
	// not allocate a closure per batch.
	record func(*loadgen.Reply)
}

func newWorker(cfg *Config, spec *loadgen.Spec, addr string, id int) *worker {
	w := &worker{cfg: cfg, id: id, lw: loadgen.NewWorker(spec, addr, id, max(cfg.Pipeline, prefillDepth))}
	w.record = w.count
	return w
}

func (w *worker) close() { w.lw.Close() }

// connect opens the connection if it is closed, counting a failure when
// count is set (loadgen sleeps a backoff after it, never past until).
func (w *worker) connect(ctx context.Context, until time.Time, count bool) bool {
	err := w.lw.Connect(ctx, until)
	if err != nil && count {
		w.c.n[ConnErrors]++
		w.c.noteErr(err)
	}
	return err == nil
}

// exchange sends the batch and reads its replies, counting each command's
// outcome when measure is set.
func (w *worker) exchange(measure bool) {
	w.measure, w.lost = measure, false
	w.lw.Exchange(w.record)
}

// count records one reply of a batch.
func (w *worker) count(r *loadgen.Reply) {
	if r.Outcome >= loadgen.Protocol && !w.lost {
		w.c.n[Reconnects]++
		w.lost = true
	}
	if !w.measure {
		return
	}
	switch r.Outcome {
	case loadgen.OK, loadgen.BadValue:
	case loadgen.ErrorReply:
		w.c.n[ErrorReplies]++
		if w.c.firstErr == "" {
			w.c.noteErr(errors.New(string(r.Line)))
		}
		return
	default:
		w.c.noteErr(r.Err)
		switch r.Outcome {
		case loadgen.Protocol:
			w.c.n[ProtocolErrors]++
		case loadgen.Timeout:
			w.c.n[Timeouts]++
		default:
			w.c.n[ConnErrors]++
		}
		return
	}
	w.c.latency.Record(time.Since(r.Start))
	w.c.n[Ops]++
	if r.Set {
		w.c.n[Sets]++
	} else {
		w.c.n[Gets]++
		w.c.n[Hits] += uint64(r.Hits)
		w.c.n[Misses] += uint64(r.NKeys - r.Hits)
	}
}

// load runs batches until the phase ends, the budget is spent or ctx ends.
// It notes when it stopped, for the length of the measured phase.
func (w *worker) load(ctx context.Context, p *phase) {
	defer func() {
		if now := time.Now(); now.After(p.measureStart) {
			w.c.lastEnd = now
		}
	}()
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(p.end) {
			return
		}
		measure := !now.Before(p.measureStart)
		if !w.connect(ctx, p.end, measure) {
			continue
		}
		n := w.cfg.Pipeline
		if measure && w.cfg.Requests > 0 {
			if n = p.take(n); n == 0 {
				return
			}
		}
		w.lw.Begin()
		w.lw.AddRandom(n)
		w.exchange(measure)
	}
}

// prefill sets this worker's share of the key space (every Conns-th key,
// starting at its id), prefillDepth sets per batch. Failed sets are counted,
// not retried; when the target cannot be reached, the rest of the share is
// counted as failed and the prefill ends.
func (w *worker) prefill(ctx context.Context) {
	next := w.id
	for next < w.cfg.Keys && ctx.Err() == nil {
		if !w.connect(ctx, time.Now(), false) {
			w.c.n[PrefillErrors] += uint64((w.cfg.Keys - next + w.cfg.Conns - 1) / w.cfg.Conns)
			return
		}
		w.lw.Begin()
		for i := 0; i < prefillDepth && next < w.cfg.Keys; i++ {
			w.lw.AddSet(next)
			next += w.cfg.Conns
		}
		w.lw.Exchange(w.prefilled)
	}
}

// prefilled counts one reply of a prefill batch.
func (w *worker) prefilled(r *loadgen.Reply) {
	if r.Outcome == loadgen.OK {
		w.c.n[Prefilled]++
	} else {
		w.c.n[PrefillErrors]++
	}
}
