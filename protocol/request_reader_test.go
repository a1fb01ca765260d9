package protocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// parseAll runs the reader over input the way the proxy does and returns,
// per command, either "<op> k1,k2 ..." or the error line, so tests read as
// a transcript.
func parseAll(t testing.TB, input string, maxItem int) []string {
	t.Helper()
	rr := NewRequestReader(strings.NewReader(input), maxItem)
	var out []string
	var req Request
	for {
		err := rr.Next(&req)
		if err != nil {
			var re *ReplyError
			if errors.As(err, &re) {
				if req.NoReply && re != ErrLineTooLong {
					out = append(out, "(silent) "+re.Line)
				} else {
					out = append(out, re.Line)
				}
				if re == ErrLineTooLong {
					return out
				}
				continue
			}
			if err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatalf("unexpected error %v", err)
			}
			return out
		}
		s := req.Op.String()
		if len(req.Keys) > 0 {
			s += " " + string(bytes.Join(req.Keys, []byte(",")))
		}
		if req.NoReply {
			s += " noreply"
		}
		if req.Op.IsStorage() {
			data := make([]byte, req.Bytes+2)
			if err := rr.ReadData(data); err != nil {
				if err == ErrBadDataChunk {
					out = append(out, s+" => "+err.Error())
					continue
				}
				return append(out, s+" => "+err.Error())
			}
			s += " data=" + string(data[:req.Bytes])
		}
		out = append(out, s)
	}
}

func TestRequestReaderTranscripts(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
	}{
		{"get", "get a\r\n", []string{"get a"}},
		{"multi get", "get a b  c\r\n", []string{"get a,b,c"}},
		{"bare newline", "get a\n", []string{"get a"}},
		{"gets", "gets a b\r\n", []string{"gets a,b"}},
		{"gat", "gat 10 a b\r\n", []string{"gat a,b"}},
		{"gat no key", "gat 10\r\n", []string{"gat"}},
		{"gat bad exptime", "gat x a\r\n", []string{"CLIENT_ERROR invalid exptime argument"}},
		{"get no key", "get\r\n", []string{"ERROR"}},
		{"key too long", "get " + strings.Repeat("k", 251) + "\r\n", []string{"CLIENT_ERROR bad command line format"}},
		{"key max", "get " + strings.Repeat("k", 250) + "\r\n", []string{"get " + strings.Repeat("k", 250)}},
		{"control char key", "get a\tb\r\n", []string{"CLIENT_ERROR bad command line format"}},
		{"set", "set k 5 0 3\r\nabc\r\n", []string{"set k data=abc"}},
		{"set noreply", "set k 5 0 3 noreply\r\nabc\r\n", []string{"set k noreply data=abc"}},
		{"set other 6th token", "set k 5 0 3 junk\r\nabc\r\n", []string{"set k data=abc"}},
		{"set binary", "set k 0 0 4\r\na\r\nb\r\n", []string{"set k data=a\r\nb"}},
		{"set empty", "set k 0 0 0\r\n\r\n", []string{"set k data="}},
		{"bad data chunk", "set k 0 0 3\r\nabcd\r\nget a\r\n", []string{"set k => CLIENT_ERROR bad data chunk", "ERROR", "get a"}},
		{"set bad flags keeps data as command", "set k x 0 3\r\nabc\r\n", []string{"CLIENT_ERROR bad command line format", "ERROR"}},
		{"set bad flags noreply", "set k x 0 3 noreply\r\nget a\r\n", []string{"(silent) CLIENT_ERROR bad command line format", "get a"}},
		{"set negative length", "set k 0 0 -1\r\n", []string{"CLIENT_ERROR bad command line format"}},
		{"set too few tokens", "set k 0 0\r\n", []string{"ERROR"}},
		{"set too many tokens", "set k 0 0 1 noreply x\r\n", []string{"ERROR"}},
		{"set too large swallows", "set k 0 0 20\r\n01234567890123456789\r\nget a\r\n", []string{"SERVER_ERROR object too large for cache", "get a"}},
		{"cas", "cas k 0 0 1 99\r\nx\r\n", []string{"cas k data=x"}},
		{"cas bad unique", "cas k 0 0 1 -1\r\n", []string{"CLIENT_ERROR bad command line format"}},
		{"cas missing unique", "cas k 0 0 1\r\n", []string{"ERROR"}},
		{"incr", "incr k 5\r\n", []string{"incr k"}},
		{"incr bad delta", "incr k x\r\n", []string{"CLIENT_ERROR invalid numeric delta argument"}},
		{"incr bad delta noreply", "incr k x noreply\r\n", []string{"(silent) CLIENT_ERROR invalid numeric delta argument"}},
		{"decr", "decr k 1 noreply\r\n", []string{"decr k noreply"}},
		{"touch", "touch k 10\r\n", []string{"touch k"}},
		{"touch bad", "touch k x\r\n", []string{"CLIENT_ERROR invalid exptime argument"}},
		{"delete", "delete k\r\n", []string{"delete k"}},
		{"delete 0", "delete k 0\r\n", []string{"delete k"}},
		{"delete noreply", "delete k noreply\r\n", []string{"delete k noreply"}},
		{"delete 0 noreply", "delete k 0 noreply\r\n", []string{"delete k noreply"}},
		{"delete hold", "delete k 5\r\n", []string{"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"}},
		{"delete hold noreply", "delete k 5 noreply\r\n", []string{"(silent) CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"}},
		{"flush_all", "flush_all\r\nflush_all 10\r\nflush_all noreply\r\n", []string{"flush_all", "flush_all", "flush_all noreply"}},
		{"flush_all bad", "flush_all x\r\n", []string{"CLIENT_ERROR invalid exptime argument"}},
		{"version", "version\r\n", []string{"version"}},
		{"verbosity", "verbosity 1\r\nverbosity\r\nverbosity x\r\n", []string{"verbosity", "ERROR", "CLIENT_ERROR bad command line format"}},
		{"stats", "stats\r\nstats backends\r\n", []string{"stats", "stats"}},
		{"quit", "quit\r\n", []string{"quit"}},
		{"unknown", "bogus\r\nGET a\r\n\r\nx\r\n", []string{"ERROR", "ERROR", "ERROR", "ERROR"}},
		{"leading spaces", "   get a\r\n", []string{"get a"}},
		{"nul ends the line", "get a\x00b c\r\n", []string{"get a"}},
		{"pipelined", "get a\r\nset b 0 0 1\r\nx\r\ndelete b\r\n", []string{"get a", "set b data=x", "delete b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := parseAll(t, tc.in, 10)
			if tc.name != "set too large swallows" {
				got = parseAll(t, tc.in, DefaultMaxItemSize)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("input %q\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRequestReaderFields(t *testing.T) {
	rr := NewRequestReader(strings.NewReader("cas k 4294967297 -5 2 18446744073709551615 noreply\r\nhi\r\n"), 0)
	var req Request
	if err := rr.Next(&req); err != nil {
		t.Fatal(err)
	}
	// flags wrap to 32 bits as in memcached on LP64.
	if req.Flags != 1 || req.Exptime != -5 || req.Bytes != 2 || req.Cas != 18446744073709551615 || !req.NoReply {
		t.Fatalf("fields: %+v", req)
	}
	line := string(AppendStorageLine(nil, &req))
	if line != "cas k 1 -5 2 18446744073709551615\r\n" {
		t.Fatalf("canonical line %q", line)
	}
}

func TestLineTooLong(t *testing.T) {
	got := parseAll(t, "set "+strings.Repeat("k", MaxLineLength+10), 0)
	if len(got) != 1 || got[0] != ErrLineTooLong.Line {
		t.Fatalf("got %q", got)
	}
	// A get line may be long, up to its own bound.
	keys := strings.Repeat("abcdefgh ", 20000) // 180 KB
	got = parseAll(t, "get "+keys+"\r\n", 0)
	if len(got) != 1 || !strings.HasPrefix(got[0], "get abcdefgh,") {
		t.Fatalf("long get: %.80q", got)
	}
	got = parseAll(t, "get "+strings.Repeat("k ", MaxRetrievalLineLength), 0)
	if len(got) != 1 || got[0] != ErrLineTooLong.Line {
		t.Fatalf("overlong get: %.80q", got)
	}
}

// TestLineLimitExact pins the limits to the line's content, CRLF not
// counted, and checks that the verdict is the same however the bytes arrive.
func TestLineLimitExact(t *testing.T) {
	pad := func(prefix string, n int) string { return prefix + strings.Repeat(" ", n-len(prefix)) }
	cases := []struct {
		name, in string
		want     string
	}{
		{"line at the limit", pad("set k 0 0 1", MaxLineLength) + "\r\nx\r\n", "set k data=x"},
		{"line at the limit, bare LF", pad("set k 0 0 1", MaxLineLength) + "\nx\r\n", "set k data=x"},
		{"line over the limit", pad("set k 0 0 1", MaxLineLength+1) + "\r\nx\r\n", ErrLineTooLong.Line},
		{"get at the limit", pad("get k", MaxRetrievalLineLength) + "\r\n", "get k"},
		{"get over the limit", pad("get k", MaxRetrievalLineLength+1) + "\r\n", ErrLineTooLong.Line},
		// memcached lets at most 100 spaces precede a long get.
		{"100 spaces then a long get", strings.Repeat(" ", 100) + "get " + strings.Repeat("k ", MaxLineLength) + "\r\n", "get " + strings.Repeat("k,", MaxLineLength-1) + "k"},
		{"101 spaces then a long get", strings.Repeat(" ", 101) + "get " + strings.Repeat("k ", MaxLineLength) + "\r\n", ErrLineTooLong.Line},
	}
	for _, tc := range cases {
		for _, bytewise := range []bool{false, true} {
			var rd io.Reader = strings.NewReader(tc.in)
			if bytewise {
				rd = oneByteReader{rd}
			}
			rr := NewRequestReader(rd, 0)
			var req Request
			got := ""
			if err := rr.Next(&req); err != nil {
				got = err.Error()
			} else {
				got = req.Op.String() + " " + string(bytes.Join(req.Keys, []byte(",")))
				if req.Op.IsStorage() {
					data := make([]byte, req.Bytes+2)
					if err := rr.ReadData(data); err != nil {
						t.Fatal(err)
					}
					got += " data=" + string(data[:req.Bytes])
				}
			}
			if got != tc.want {
				t.Errorf("%s (bytewise %v): got %.60q want %.60q", tc.name, bytewise, got, tc.want)
			}
			if len(rr.buf) > MaxRetrievalLineLength+2 {
				t.Errorf("%s: buffer of %d bytes", tc.name, len(rr.buf))
			}
		}
	}
}

// TestCanonicalLineWithinLimits checks that what the proxy sends a backend
// is never longer than what the client sent, even at the line limit and
// with exptimes that memcached reads by wrapping 64 bits to 32.
func TestCanonicalLineWithinLimits(t *testing.T) {
	keys := strings.Repeat("k ", (MaxRetrievalLineLength-len("gat 2147483648 "))/2)
	line := "gat 2147483648 " + keys
	line += strings.Repeat("x", MaxRetrievalLineLength-len(line)) + "\n" // bare LF: the canonical line adds a CR
	rr := NewRequestReader(strings.NewReader(line), 0)
	var req Request
	if err := rr.Next(&req); err != nil {
		t.Fatal(err)
	}
	canon := AppendRetrieval(nil, req.Op, req.Exptime, req.Keys)
	if len(canon)-2 > MaxRetrievalLineLength {
		t.Fatalf("canonical line of %d bytes", len(canon))
	}
	again := NewRequestReader(bytes.NewReader(canon), 0)
	var req2 Request
	if err := again.Next(&req2); err != nil || req2.Exptime != req.Exptime || len(req2.Keys) != len(req.Keys) {
		t.Fatalf("canonical line: %v, exptime %d keys %d", err, req2.Exptime, len(req2.Keys))
	}
}

func TestAppendInt32(t *testing.T) {
	for v, want := range map[int32]string{
		0: "0", 5: "5", -1: "-1", 2147483647: "2147483647", -999999999: "-999999999",
		-1000000000: "3294967296", -2147483648: "2147483648",
	} {
		got := AppendInt32(nil, v)
		if string(got) != want {
			t.Errorf("AppendInt32(%d) = %s want %s", v, got, want)
		}
		if back, ok := parseInt32(got); !ok || back != v {
			t.Errorf("%s parses as %d,%v, not %d", got, back, ok, v)
		}
	}
}

// oneByteReader delivers its input a byte at a time, the worst case for a
// streaming parser.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

// stutterReader is a non-blocking stream that has one byte at a time: every
// other Read returns ErrWouldBlock, as a socket with nothing more to read
// does. Readers on it must resume where they stopped.
type stutterReader struct {
	r       io.Reader
	blocked *bool
}

func newStutterReader(r io.Reader) stutterReader { return stutterReader{r: r, blocked: new(bool)} }

func (s stutterReader) Read(p []byte) (int, error) {
	if *s.blocked = !*s.blocked; *s.blocked {
		return 0, ErrWouldBlock
	}
	return s.r.Read(p[:1])
}

// retry calls f until it returns something other than ErrWouldBlock, as an
// event loop calls a reader again once its socket is readable.
func retry(f func() error) error {
	for {
		if err := f(); err != ErrWouldBlock {
			return err
		}
	}
}

// commandNames reads rr to the end of its stream and returns the name of
// each command, or the line of the error that refused it. A data block is
// read, or skipped with DiscardData when discard is set. An error that ends
// the connection ends the list.
func commandNames(t *testing.T, rr *RequestReader, discard bool) []string {
	t.Helper()
	var req Request
	var got []string
	for {
		err := rr.Next(&req)
		if err == io.EOF {
			return got
		}
		if err != nil {
			got = append(got, err.Error())
			var re *ReplyError
			if !errors.As(err, &re) || re == ErrLineTooLong {
				return got
			}
			continue
		}
		got = append(got, req.Op.String())
		switch {
		case !req.Op.HasData():
		case discard:
			rr.DiscardData(&req)
		default:
			if err := rr.ReadData(make([]byte, req.Bytes+2)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestRequestReaderByteAtATime(t *testing.T) {
	in := "get a b\r\nset k 0 0 5\r\nhello\r\nset big 0 0 30\r\n012345678901234567890123456789\r\nincr k 1\r\n"
	got := commandNames(t, NewRequestReader(oneByteReader{strings.NewReader(in)}, 10), false)
	want := "get,set,SERVER_ERROR object too large for cache,incr"
	if strings.Join(got, ",") != want {
		t.Fatalf("got %v want %v", got, want)
	}
}

func TestNumbersLikeMemcached(t *testing.T) {
	u32 := []numberCase[uint32]{
		{"0", 0, true}, {"42", 42, true}, {"+7", 7, true}, {"-0", 0, true},
		{"-1", 0, false}, {"4294967295", 4294967295, true}, {"4294967296", 0, true},
		{"18446744073709551615", 4294967295, true}, {"18446744073709551616", 0, false},
		{"", 0, false}, {"x", 0, false}, {"5x", 0, false}, {"5\tx", 5, true}, {"\t5", 5, true},
	}
	checkNumbers(t, "parseUint32", parseUint32, u32)
	i32 := []numberCase[int32]{
		{"0", 0, true}, {"-5", -5, true}, {"2147483647", 2147483647, true},
		{"2147483648", -2147483648, true}, {"4294967297", 1, true},
		{"9223372036854775807", -1, true}, {"9223372036854775808", 0, false},
		{"-9223372036854775808", 0, true}, {"-9223372036854775809", 0, false},
		{"--1", 0, false}, {"1.5", 0, false},
	}
	checkNumbers(t, "parseInt32", parseInt32, i32)
	u64 := []numberCase[uint64]{
		{"18446744073709551615", 18446744073709551615, true}, {"18446744073709551616", 0, false},
		{"-1", 0, false}, {"-0", 0, true}, {"12", 12, true},
	}
	checkNumbers(t, "parseUint64", parseUint64, u64)
}

// numberCase is a number parser's input and its expected result.
type numberCase[T any] struct {
	in string
	v  T
	ok bool
}

// checkNumbers runs parse, named name, on each case.
func checkNumbers[T comparable](t *testing.T, name string, parse func([]byte) (T, bool), cases []numberCase[T]) {
	t.Helper()
	for _, c := range cases {
		v, ok := parse([]byte(c.in))
		if v != c.v || ok != c.ok {
			t.Errorf("%s(%q) = %v,%v want %v,%v", name, c.in, v, ok, c.v, c.ok)
		}
	}
}

func BenchmarkRequestReaderGet(b *testing.B) {
	line := []byte("get user:123456789\r\n")
	in := bytes.Repeat(line, 1000)
	var req Request
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for i := 0; i < b.N; {
		rr := NewRequestReader(bytes.NewReader(in), 0)
		for j := 0; j < 1000 && i < b.N; j++ {
			if err := rr.Next(&req); err != nil {
				b.Fatal(err)
			}
			i++
		}
	}
}
