package soak

import (
	"fmt"
	"maps"
	"sync"
	"time"
)

// The checker classifies every read against what the clients were told.
//
// Times are nanoseconds since the checker's base, from the monotonic clock.
// A command's sent time is taken just before the write that carries it, and
// its ack time when its reply has been parsed; both err on the safe side: a
// recorded sent time is never later than the real one, a recorded ack time
// never earlier.
//
// The rule for a register (a key written by set, cas and delete) is
// real-time order. A read returning version v is stale when some write W'
// of the key was acknowledged as applied before the read was sent, and W'
// was itself sent after v's write had been acknowledged: then v's write is
// over and W' came after it, so no correct store can return v. Each key
// keeps the acknowledged write with the latest sent time; a read takes a
// snapshot of it when it is sent, so an ack that arrives while the read is
// out does not count against it. Consequences, each as the brief asks:
//   - a write still in flight when the read was sent may be seen (its ack
//     comes after the read's snapshot, or not at all yet);
//   - a write that failed (SERVER_ERROR, timeout, lost connection) may or
//     may not have landed, now or later: seeing it is fine, and it never
//     makes another value stale;
//   - a delete acked (DELETED, and also NOT_FOUND: the client was told the
//     key is gone) is a write like any other, so an older value coming back
//     after it is a resurrection, reported as stale;
//   - a miss is always fine.
// A value that no write sent (bad format, another key's value, a version
// never assigned, a version whose write was refused or was a delete) is
// bogus.

// Outcome is what a client was told about a write.
type Outcome uint8

const (
	// InFlight: sent, no answer yet.
	InFlight Outcome = iota
	// Applied: STORED, DELETED, or NOT_FOUND for a delete.
	Applied
	// Rejected: cas EXISTS or NOT_FOUND, add NOT_STORED; not applied.
	Rejected
	// Failed: SERVER_ERROR, timeout or lost connection; possibly applied.
	Failed
)

func (o Outcome) String() string {
	switch o {
	case InFlight:
		return "in flight"
	case Applied:
		return "applied"
	case Rejected:
		return "rejected"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// WriteKind is the command of a write.
type WriteKind uint8

const (
	KindSet WriteKind = iota
	KindCas
	KindDelete
	KindAdd
	KindIncr
)

func (k WriteKind) String() string {
	return [...]string{"set", "cas", "delete", "add", "incr"}[k]
}

// Verdict is the class of one read.
type Verdict uint8

const (
	// VerdictOK: a value some correct store could return.
	VerdictOK Verdict = iota
	// VerdictMiss: no value; always allowed.
	VerdictMiss
	// VerdictStale: a value older than an acknowledged write.
	VerdictStale
	// VerdictBogus: a value no write sent.
	VerdictBogus
	numVerdicts
)

func (v Verdict) String() string {
	return [...]string{"ok", "miss", "stale", "bogus"}[v]
}

// Finding is one stale or bogus read, in detail.
type Finding struct {
	Verdict Verdict
	Key     string
	Op      string // the read: get, gets or incr
	Reason  string // short class, e.g. "resurrection"
	Sent    int64  // when the read was sent
	Recv    int64  // when its reply was read
	Read    string // what came back
	Why     string // the acknowledged write it contradicts, or why it is bogus
}

func (f Finding) String() string {
	return fmt.Sprintf("%s (%s): %s %q sent %s, answered %s: read %s; %s",
		f.Verdict, f.Reason, f.Op, f.Key, fmtNanos(f.Sent), fmtNanos(f.Recv), f.Read, f.Why)
}

// fmtNanos formats a checker time as seconds since the base.
func fmtNanos(ns int64) string {
	return fmt.Sprintf("t=%.3fs", float64(ns)/1e9)
}

// maxFindings is how many findings of each verdict the checker keeps.
const maxFindings = 5

// Checker holds, per key, the writes sent and what the clients were told
// about them, and classifies reads. It is safe for concurrent use: each key
// has its own lock, and the verdict counts theirs.
//
// Memory stays bounded over long runs: a read is answered or given up
// within maxReadAge of its snapshot, so once a witness is older than that
// every read still to be judged has seen it, and the writes it supersedes
// are folded into two bits each (register.go); the same holds for the count
// floors of counters (counter.go).
type Checker struct {
	base       time.Time
	maxReadAge int64 // ns; 0 keeps everything
	valueSize  int   // of every register value
	registers  []register
	counters   []counter

	mu       sync.Mutex
	verdicts [numVerdicts]int64
	findings [numVerdicts][]Finding
	reasons  map[string]int64 // stale and bogus reads by "verdict: reason"
	perSec   map[int64]int64  // stale and bogus reads by second of the run
}

// NewChecker returns a checker for the given register and counter key
// names, with its clock starting at base. maxReadAge bounds the time from a
// read's snapshot to its verdict (0: no bound, keep every write);
// valueSize is the size the workload writes register values at.
func NewChecker(base time.Time, maxReadAge time.Duration, valueSize int, registerKeys, counterKeys []string) *Checker {
	c := &Checker{base: base, maxReadAge: maxReadAge.Nanoseconds(), valueSize: valueSize,
		registers: make([]register, len(registerKeys)), counters: make([]counter, len(counterKeys)),
		reasons: map[string]int64{}, perSec: map[int64]int64{}}
	for i, k := range registerKeys {
		c.registers[i].key = k
	}
	for i, k := range counterKeys {
		c.counters[i].key = k
	}
	return c
}

// Now returns the checker time of this moment.
func (c *Checker) Now() int64 { return time.Since(c.base).Nanoseconds() }

// Verdicts returns the count of reads of each verdict so far.
func (c *Checker) Verdicts() [numVerdicts]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.verdicts
}

// Findings returns the first findings of verdict v.
func (c *Checker) Findings(v Verdict) []Finding {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Finding(nil), c.findings[v]...)
}

// note counts a verdict. A stale or bogus one is also counted by reason and
// by the second of its answer at, and its finding (built by f) kept if it is
// among the first.
func (c *Checker) note(v Verdict, reason string, at int64, f func() Finding) Verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.verdicts[v]++
	if v != VerdictStale && v != VerdictBogus {
		return v
	}
	c.reasons[v.String()+": "+reason]++
	c.perSec[at/1e9]++
	if len(c.findings[v]) < maxFindings {
		fd := f()
		fd.Verdict = v
		c.findings[v] = append(c.findings[v], fd)
	}
	return v
}

// Reasons returns the stale and bogus reads by "verdict: reason".
func (c *Checker) Reasons() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.reasons)
}

// PerSecond returns the stale and bogus reads by second of the run.
func (c *Checker) PerSecond() map[int64]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.perSec)
}

// witness is the acknowledged write with the latest sent time of a key:
// the one that makes older values stale.
type witness struct {
	valid  bool
	kind   WriteKind
	ver    uint64 // version, or epoch for a counter
	writer int
	sent   int64
	ack    int64
	result string // what the client was told
}

func (w witness) String() string {
	if !w.valid {
		return "nothing acknowledged"
	}
	unit := "version"
	if w.kind == KindAdd || w.kind == KindIncr {
		unit = "epoch"
	}
	return fmt.Sprintf("%s %s %d by conn %d, sent %s, acknowledged %s %s",
		w.kind, unit, w.ver, w.writer, fmtNanos(w.sent), w.result, fmtNanos(w.ack))
}

// settledBy returns the time before which a witness must have been
// recorded for every read still to be judged to have seen it, or false if
// nothing is ever settled.
func (c *Checker) settledBy(now int64) (int64, bool) {
	if c.maxReadAge <= 0 {
		return 0, false
	}
	return now - c.maxReadAge, true
}

// later reports whether a write sent at sent replaces w as the witness.
func (w witness) later(sent int64) bool { return !w.valid || sent > w.sent }

// Bogus counts a read whose reply could not come from any write of the key
// it was for, such as a VALUE for a key the command did not ask for.
func (c *Checker) Bogus(f Finding) {
	c.note(VerdictBogus, f.Reason, f.Recv, func() Finding { return f })
}

// fmtDur formats nanoseconds as a duration.
func fmtDur(ns int64) string { return time.Duration(ns).String() }
