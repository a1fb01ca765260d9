package protocol

import (
	"errors"
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
