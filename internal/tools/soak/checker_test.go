package soak

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// The checker tests feed event sequences with explicit times (ns since the
// checker's base) and check each verdict.

func newTestChecker(maxReadAge time.Duration) *Checker {
	return NewChecker(time.Now(), maxReadAge, 40, []string{"r0", "r1"}, []string{"c0"})
}

// val is the data a set of version ver of key by writer stores.
func val(key string, writer int, ver uint64) []byte {
	return appendRegisterValue(nil, key, writer, ver, 40)
}

// set sends and (unless out is InFlight) ends a write of r0 by writer.
func set(c *Checker, kind WriteKind, writer int, sent, ack int64, out Outcome, result string) uint64 {
	v := c.BeginWrite(0, kind, writer)
	if out != InFlight {
		c.EndWrite(0, v, sent, ack, out, result)
	}
	return v
}

// read judges a read of r0 that returned version ver by writer, with the
// snapshot snap.
func read(c *Checker, snap RegisterSnap, writer int, ver uint64) Verdict {
	return c.EndRead(0, "get", snap, 0, 0, true, uint32(writer), val("r0", writer, ver))
}

func want(t *testing.T, what string, got, want Verdict) {
	t.Helper()
	if got != want {
		t.Errorf("%s: verdict %s, want %s", what, got, want)
	}
}

func TestRegisterValueRoundTrip(t *testing.T) {
	for _, size := range []int{1, 10, 40, 300} {
		d := appendRegisterValue(nil, "soak:r:17", 12, 345, size)
		w, v, ok := parseRegisterValue("soak:r:17", d, size)
		if !ok || w != 12 || v != 345 {
			t.Errorf("size %d: parse(%q) = %d, %d, %v", size, d, w, v, ok)
		}
	}
	d := val("r0", 1, 7)
	d[len(d)-1] ^= 1
	if _, _, ok := parseRegisterValue("r0", d, 40); ok {
		t.Errorf("a changed pad byte parsed as a value: %q", d)
	}
}

func TestRegisterOlderThanAckedWriteIsStale(t *testing.T) {
	c := newTestChecker(0)
	v1 := set(c, KindSet, 1, 10, 20, Applied, "STORED")
	v2 := set(c, KindSet, 2, 30, 40, Applied, "STORED") // sent after v1's ack
	snap := c.BeginRead(0)                              // sent after v2's ack
	want(t, "newest acked", read(c, snap, 2, v2), VerdictOK)
	want(t, "older than an ack before the read", read(c, snap, 1, v1), VerdictStale)
	want(t, "miss", c.EndRead(0, "get", snap, 0, 0, false, 0, nil), VerdictMiss)
	f := c.Findings(VerdictStale)
	if len(f) != 1 || f[0].Key != "r0" || !strings.Contains(f[0].Read, "version 1 by conn 1") ||
		!strings.Contains(f[0].Why, "set version 2 by conn 2") {
		t.Errorf("stale finding: %+v", f)
	}
}

func TestRegisterInFlightWriteMayBeSeen(t *testing.T) {
	c := newTestChecker(0)
	v1 := set(c, KindSet, 1, 10, 20, Applied, "STORED")
	early := c.BeginRead(0) // sent while v2 is in flight
	v2 := set(c, KindSet, 2, 0, 0, InFlight, "")
	want(t, "in-flight write seen", read(c, early, 2, v2), VerdictOK)
	want(t, "old value while a write is in flight", read(c, early, 1, v1), VerdictOK)
	c.EndWrite(0, v2, 30, 40, Applied, "STORED")
	// The ack arrived after the read was sent: it does not bind that read.
	want(t, "ack after the read was sent", read(c, early, 1, v1), VerdictOK)
	want(t, "read sent after the ack", read(c, c.BeginRead(0), 1, v1), VerdictStale)
}

func TestRegisterOverlappingWritesEitherOrder(t *testing.T) {
	c := newTestChecker(0)
	v1 := c.BeginWrite(0, KindSet, 1)
	v2 := c.BeginWrite(0, KindSet, 2)
	// Both sent before either was acknowledged: the store may order them
	// either way, so either can be the value that stays.
	c.EndWrite(0, v2, 11, 21, Applied, "STORED")
	c.EndWrite(0, v1, 10, 20, Applied, "STORED")
	snap := c.BeginRead(0)
	want(t, "first of two overlapping writes", read(c, snap, 1, v1), VerdictOK)
	want(t, "second of two overlapping writes", read(c, snap, 2, v2), VerdictOK)
}

func TestRegisterFailedWriteIsPossiblyWritten(t *testing.T) {
	c := newTestChecker(0)
	v1 := set(c, KindSet, 1, 10, 20, Applied, "STORED")
	v2 := set(c, KindSet, 2, 30, 40, Failed, "SERVER_ERROR backend timeout")
	snap := c.BeginRead(0)
	want(t, "failed write seen", read(c, snap, 2, v2), VerdictOK)
	want(t, "value older than a failed write", read(c, snap, 1, v1), VerdictOK)
	v3 := set(c, KindCas, 3, 60, 70, Applied, "STORED")
	snap = c.BeginRead(0)
	want(t, "failed write seen after a later ack (it may land late)", read(c, snap, 2, v2), VerdictOK)
	want(t, "older than the later acked cas", read(c, snap, 1, v1), VerdictStale)
	want(t, "the acked cas", read(c, snap, 3, v3), VerdictOK)
}

func TestRegisterResurrectionAfterDelete(t *testing.T) {
	for _, result := range []string{"DELETED", "NOT_FOUND"} {
		c := newTestChecker(0)
		v1 := set(c, KindSet, 1, 10, 20, Applied, "STORED")
		d := c.BeginWrite(0, KindDelete, 2)
		during := c.BeginRead(0) // sent while the delete is in flight
		c.EndWrite(0, d, 30, 40, Applied, result)
		want(t, result+": value seen while the delete was in flight", read(c, during, 1, v1), VerdictOK)
		after := c.BeginRead(0)
		want(t, result+": miss after delete", c.EndRead(0, "get", after, 0, 0, false, 0, nil), VerdictMiss)
		want(t, result+": value back after an acked delete", read(c, after, 1, v1), VerdictStale)
		if f := c.Findings(VerdictStale); len(f) != 1 || f[0].Reason != "resurrection" {
			t.Errorf("%s: finding %+v, want a resurrection", result, f)
		}
		// A set in flight after the delete may be seen; the old value not.
		v3 := set(c, KindSet, 3, 0, 0, InFlight, "")
		snap := c.BeginRead(0)
		want(t, result+": set in flight after the delete", read(c, snap, 3, v3), VerdictOK)
		want(t, result+": old value while a new set is in flight", read(c, snap, 1, v1), VerdictStale)
	}
}

func TestRegisterBogus(t *testing.T) {
	c := newTestChecker(0)
	v1 := set(c, KindSet, 1, 10, 20, Applied, "STORED")
	vRefused := set(c, KindCas, 2, 30, 40, Rejected, "EXISTS")
	vDel := set(c, KindDelete, 3, 50, 60, Applied, "DELETED")
	snap := c.BeginRead(0)
	cases := []struct {
		name  string
		flags uint32
		data  []byte
	}{
		{"not a soak value", 1, []byte("hello")},
		{"another key's value", 1, val("r1", 1, v1)},
		{"version never sent", 1, val("r0", 1, 99)},
		{"wrong writer for the version", 4, val("r0", 4, v1)},
		{"flags not the writer", 7, val("r0", 1, v1)},
		{"refused cas", 2, val("r0", 2, vRefused)},
		{"a delete's version", 3, val("r0", 3, vDel)},
		{"torn value", 1, val("r0", 1, v1)[:10]},
	}
	for _, tc := range cases {
		want(t, tc.name, c.EndRead(0, "gets", snap, 0, 0, true, tc.flags, tc.data), VerdictBogus)
	}
	if n := c.Verdicts()[VerdictBogus]; n != int64(len(cases)) {
		t.Errorf("bogus count %d, want %d", n, len(cases))
	}
	if f := c.Findings(VerdictBogus); len(f) != maxFindings {
		t.Errorf("%d bogus findings kept, want the first %d", len(f), maxFindings)
	}
}

// TestRegisterFolding checks that old decided versions are folded, and
// that a folded version keeps its verdict.
func TestRegisterFolding(t *testing.T) {
	c := newTestChecker(100 * time.Nanosecond)
	v1 := set(c, KindSet, 1, 10, 20, Applied, "STORED")
	vFail := set(c, KindSet, 2, 21, 22, Failed, "SERVER_ERROR x")
	vRef := set(c, KindCas, 3, 23, 24, Rejected, "EXISTS")
	v4 := set(c, KindSet, 4, 30, 40, Applied, "STORED") // supersedes v1
	set(c, KindSet, 5, 200, 210, Applied, "STORED")     // settles v4's witness (40 <= 210-100)
	r := &c.registers[0]
	if r.folded != 4-1 {
		t.Fatalf("folded %d versions, want 3 (v1 superseded, a failed and a refused one)", r.folded)
	}
	snap := c.BeginRead(0)
	want(t, "folded superseded version", read(c, snap, 1, v1), VerdictStale)
	want(t, "folded failed version", read(c, snap, 2, vFail), VerdictOK)
	want(t, "folded refused version", read(c, snap, 3, vRef), VerdictBogus)
	want(t, "unfolded superseded version", read(c, snap, 4, v4), VerdictStale)
	for i := 0; i < 1000; i++ {
		at := int64(300 + 20*i)
		set(c, KindSet, 6, at, at+5, Applied, "STORED")
	}
	if len(r.writes) > 20 {
		t.Errorf("%d writes kept unfolded after a long run of acked sets, want a handful", len(r.writes))
	}
}

func counterVal(epoch, count uint64) []byte {
	return strconv.AppendUint(nil, counterValue(epoch)+count, 10)
}

// incr sends an incr of c0 and ends it with count in epoch at ack.
func incr(c *Checker, epoch, count uint64, sent, ack int64) Verdict {
	snap := c.BeginIncr(0)
	return c.EndIncr(0, 1, snap, sent, ack, true, counterValue(epoch)+count)
}

func getCounter(c *Checker, snap CounterSnap, epoch, count uint64) Verdict {
	return c.EndCounterRead(0, "get", snap, 0, 0, true, counterVal(epoch, count))
}

func TestCounterNeverGoesBackwards(t *testing.T) {
	c := newTestChecker(0)
	e1 := c.BeginAdd(0, 1)
	c.EndAdd(0, e1, 10, 20, Applied, "STORED")
	want(t, "first incr", incr(c, e1, 1, 25, 30), VerdictOK)
	early := c.BeginCounterRead(0) // before the second incr's ack
	want(t, "second incr", incr(c, e1, 2, 35, 40), VerdictOK)
	want(t, "count before an ack that came after the read was sent", getCounter(c, early, e1, 1), VerdictOK)
	snap := c.BeginCounterRead(0)
	want(t, "count below an acked incr", getCounter(c, snap, e1, 1), VerdictStale)
	want(t, "count of the acked incr", getCounter(c, snap, e1, 2), VerdictOK)
	want(t, "the added value, below acked incrs", getCounter(c, snap, e1, 0), VerdictStale)
	// An incr in flight can only raise the count.
	inflight := c.BeginIncr(0)
	want(t, "count of an incr in flight", getCounter(c, c.BeginCounterRead(0), e1, 3), VerdictOK)
	want(t, "count above the incrs sent", getCounter(c, c.BeginCounterRead(0), e1, 4), VerdictBogus)
	// An incr answering the count an earlier incr already answered was
	// applied to a stale count.
	want(t, "incr applied to a stale count", c.EndIncr(0, 1, inflight, 50, 60, true, counterValue(e1)+2), VerdictStale)
	if f := c.Findings(VerdictStale); len(f) == 0 || !strings.Contains(f[0].Why, "counter went backwards") {
		t.Errorf("stale finding %+v", f)
	}
}

func TestCounterEpochs(t *testing.T) {
	c := newTestChecker(0)
	e1 := c.BeginAdd(0, 1)
	c.EndAdd(0, e1, 10, 20, Applied, "STORED")
	want(t, "incr", incr(c, e1, 1, 25, 30), VerdictOK)
	// The counter is lost (its backend died): incr misses, a new add.
	missSnap := c.BeginIncr(0)
	want(t, "incr NOT_FOUND", c.EndIncr(0, 1, missSnap, 35, 40, false, 0), VerdictMiss)
	e2 := c.BeginAdd(0, 1)
	during := c.BeginCounterRead(0) // while the add is in flight
	c.EndAdd(0, e2, 45, 50, Applied, "STORED")
	want(t, "old epoch while the new add was in flight", getCounter(c, during, e1, 1), VerdictOK)
	snap := c.BeginCounterRead(0)
	want(t, "old epoch after a later add was acked", getCounter(c, snap, e1, 1), VerdictStale)
	want(t, "new epoch", getCounter(c, snap, e2, 0), VerdictOK)
	e3 := c.BeginAdd(0, 2)
	c.EndAdd(0, e3, 55, 60, Rejected, "NOT_STORED")
	e4 := c.BeginAdd(0, 2)
	c.EndAdd(0, e4, 55, 60, Failed, "SERVER_ERROR backend timeout")
	snap = c.BeginCounterRead(0)
	want(t, "epoch of a refused add", getCounter(c, snap, e3, 0), VerdictBogus)
	want(t, "epoch of a failed add (possibly written)", getCounter(c, snap, e4, 0), VerdictOK)
	want(t, "epoch never sent", getCounter(c, snap, 9, 0), VerdictBogus)
	want(t, "not a number", c.EndCounterRead(0, "get", snap, 0, 0, true, []byte("12x")), VerdictBogus)
	want(t, "miss", c.EndCounterRead(0, "get", snap, 0, 0, false, nil), VerdictMiss)
}
