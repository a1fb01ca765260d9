package protocol

import (
	"bytes"
	"strings"
	"testing"
)

// TestReaderStateCarriesTheStream: a reader stopped between commands, with
// a command and a half read and not parsed and a refused block still to
// skip, and a new reader restored from its state parse the rest of the
// stream exactly as the first would have.
func TestReaderStateCarriesTheStream(t *testing.T) {
	const max = 16
	stream := "get a\r\nset big 0 0 20\r\n" + strings.Repeat("x", 20) + "\r\nget b\r\nget c\r\nge"
	rest := "t d\r\n"
	first := NewRequestReader(strings.NewReader(stream), max)
	var req Request
	if err := first.Next(&req); err != nil || string(req.Key()) != "a" {
		t.Fatalf("first command: %v %q", err, req.Key())
	}
	if err := first.Next(&req); err != ErrTooLarge {
		t.Fatalf("the big set: %v, want ErrTooLarge", err)
	}
	st := first.State()
	if !st.Started || st.Swallow != 22 || !bytes.HasSuffix(st.Unparsed, []byte("get c\r\nge")) {
		t.Fatalf("state %+v, want started, 22 bytes to skip, the rest of the stream unparsed", st)
	}
	second := NewRequestReader(strings.NewReader(rest), max)
	if err := second.Restore(st); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"b", "c", "d"} {
		if err := second.Next(&req); err != nil || string(req.Key()) != key {
			t.Fatalf("restored reader: %v %q, want get %s", err, req.Key(), key)
		}
	}
}

func TestReaderStateBounds(t *testing.T) {
	rr := NewRequestReader(strings.NewReader(""), 0)
	if err := rr.Restore(ReaderState{Unparsed: make([]byte, MaxUnparsed+1)}); err == nil {
		t.Error("restored more unparsed bytes than a reader holds")
	}
	if err := rr.Restore(ReaderState{Swallow: -1}); err == nil {
		t.Error("restored a negative skip")
	}
	if err := rr.Restore(ReaderState{Unparsed: make([]byte, MaxUnparsed)}); err != nil {
		t.Errorf("a full buffer's worth: %v", err)
	}
}
