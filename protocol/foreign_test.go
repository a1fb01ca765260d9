package protocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestClassifyStart(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Foreign
		more bool
	}{
		{"", NotForeign, true},
		{"get a\r\n", NotForeign, false},
		{"\x80", ForeignBinary, false},
		{"\x80\x0a\x00\x00", ForeignBinary, false},
		{"\x16", NotForeign, true},
		{"\x16\x03", NotForeign, true},
		{"\x16\x03\x01", ForeignTLS, false},
		{"\x16\x03\x00\x00\x05", ForeignTLS, false}, // SSL 3.0
		{"\x16\x03\x04", ForeignTLS, false},
		{"\x16\x03\x05", NotForeign, false},
		{"\x16\x02\x01", NotForeign, false},
		{"\x16\r\n", NotForeign, false},
		{"\x81\x00", NotForeign, false}, // a response magic is no request
		{"GET / HTTP/1.1\r\n", NotForeign, false},
	} {
		f, more := ClassifyStart([]byte(tc.in))
		if f != tc.want || more != tc.more {
			t.Errorf("ClassifyStart(%q) = %v, %v; want %v, %v", tc.in, f, more, tc.want, tc.more)
		}
	}
}

// binaryNoop is a binary-protocol NOOP request with opaque 0xdeadbeef.
const binaryNoop = "\x80\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xde\xad\xbe\xef\x00\x00\x00\x00\x00\x00\x00\x00"

func TestBinaryUnknownCommand(t *testing.T) {
	got := BinaryUnknownCommand([]byte(binaryNoop))
	want := "\x81\x0a\x00\x00\x00\x00\x00\x81\x00\x00\x00\x0f\xde\xad\xbe\xef\x00\x00\x00\x00\x00\x00\x00\x00Unknown command"
	if string(got) != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// firstError returns the first error Next gives on in, whole and split
// into one-byte reads, checking the two agree.
func firstError(t *testing.T, in string) error {
	t.Helper()
	var errs [2]error
	for i, rd := range []io.Reader{strings.NewReader(in), oneByteReader{strings.NewReader(in)}} {
		rr := NewRequestReader(rd, 0)
		var req Request
		for n := 0; n < 100; n++ {
			err := rr.Next(&req)
			if err == nil && req.Op.IsStorage() {
				err = rr.ReadData(make([]byte, req.Bytes+2))
			}
			if err != nil && err != ErrUnknownCommand {
				errs[i] = err
				break
			}
		}
	}
	if errs[0] == nil || errs[0].Error() != errs[1].Error() {
		t.Fatalf("%q: whole %v, split %v", in, errs[0], errs[1])
	}
	var a, b *ForeignError
	if errors.As(errs[0], &a) && errors.As(errs[1], &b) && !bytes.Equal(a.Reply, b.Reply) {
		t.Fatalf("%q: replies differ: %q vs %q", in, a.Reply, b.Reply)
	}
	return errs[0]
}

func TestRequestReaderForeignStart(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		kind     Foreign
		reply    string
	}{
		{"binary noop", binaryNoop + "get a\r\n", ForeignBinary, string(BinaryUnknownCommand([]byte(binaryNoop)))},
		{"binary header cut short", binaryNoop[:10], ForeignBinary, ""},
		{"tls client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", ForeignTLS, ""},
		{"http get", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", ForeignHTTP, ""},
		{"http post with a memcached body", "POST / HTTP/1.1\r\nContent-Length: 21\r\n\r\nset evil 0 0 3\r\nbad\r\n", ForeignHTTP, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := firstError(t, tc.in)
			var fe *ForeignError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a ForeignError", err)
			}
			if fe.Kind != tc.kind || string(fe.Reply) != tc.reply {
				t.Fatalf("got %v reply %q, want %v reply %q", fe.Kind, fe.Reply, tc.kind, tc.reply)
			}
		})
	}
}

// TestHTTPLineAsMemcached pins which lines memcached 1.6 closes the
// connection on (checked against memcached 1.6.18) and which it answers.
func TestHTTPLineAsMemcached(t *testing.T) {
	closes := []string{
		"GET / HTTP/1.1", "POST / HTTP/1.1", "HEAD / HTTP/1.0", "OPTIONS * HTTP/1.1", "PUT /x HTTP/2",
		"HTTP/1.1", "AB HTTP/", "  GET   /   HTTP/1.1  ", "GET / HTTP/1.1\x00junk", "misbehave / HTTP/1.1",
		"AB" + strings.Repeat(" x", 21) + " HTTP/1.1",   // token 23, the last
		"AB" + strings.Repeat(" x", 21) + " HTTP/1.1 y", // token 23 of more
	}
	answers := []string{
		"GET / http/1.1", "GET /HTTP/1.1", "AB HTTP", "gxx / HTTP/1.1", "sx / HTTP/1.1", "mx / HTTP/1.1",
		"lru_crawler / HTTP/1.1", "watch / HTTP/1.1", "lru / HTTP/1.1", "extstore / HTTP/1.1",
		"H HTTP/1.1", // a 1-byte command is ERROR first
		"AB" + strings.Repeat(" x", 22) + " HTTP/1.1",   // token 24: memcached leaves it unsplit
		"AB" + strings.Repeat(" x", 20) + " HTTP/1.1 y", // not last
	}
	for _, line := range closes {
		rr := NewRequestReader(strings.NewReader(line+"\r\nversion\r\n"), 0)
		var req Request
		if err := rr.Next(&req); err != errHTTP {
			t.Errorf("%q: got %v, want the connection closed", line, err)
		}
	}
	for _, line := range answers {
		rr := NewRequestReader(strings.NewReader(line+"\r\nversion\r\n"), 0)
		var req Request
		err := rr.Next(&req)
		var fe *ForeignError
		if errors.As(err, &fe) {
			t.Errorf("%q: closed, but memcached answers it", line)
		}
		if err := rr.Next(&req); err != nil || req.Op != OpVersion {
			t.Errorf("%q: the next command parsed as %v, %v", line, req.Op, err)
		}
	}
}

// TestTextAfterStartIsText: the start is checked once; binary or TLS bytes
// later in a text stream are text, as memcached reads them.
func TestTextAfterStartIsText(t *testing.T) {
	rr := NewRequestReader(strings.NewReader("version\r\n\x80\x16\x03\x01\r\nversion\r\n"), 0)
	var req Request
	for i, want := range []error{nil, ErrUnknownCommand, nil} {
		if err := rr.Next(&req); err != want {
			t.Fatalf("command %d: %v, want %v", i, err, want)
		}
	}
}
