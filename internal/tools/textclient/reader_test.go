package textclient

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func keyList(ks ...string) [][]byte {
	out := make([][]byte, len(ks))
	for i, k := range ks {
		out[i] = []byte(k)
	}
	return out
}

func TestReadGet(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		keys  []string
		hits  int
		err   error // nil, a sentinel, or ErrProtocol (matched with errors.Is)
		check bool
	}{
		{name: "miss", in: "END\r\n", keys: []string{"a"}},
		{name: "hit", in: "VALUE a 0 3\r\na12\r\nEND\r\n", keys: []string{"a"}, hits: 1, check: true},
		{name: "hit with cas", in: "VALUE a 5 3 99\r\na12\r\nEND\r\n", keys: []string{"a"}, hits: 1, check: true},
		{name: "multi in order, one missing", in: "VALUE a 0 1\r\na\r\nVALUE c 0 2\r\ncc\r\nEND\r\n", keys: []string{"a", "b", "c"}, hits: 2, check: true},
		{name: "duplicate key asked twice", in: "VALUE a 0 1\r\na\r\nVALUE a 0 1\r\na\r\nEND\r\n", keys: []string{"a", "a"}, hits: 2},
		{name: "empty value", in: "VALUE a 0 0\r\n\r\nEND\r\n", keys: []string{"a"}, hits: 1, check: true},
		{name: "value containing CRLF END", in: "VALUE a 0 7\r\na\r\nEND\r\r\nEND\r\n", keys: []string{"a"}, hits: 1, check: true},
		{name: "server error", in: "SERVER_ERROR backend down\r\n", keys: []string{"a"}, err: ErrServerError},
		{name: "client error", in: "CLIENT_ERROR bad command line format\r\n", keys: []string{"a"}, err: ErrClientError},
		{name: "error", in: "ERROR\r\n", keys: []string{"a"}, err: ErrErrorReply},
		{name: "unrequested key", in: "VALUE b 0 1\r\nb\r\nEND\r\n", keys: []string{"a"}, err: ErrProtocol},
		{name: "out of order", in: "VALUE b 0 1\r\nb\r\nVALUE a 0 1\r\na\r\nEND\r\n", keys: []string{"a", "b"}, hits: 1, err: ErrProtocol},
		{name: "value of another key", in: "VALUE a 0 3\r\nb12\r\nEND\r\n", keys: []string{"a"}, err: ErrProtocol, check: true},
		{name: "value of another key unchecked", in: "VALUE a 0 3\r\nb12\r\nEND\r\n", keys: []string{"a"}, hits: 1},
		{name: "STORED for a get", in: "STORED\r\n", keys: []string{"a"}, err: ErrProtocol},
		{name: "bad length", in: "VALUE a 0 x\r\na\r\nEND\r\n", keys: []string{"a"}, err: ErrProtocol},
		{name: "missing length", in: "VALUE a 0\r\nEND\r\n", keys: []string{"a"}, err: ErrProtocol},
		{name: "too many fields", in: "VALUE a 0 1 2 3\r\na\r\nEND\r\n", keys: []string{"a"}, err: ErrProtocol},
		{name: "double space", in: "VALUE a  0 1\r\na\r\nEND\r\n", keys: []string{"a"}, err: ErrProtocol},
		{name: "data without CRLF", in: "VALUE a 0 1\r\naXYEND\r\n", keys: []string{"a"}, err: ErrProtocol},
		{name: "bare LF", in: "END\n", keys: []string{"a"}, err: ErrProtocol},
		{name: "huge length", in: "VALUE a 0 99999999999\r\n", keys: []string{"a"}, err: ErrProtocol},
		{name: "truncated", in: "VALUE a 0 10\r\nabc", keys: []string{"a"}, err: io.ErrUnexpectedEOF},
		{name: "closed", in: "", keys: []string{"a"}, err: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte per read, to exercise every partial-read path.
			rr := NewReader(iotest.OneByteReader(strings.NewReader(tt.in)), 0)
			hits, err := rr.ReadGet(keyList(tt.keys...), tt.check)
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if hits != tt.hits {
				t.Fatalf("hits = %d, want %d", hits, tt.hits)
			}
		})
	}
}

func TestReadStored(t *testing.T) {
	for in, want := range map[string]error{
		"STORED\r\n": nil,
		"SERVER_ERROR out of memory storing object\r\n": ErrServerError,
		"CLIENT_ERROR bad data chunk\r\n":               ErrClientError,
		"ERROR\r\n":                                     ErrErrorReply,
		"NOT_STORED\r\n":                                ErrProtocol,
		"END\r\n":                                       ErrProtocol,
		"STORED\n":                                      ErrProtocol,
		"STO":                                           io.ErrUnexpectedEOF,
	} {
		rr := NewReader(strings.NewReader(in), 0)
		err := rr.ReadStored()
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("ReadStored(%q) = %v, want %v", in, err, want)
		}
	}
	rr := NewReader(strings.NewReader("SERVER_ERROR backend down\r\n"), 0)
	_ = rr.ReadStored()
	if got := string(rr.LastError()); got != "SERVER_ERROR backend down" {
		t.Errorf("LastError = %q", got)
	}
}

func TestReplyReaderStaysInStepAfterErrorReplies(t *testing.T) {
	in := "STORED\r\nSERVER_ERROR x\r\nVALUE k1 0 2\r\nk1\r\nEND\r\nERROR\r\nEND\r\n"
	rr := NewReader(strings.NewReader(in), 0)
	keys := keyList("k1")
	if err := rr.ReadStored(); err != nil {
		t.Fatal(err)
	}
	if err := rr.ReadStored(); err != ErrServerError {
		t.Fatal(err)
	}
	if h, err := rr.ReadGet(keys, true); h != 1 || err != nil {
		t.Fatal(h, err)
	}
	if _, err := rr.ReadGet(keys, true); err != ErrErrorReply {
		t.Fatal(err)
	}
	if h, err := rr.ReadGet(keys, true); h != 0 || err != nil {
		t.Fatal(h, err)
	}
}

func TestReplyReaderLineTooLong(t *testing.T) {
	in := "VALUE " + strings.Repeat("k", 10000) + " 0 1\r\nk\r\nEND\r\n"
	rr := NewReader(strings.NewReader(in), 4096)
	if _, err := rr.ReadGet(keyList("k"), false); !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v, want ErrProtocol", err)
	}
}

func TestReadGetDoesNotAllocate(t *testing.T) {
	reply := []byte("VALUE key:1 0 10\r\nkey:1xxxxx\r\nVALUE key:22 0 10 7\r\nkey:22xxxx\r\nEND\r\n")
	keys := keyList("key:1", "key:3", "key:22")
	src := bytes.NewReader(reply)
	rr := NewReader(src, 0)
	n := testing.AllocsPerRun(1000, func() {
		src.Reset(reply)
		rr.Reset(src)
		if h, err := rr.ReadGet(keys, true); h != 2 || err != nil {
			t.Fatal(h, err)
		}
	})
	if n != 0 {
		t.Fatalf("ReadGet allocates %v times per reply", n)
	}
}
