package textclient

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadValueKeepsKeyFlagsCas reads a gets reply one byte per read and
// checks every field of every value, and END.
func TestReadValueKeepsKeyFlagsCas(t *testing.T) {
	in := "VALUE a 7 3 99\r\nxyz\r\nVALUE bb 0 0\r\n\r\nEND\r\n"
	rr := NewReader(iotest.OneByteReader(strings.NewReader(in)), 0)
	var v Value
	if end, err := rr.ReadValue(&v); end || err != nil {
		t.Fatal(end, err)
	}
	if string(v.Key) != "a" || v.Flags != 7 || !v.HasCas || v.Cas != 99 || string(v.Data) != "xyz" {
		t.Fatalf("first value %+v", v)
	}
	if end, err := rr.ReadValue(&v); end || err != nil {
		t.Fatal(end, err)
	}
	if string(v.Key) != "bb" || v.HasCas || len(v.Data) != 0 {
		t.Fatalf("second value %+v", v)
	}
	if end, err := rr.ReadValue(&v); !end || err != nil {
		t.Fatal(end, err)
	}
}

func TestReadOne(t *testing.T) {
	for _, tt := range []struct {
		in    string
		found bool
		err   error
	}{
		{"END\r\n", false, nil},
		{"VALUE k 0 1\r\nx\r\nEND\r\n", true, nil},
		{"SERVER_ERROR down\r\n", false, ErrServerError},
		{"VALUE j 0 1\r\nx\r\nEND\r\n", false, ErrProtocol},
		{"VALUE k 0 1\r\nx\r\nVALUE k 0 1\r\nx\r\nEND\r\n", false, ErrProtocol},
		{"VALUE k 0 2\r\nx\r\nEND\r\n", false, ErrProtocol},
		{"STORED\r\n", false, ErrProtocol},
		{"VALUE k 0 5\r\nx", false, io.ErrUnexpectedEOF},
	} {
		var v Value
		found, err := NewReader(strings.NewReader(tt.in), 0).ReadOne([]byte("k"), &v)
		if found != tt.found || (tt.err == nil) != (err == nil) || tt.err != nil && !errors.Is(err, tt.err) {
			t.Errorf("ReadOne(%q) = %v, %v; want %v, %v", tt.in, found, err, tt.found, tt.err)
		}
	}
}

func TestReadStats(t *testing.T) {
	m, err := NewReader(strings.NewReader("STAT pid 12\r\nSTAT last_error dial tcp: refused\r\nEND\r\n"), 0).ReadStats()
	if err != nil || m["pid"] != "12" || m["last_error"] != "dial tcp: refused" {
		t.Fatalf("ReadStats = %v, %v", m, err)
	}
	if _, err := NewReader(strings.NewReader("ERROR\r\n"), 0).ReadStats(); err != ErrErrorReply {
		t.Fatalf("ERROR for stats: %v", err)
	}
	if _, err := NewReader(strings.NewReader("STAT a 1\r\nSTORED\r\n"), 0).ReadStats(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("STORED inside stats: %v", err)
	}
}

// TestParseUint: digits only, up to the limit; no sign, space or empty
// number, which memcached's replies never hold.
func TestParseUint(t *testing.T) {
	for _, tt := range []struct {
		in    string
		limit uint64
		want  uint64
		ok    bool
	}{
		{"0", 10, 0, true},
		{"10", 10, 10, true},
		{"11", 10, 0, false},
		{"18446744073709551615", 1<<64 - 1, 1<<64 - 1, true},
		{"18446744073709551616", 1<<64 - 1, 0, false},
		{"", 10, 0, false},
		{"+1", 10, 0, false},
		{"-0", 10, 0, false},
		{" 1", 10, 0, false},
		{"1 ", 10, 0, false},
		{"1_0", 100, 0, false},
		{"0x1", 100, 0, false},
	} {
		if v, ok := ParseUint([]byte(tt.in), tt.limit); v != tt.want || ok != tt.ok {
			t.Errorf("ParseUint(%q, %d) = %d, %v; want %d, %v", tt.in, tt.limit, v, ok, tt.want, tt.ok)
		}
	}
	if n := testing.AllocsPerRun(100, func() { ParseUint([]byte("12345"), 1<<64-1) }); n != 0 {
		t.Errorf("ParseUint allocates %v times for a valid number", n)
	}
}
