package protocol

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzRequestReader feeds arbitrary client bytes through the parser. It must
// never panic or hang, never hold more than its bounds, and every command it
// accepts must survive a round trip through the canonical encoding the proxy
// sends to backends (otherwise a backend could read it differently).
// Seeds live in testdata/fuzz/FuzzRequestReader.
func FuzzRequestReader(f *testing.F) {
	f.Add([]byte("get a b c\r\nset k 0 0 1\r\nx\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		rr := NewRequestReader(bytes.NewReader(in), 64)
		var req Request
		for i := 0; i < 10000; i++ {
			err := rr.Next(&req)
			if len(rr.buf) > MaxRetrievalLineLength+1 {
				t.Fatalf("buffer grew to %d", len(rr.buf))
			}
			var re *ReplyError
			if errors.As(err, &re) {
				if re == ErrLineTooLong {
					return
				}
				continue
			}
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			checkRoundTrip(t, &req)
			if req.Op.IsStorage() {
				if req.Bytes > 64 {
					t.Fatalf("accepted %d bytes over the limit", req.Bytes)
				}
				data := make([]byte, req.Bytes+2)
				if err := rr.ReadData(data); err != nil && err != ErrBadDataChunk {
					return
				}
			}
		}
		t.Fatal("parser did not make progress")
	})
}

// checkRoundTrip re-encodes req canonically, parses it again and compares.
func checkRoundTrip(t *testing.T, req *Request) {
	t.Helper()
	var line []byte
	switch {
	case req.Op.IsRetrieval():
		if len(req.Keys) == 0 {
			return
		}
		line = AppendRetrieval(nil, req.Op, req.Exptime, req.Keys)
	case req.Op.IsStorage():
		line = AppendStorageLine(nil, req)
		line = append(line, bytes.Repeat([]byte("v"), req.Bytes)...)
		line = append(line, "\r\n"...)
	case req.Op == OpIncr, req.Op == OpDecr, req.Op == OpTouch, req.Op == OpDelete:
		line = AppendKeyCommand(nil, req)
	case req.Op == OpFlushAll:
		line = AppendFlushAll(nil, req)
	default:
		return
	}
	if bytes.Count(line, []byte("\n")) != 1+boolInt(req.Op.IsStorage()) {
		t.Fatalf("canonical line %q has a stray line break", line)
	}
	rr := NewRequestReader(bytes.NewReader(line), 1<<20)
	var again Request
	if err := rr.Next(&again); err != nil {
		t.Fatalf("canonical line %q does not parse: %v", line, err)
	}
	if again.Op != req.Op || again.Flags != req.Flags || again.Exptime != req.Exptime ||
		again.Bytes != req.Bytes || again.Cas != req.Cas || again.Delta != req.Delta ||
		again.Delay != req.Delay || again.HasDelay != req.HasDelay || len(again.Keys) != len(req.Keys) {
		t.Fatalf("round trip of %q changed the command:\n%+v\n%+v", line, req, again)
	}
	for i := range req.Keys {
		if !bytes.Equal(again.Keys[i], req.Keys[i]) {
			t.Fatalf("round trip changed key %q to %q", req.Keys[i], again.Keys[i])
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// FuzzReplyReader feeds arbitrary backend bytes to the reply parser: it may
// refuse them, but must not panic, and what it accepts must be well formed.
// Seeds live in testdata/fuzz/FuzzReplyReader.
func FuzzReplyReader(f *testing.F) {
	f.Add(uint8(1), []byte("VALUE a 0 1\r\nx\r\nEND\r\n"))
	f.Fuzz(func(t *testing.T, kind uint8, in []byte) {
		k := ReplyKind(kind % 3)
		rr := NewReplyReader(bytes.NewReader(in), 1024)
		var r Reply
		for i := 0; i < 10000; i++ {
			if err := rr.ReadReply(k, &r); err != nil {
				return
			}
			if len(r.Raw) == 0 || r.Raw[len(r.Raw)-1] != '\n' {
				t.Fatalf("reply %q does not end a line", r.Raw)
			}
			for j := range r.Values {
				v := r.Values[j]
				if v.Start < 0 || v.End > len(r.Raw) || v.KeyStart < v.Start || v.KeyEnd > v.End {
					t.Fatalf("value %+v outside reply of %d bytes", v, len(r.Raw))
				}
				if !bytes.HasPrefix(r.Block(j), []byte("VALUE ")) {
					t.Fatalf("block %q", r.Block(j))
				}
			}
		}
		t.Fatal("reply parser did not make progress")
	})
}
