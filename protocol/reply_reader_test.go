package protocol

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

func TestReplyReader(t *testing.T) {
	stream := "VALUE a 0 3\r\nabc\r\nVALUE bb 5 4 77\r\na\r\nb\r\nEND\r\n" +
		"STORED\r\n" +
		"END\r\n" +
		"SERVER_ERROR out of memory\r\n" +
		"STAT pid 1\r\nSTAT curr_items 3\r\nEND\r\n" +
		"42\r\n"
	rr := NewReplyReader(oneByteReader{strings.NewReader(stream)}, 0)
	var r Reply

	if err := rr.ReadReply(ReplyRetrieval, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Values) != 2 || string(r.Key(0)) != "a" || string(r.Key(1)) != "bb" {
		t.Fatalf("values %+v", r.Values)
	}
	if string(r.Block(1)) != "VALUE bb 5 4 77\r\na\r\nb\r\n" {
		t.Fatalf("block %q", r.Block(1))
	}
	if !strings.HasSuffix(string(r.Raw), "END\r\n") || len(r.Raw) != len("VALUE a 0 3\r\nabc\r\nVALUE bb 5 4 77\r\na\r\nb\r\nEND\r\n") {
		t.Fatalf("raw %q", r.Raw)
	}
	for _, want := range []struct {
		kind ReplyKind
		raw  string
		err  bool
	}{
		{ReplyLine, "STORED\r\n", false},
		{ReplyRetrieval, "END\r\n", false},
		{ReplyRetrieval, "SERVER_ERROR out of memory\r\n", true},
		{ReplyStats, "STAT pid 1\r\nSTAT curr_items 3\r\nEND\r\n", false},
		{ReplyLine, "42\r\n", false},
	} {
		if err := rr.ReadReply(want.kind, &r); err != nil {
			t.Fatal(err)
		}
		if string(r.Raw) != want.raw || r.IsError != want.err {
			t.Fatalf("got %q (error %v), want %q", r.Raw, r.IsError, want.raw)
		}
	}
}

func TestReplyReaderRejectsGarbage(t *testing.T) {
	for _, in := range []string{
		"STORED\r\n",                     // not a retrieval reply
		"VALUE a 0 3\r\nabcd\r\nEND\r\n", // data not followed by CRLF
		"VALUE a 0 x\r\nabc\r\nEND\r\n",  // bad length
		"VALUE a 0 -1\r\nEND\r\n",
		"VALUE a\r\nEND\r\n",
		"VALUE  a 0 1\r\nx\r\nEND\r\n",           // two spaces: the key would be misplaced
		"VALUE a 0 4294967297\r\nx\r\nEND\r\n",   // a length that only wraps to 1
		"VALUE a 0 +1\r\nx\r\nEND\r\n",           // a sign
		"VALUE a 0 1\tjunk\r\nx\r\nEND\r\n",      // a stray byte after the length
		"VALUE a\x01 0 1\r\nx\r\nEND\r\n",        // a control byte in the key
		"VALUE a 0 1 2 3\r\nx\r\nEND\r\n",        // a fifth field
		"VALUE a 0 1\r\nx\r\nEND\n",              // bare LF
		"VALUE a 0 1\r\nx\r\nSERVER_ERROR x\r\n", // memcached never errs after a value
		"CLIENT_ERRORx\r\n",
	} {
		rr := NewReplyReader(strings.NewReader(in), 0)
		var r Reply
		if err := rr.ReadReply(ReplyRetrieval, &r); !errors.Is(err, ErrBadReply) {
			t.Errorf("%q: got %v, want ErrBadReply", in, err)
		}
	}
	rr := NewReplyReader(strings.NewReader("VALUE a 0 100\r\n"), 10)
	var r Reply
	if err := rr.ReadReply(ReplyRetrieval, &r); !errors.Is(err, ErrBadReply) {
		t.Errorf("value over the limit: got %v", err)
	}
}

func TestReplyReaderLineReplies(t *testing.T) {
	for in, ok := range map[string]bool{
		"STORED\r\n": true, "NOT_STORED\r\n": true, "EXISTS\r\n": true, "NOT_FOUND\r\n": true,
		"DELETED\r\n": true, "TOUCHED\r\n": true, "OK\r\n": true, "VERSION 1.6.18\r\n": true,
		"18446744073709551615\r\n": true, "ERROR\r\n": true, "ERROR Too many open connections\r\n": true,
		"CLIENT_ERROR bad data chunk\r\n": true, "SERVER_ERROR out of memory\r\n": true,
		// A line that opens or ends a multi-line reply means the connection
		// is out of step.
		"END\r\n": false, "VALUE a 0 1\r\n": false, "STAT pid 1\r\n": false,
		"STORED\n": false, "\r\n": false, "18446744073709551616\r\n": false, "-1\r\n": false,
	} {
		var r Reply
		err := NewReplyReader(strings.NewReader(in), 0).ReadReply(ReplyLine, &r)
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrBadReply)) {
			t.Errorf("%q: got %v, want ok=%v", in, err, ok)
		}
	}
}

// TestReplyReaderHugeHeader checks that a header announcing a huge value
// costs memory only as the value's bytes arrive.
func TestReplyReaderHugeHeader(t *testing.T) {
	rr := NewReplyReader(strings.NewReader("VALUE a 0 1000000000\r\nabc"), 0)
	var r Reply
	if err := rr.ReadReply(ReplyRetrieval, &r); err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v", err)
	}
	if cap(r.Raw) > 2*valueChunk {
		t.Fatalf("holds %d bytes for 3 received", cap(r.Raw))
	}
	// A big value still arrives whole.
	val := strings.Repeat("v", 3*valueChunk+5)
	rr = NewReplyReader(chunkReader{strings.NewReader("VALUE a 0 " + strconv.Itoa(len(val)) + "\r\n" + val + "\r\nEND\r\n"), 1000}, 0)
	if err := rr.ReadReply(ReplyRetrieval, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Values) != 1 || string(r.Block(0)[len(r.Block(0))-len(val)-2:]) != val+"\r\n" {
		t.Fatalf("value not read whole")
	}
}

// chunkReader delivers at most n bytes per read.
type chunkReader struct {
	r io.Reader
	n int
}

func (o chunkReader) Read(p []byte) (int, error) { return o.r.Read(p[:min(len(p), o.n)]) }
