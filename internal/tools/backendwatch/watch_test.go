package backendwatch

import (
	"testing"
	"time"
)

// TestRecordKeepsChangesOnly feeds polls by hand: the first poll of a
// backend is a change, a repeat or a new last_error alone is not, and
// FirstAfter finds the ejection and the re-add.
func TestRecordKeepsChangesOnly(t *testing.T) {
	var clock int64
	w := &Watcher{backends: []string{"a", "b"}, now: func() int64 { return clock }, sum: Summary{Views: map[string]View{}}}
	poll := func(at int64, state, inRing, ejections, readds, lastError string) {
		clock = at
		w.record(map[string]string{
			"backend:a:state": state, "backend:a:in_ring": inRing, "backend:a:ejections": ejections,
			"backend:a:readds": readds, "backend:a:last_change": "1700000000", "backend:a:last_error": lastError,
		}, time.Millisecond)
	}
	poll(1, "up", "true", "0", "0", "")
	poll(2, "up", "true", "0", "0", "")
	poll(3, "down", "false", "1", "0", "dial tcp: connection refused")
	poll(4, "down", "false", "1", "0", "read: connection reset")
	poll(5, "up", "true", "1", "1", "")

	ch := w.Changes()
	if len(ch) != 3 || !ch[0].First || ch[1].At != 3 || ch[2].At != 5 {
		t.Fatalf("changes %+v, want the first poll, the ejection at 3 and the re-add at 5", ch)
	}
	if c, ok := w.FirstAfter("a", 2, func(v View) bool { return !v.InRing }); !ok || c.At != 3 ||
		c.New.LastError != "dial tcp: connection refused" || c.New.Ejections != 1 || c.New.LastChange != 1700000000 {
		t.Fatalf("ejection %+v, %v", c, ok)
	}
	if c, ok := w.FirstAfter("a", 4, func(v View) bool { return v.InRing }); !ok || c.At != 5 || c.Old.State != "down" {
		t.Fatalf("re-add %+v, %v", c, ok)
	}
	if _, ok := w.Current("b"); ok || w.AllInRing() {
		t.Fatalf("backend b was never polled, yet it is known or in the ring")
	}
	if s := w.Summary(); s.Polls != 5 || s.Views["a"].Readds != 1 {
		t.Fatalf("summary %+v", s)
	}
}
