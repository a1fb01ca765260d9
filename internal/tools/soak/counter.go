package soak

import (
	"fmt"
	"sort"
	"strconv"
	"sync"
)

// Counters are keys created by add and bumped by incr (see values.go for
// the epoch*epochScale+count encoding). The checker applies two rules:
//
//   - Epochs are registers: each add is a write of its epoch. Reading
//     epoch e, whose add was acknowledged STORED, is stale when the key's
//     witness (the add, or the incr whose answer showed an epoch, with the
//     latest sent time among those acknowledged before the read was sent)
//     shows another epoch and was sent after e's add was acknowledged.
//   - Within an epoch the count only grows. Each incr answer acknowledged
//     before a read was sent is a lower bound for that read: a get must see
//     at least that count, and an incr must have been applied to at least
//     that count (its answer minus one). An incr in flight or failed can
//     only raise the count, so it never makes a read stale.
//
// A value no add or incr could have made (not a number, an epoch never
// sent or refused NOT_STORED, a count above the incrs sent) is bogus.

// countObs is an incr answer: count was acknowledged at time at, as the
// observation numbered seq of its key.
type countObs struct {
	seq, count uint64
	at         int64
}

// epochRec is one add of a counter, and the counts seen in its epoch.
type epochRec struct {
	sent, ack int64
	writer    int32
	out       Outcome
	result    string
	// counts are the floors of reads: increasing in seq and in count. Once
	// an entry is settled (older than any snapshot still to be judged) the
	// ones before it can serve no lookup and are dropped.
	counts []countObs
}

// counter is the checker's record of one counter key; epochs[e-1] is epoch
// e. Guarded by mu.
type counter struct {
	mu     sync.Mutex
	key    string
	epochs []epochRec
	incrs  uint64 // incrs sent
	seq    uint64 // incr answers recorded
	last   witness
}

// CounterSnap is what a read or an incr of a counter must not contradict:
// the key's epoch witness and how many incr answers had been recorded when
// it was sent.
type CounterSnap struct {
	seq  uint64
	last witness
}

// BeginAdd assigns the next epoch of counter k to an add by writer, about
// to be sent.
func (c *Checker) BeginAdd(k int, writer int) uint64 {
	ct := &c.counters[k]
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ct.epochs = append(ct.epochs, epochRec{writer: int32(writer)})
	return uint64(len(ct.epochs))
}

// EndAdd records what the client was told about the add of epoch.
func (c *Checker) EndAdd(k int, epoch uint64, sent, ack int64, out Outcome, result string) {
	ct := &c.counters[k]
	ct.mu.Lock()
	defer ct.mu.Unlock()
	e := &ct.epochs[epoch-1]
	e.sent, e.ack, e.out, e.result = sent, ack, out, result
	if out == Applied && ct.last.later(sent) {
		ct.last = witness{valid: true, kind: KindAdd, ver: epoch, writer: int(e.writer), sent: sent, ack: ack, result: result}
	}
}

// BeginIncr counts an incr of counter k about to be sent and returns its
// snapshot.
func (c *Checker) BeginIncr(k int) CounterSnap {
	ct := &c.counters[k]
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ct.incrs++
	return CounterSnap{seq: ct.seq, last: ct.last}
}

// BeginCounterRead returns the snapshot of a get of counter k about to be
// sent.
func (c *Checker) BeginCounterRead(k int) CounterSnap {
	ct := &c.counters[k]
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return CounterSnap{seq: ct.seq, last: ct.last}
}

// EndIncr classifies the answer to an incr of counter k by writer: the new
// value, or found=false for NOT_FOUND (a miss). An answer that passes
// becomes a lower bound for later reads.
func (c *Checker) EndIncr(k int, writer int, snap CounterSnap, sent, ack int64, found bool, v uint64) Verdict {
	if !found {
		return c.note(VerdictMiss, "", 0, nil)
	}
	ct := &c.counters[k]
	ct.mu.Lock()
	defer ct.mu.Unlock()
	verdict, reason, why := ct.classify("incr", snap, v, true)
	if verdict == VerdictOK {
		epoch, count := splitCounter(v)
		ct.seq++
		e := &ct.epochs[epoch-1]
		if n := len(e.counts); n == 0 || count > e.counts[n-1].count {
			e.counts = append(e.counts, countObs{seq: ct.seq, count: count, at: ack})
		}
		if by, ok := c.settledBy(ack); ok {
			n := 0
			for n+1 < len(e.counts) && e.counts[n+1].at <= by {
				n++
			}
			e.counts = e.counts[n:]
		}
		if ct.last.later(sent) {
			ct.last = witness{valid: true, kind: KindIncr, ver: epoch, writer: writer, sent: sent, ack: ack,
				result: strconv.FormatUint(v, 10)}
		}
		return c.note(verdict, "", 0, nil)
	}
	return c.note(verdict, reason, ack, counterFinding(ct.key, "incr", sent, ack, v, reason, why()))
}

// EndCounterRead classifies a get or gets of counter k.
func (c *Checker) EndCounterRead(k int, op string, snap CounterSnap, sent, recv int64, found bool, data []byte) Verdict {
	if !found {
		return c.note(VerdictMiss, "", 0, nil)
	}
	ct := &c.counters[k]
	v, ok := parseCounter(data)
	if !ok {
		return c.note(VerdictBogus, "not a counter value", recv, func() Finding {
			return Finding{Key: ct.key, Op: op, Sent: sent, Recv: recv, Reason: "not a counter value",
				Read: fmt.Sprintf("%.60q", data), Why: "not a decimal number"}
		})
	}
	ct.mu.Lock()
	verdict, reason, why := ct.classify(op, snap, v, false)
	if verdict == VerdictOK {
		ct.mu.Unlock()
		return c.note(verdict, "", 0, nil)
	}
	text := why()
	ct.mu.Unlock()
	return c.note(verdict, reason, recv, counterFinding(ct.key, op, sent, recv, v, reason, text))
}

func counterFinding(key, op string, sent, recv int64, v uint64, reason, why string) func() Finding {
	return func() Finding {
		epoch, count := splitCounter(v)
		return Finding{Key: key, Op: op, Sent: sent, Recv: recv, Reason: reason,
			Read: fmt.Sprintf("%d (epoch %d, count %d)", v, epoch, count), Why: why}
	}
}

// classify judges the value v seen by op against snap. For an incr (isIncr)
// the state it was applied to, v-1, is what must not be stale. It returns
// the verdict and, unless it is ok, a short reason and the explanation
// (to be called with ct.mu held). ct.mu must be held.
func (ct *counter) classify(op string, snap CounterSnap, v uint64, isIncr bool) (Verdict, string, func() string) {
	epoch, count := splitCounter(v)
	switch {
	case epoch == 0 || epoch > uint64(len(ct.epochs)):
		return VerdictBogus, "counter epoch never sent", func() string { return "that epoch was never sent by an add" }
	case count > ct.incrs:
		return VerdictBogus, "count above incrs sent", func() string {
			return fmt.Sprintf("count above the %d incrs sent to the key", ct.incrs)
		}
	case isIncr && count == 0:
		return VerdictBogus, "incr answered count 0", func() string { return "an incr cannot answer a count of 0" }
	}
	e := &ct.epochs[epoch-1]
	if e.out == Rejected {
		return VerdictBogus, "refused add", func() string {
			return fmt.Sprintf("the add of that epoch was refused (%s %s)", e.result, fmtNanos(e.ack))
		}
	}
	if e.out == Applied && snap.last.valid && snap.last.ver != epoch && e.ack < snap.last.sent {
		return VerdictStale, "old counter epoch", func() string {
			return fmt.Sprintf("the add of epoch %d was acknowledged %s %s, then the %s showed epoch %d, sent after it and acknowledged before this %s",
				epoch, e.result, fmtNanos(e.ack), snap.last, snap.last.ver, op)
		}
	}
	// The highest count of this epoch acknowledged before the snapshot.
	i := sort.Search(len(e.counts), func(i int) bool { return e.counts[i].seq > snap.seq })
	if i > 0 {
		floor := e.counts[i-1].count
		seen := count
		if isIncr {
			seen = count - 1
		}
		if seen < floor {
			return VerdictStale, "counter below an acked incr", func() string {
				return fmt.Sprintf("counter went backwards: an incr had answered count %d in this epoch before this %s was sent", floor, op)
			}
		}
	}
	return VerdictOK, "", nil
}
