package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

func retrieval(op Op, keys ...string) []byte {
	var k [][]byte
	for _, s := range keys {
		k = append(k, []byte(s))
	}
	return AppendRetrieval(nil, op, 30, k)
}

func TestReadReplyTo(t *testing.T) {
	v := func(key string) string { return "VALUE " + key + " 0 1\r\nx\r\n" }
	vc := func(key string) string { return "VALUE " + key + " 0 1 9\r\nx\r\n" }
	for _, tc := range []struct {
		op    Op
		cmd   []byte
		reply string
		ok    bool
	}{
		{OpGet, retrieval(OpGet, "a", "b", "c"), v("a") + v("c") + "END\r\n", true},
		{OpGet, retrieval(OpGet, "a", "b", "c"), "END\r\n", true},
		{OpGet, retrieval(OpGet, "a", "b", "a"), v("a") + v("a") + "END\r\n", true},
		{OpGet, retrieval(OpGet, "a", "b", "a"), v("b") + v("a") + "END\r\n", true},
		{OpGet, retrieval(OpGet, "a", "b", "c"), "SERVER_ERROR out of memory\r\n", true},
		{OpGat, retrieval(OpGat, "a", "b"), v("a") + v("b") + "END\r\n", true},
		{OpGets, retrieval(OpGets, "a"), vc("a") + "END\r\n", true},
		{OpGats, retrieval(OpGats, "a"), vc("a") + "END\r\n", true},
		{OpGet, retrieval(OpGet, "a"), v("other") + "END\r\n", false},
		{OpGet, retrieval(OpGet, "a", "b"), v("b") + v("a") + "END\r\n", false},
		{OpGet, retrieval(OpGet, "a", "b"), v("a") + v("a") + "END\r\n", false},
		{OpGet, retrieval(OpGet, "ab"), v("a") + "END\r\n", false},
		{OpGet, retrieval(OpGet, "a"), v("ab") + "END\r\n", false},
		{OpGat, retrieval(OpGat, "a"), v("30") + "END\r\n", false}, // the exptime is no key
		{OpGet, retrieval(OpGet, "a"), vc("a") + "END\r\n", false},
		{OpGat, retrieval(OpGat, "a"), vc("a") + "END\r\n", false},
		{OpGets, retrieval(OpGets, "a"), v("a") + "END\r\n", false},
		{OpGats, retrieval(OpGats, "a"), v("a") + "END\r\n", false},
		{OpGet, retrieval(OpGet, "a"), "STORED\r\n", false},
		{OpSet, []byte("set a 0 0 1\r\nx\r\n"), "STORED\r\n", true},
		{OpAdd, []byte("add a 0 0 1\r\nx\r\n"), "NOT_STORED\r\n", true},
		{OpCas, []byte("cas a 0 0 1 5\r\nx\r\n"), "EXISTS\r\n", true},
		{OpCas, []byte("cas a 0 0 1 5\r\nx\r\n"), "NOT_FOUND\r\n", true},
		{OpSet, []byte("set a 0 0 1\r\nx\r\n"), "SERVER_ERROR object too large for cache\r\n", true},
		{OpSet, []byte("set a 0 0 1\r\nx\r\n"), "DELETED\r\n", false},
		{OpSet, []byte("set a 0 0 1\r\nx\r\n"), "5\r\n", false},
		{OpDelete, []byte("delete a\r\n"), "DELETED\r\n", true},
		{OpDelete, []byte("delete a\r\n"), "NOT_FOUND\r\n", true},
		{OpDelete, []byte("delete a\r\n"), "STORED\r\n", false},
		{OpTouch, []byte("touch a 0\r\n"), "TOUCHED\r\n", true},
		{OpTouch, []byte("touch a 0\r\n"), "DELETED\r\n", false},
		{OpIncr, []byte("incr a 1\r\n"), "18446744073709551615\r\n", true},
		{OpDecr, []byte("decr a 1\r\n"), "NOT_FOUND\r\n", true},
		{OpIncr, []byte("incr a 1\r\n"), "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n", true},
		{OpIncr, []byte("incr a 1\r\n"), "TOUCHED\r\n", false},
		{OpIncr, []byte("incr a 1\r\n"), "18446744073709551616\r\n", false},
		{OpFlushAll, []byte("flush_all\r\n"), "OK\r\n", true},
		{OpFlushAll, []byte("flush_all\r\n"), "STORED\r\n", false},
		{OpVersion, []byte("version\r\n"), "VERSION 1.6.18\r\n", true},
		{OpVersion, []byte("version\r\n"), "OK\r\n", false},
		{OpStats, []byte("stats\r\n"), "STAT pid 1\r\nEND\r\n", true},
	} {
		var r Reply
		err := NewReplyReader(strings.NewReader(tc.reply), 0).ReadReplyTo(tc.op, tc.cmd, &r)
		if tc.ok && err != nil {
			t.Errorf("%s %q answered %q: %v", tc.op, tc.cmd, tc.reply, err)
		}
		if !tc.ok && !errors.Is(err, ErrBadReply) {
			t.Errorf("%s %q answered %q: got %v, want ErrBadReply", tc.op, tc.cmd, tc.reply, err)
		}
		if tc.ok && string(r.Raw) != tc.reply {
			t.Errorf("%s %q: reply %q, want %q", tc.op, tc.cmd, r.Raw, tc.reply)
		}
	}
}

// A value for a key not asked is refused on its header: its data, which may
// be large or never come, is not waited for.
func TestReadReplyToRefusesBeforeTheData(t *testing.T) {
	var r Reply
	err := NewReplyReader(strings.NewReader("VALUE other 0 1000\r\n"), 0).ReadReplyTo(OpGet, retrieval(OpGet, "a"), &r)
	if !errors.Is(err, ErrBadReply) {
		t.Fatalf("got %v, want ErrBadReply before the data", err)
	}
}

func TestReadReplyToAllocatesNothing(t *testing.T) {
	cmd := retrieval(OpGets, "a", "b", "c")
	checkReplyToAllocs(t, OpGets, cmd, strings.Repeat("VALUE a 0 1 1\r\nx\r\nVALUE c 0 2 2\r\nyy\r\nEND\r\n", 100))
}

// checkReplyToAllocs reads a reply to cmd, an op, from stream, which
// grows r, and checks that reading the next ones allocates nothing.
func checkReplyToAllocs(t *testing.T, op Op, cmd []byte, stream string) {
	t.Helper()
	rr := NewReplyReader(strings.NewReader(stream), 0)
	var r Reply
	if err := rr.ReadReplyTo(op, cmd, &r); err != nil { // grows r
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(50, func() {
		if err := rr.ReadReplyTo(op, cmd, &r); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per reply", allocs)
	}
}

// FuzzReplyReaderTo feeds arbitrary backend bytes as the replies to one
// command and checks ReadReplyTo against a plain reading of what memcached
// guarantees (refAnswers, apart from the reader), whole and byte by byte.
// Seeds live in testdata/fuzz/FuzzReplyReaderTo.
func FuzzReplyReaderTo(f *testing.F) {
	f.Add(uint8(OpGet), []byte("a b a"), []byte("VALUE a 0 1\r\nx\r\nVALUE a 0 1\r\ny\r\nEND\r\n"))
	f.Fuzz(func(t *testing.T, opb uint8, keyList, in []byte) {
		op := Op(opb % uint8(NumOps))
		if op == OpNone || op.IsMeta() {
			// The reference reads text replies; meta replies have their own
			// target (FuzzMetaReply) and reference.
			op = OpGet
		}
		var keys [][]byte
		for _, k := range bytes.Fields(keyList) {
			if validKey(k) && len(keys) < 8 {
				keys = append(keys, k)
			}
		}
		cmd := []byte(op.String() + "\r\n")
		if op.IsRetrieval() {
			cmd = AppendRetrieval(nil, op, 7, keys)
		}
		const maxValue = 1024
		a := readThreeWays(t, in, func(rd io.Reader) []string { return replyToTranscript(t, op, cmd, rd, maxValue) })
		if b := strings.Join(refReplyToTranscript(op, keys, in, maxValue), "\n"); a != b {
			t.Fatalf("%q: reader and reference disagree:\nreader    %q\nreference %q", cmd, a, b)
		}
	})
}

func replyToTranscript(t *testing.T, op Op, cmd []byte, rd io.Reader, maxValue int) []string {
	rr := NewReplyReader(rd, maxValue)
	var r Reply
	var out []string
	for i := 0; i < 10000; i++ {
		err := retry(func() error { return rr.ReadReplyTo(op, cmd, &r) })
		if err != nil {
			if err == io.EOF && len(r.Raw) == 0 && rr.Buffered() == 0 {
				return append(out, "clean end")
			}
			if !errors.Is(err, ErrBadReply) && err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatalf("error %v is neither ErrBadReply nor a short read", err)
			}
			return append(out, "refused")
		}
		out = append(out, fmt.Sprintf("reply %q", r.Raw))
	}
	t.Fatal("reply parser did not make progress")
	return nil
}

func refReplyToTranscript(op Op, keys [][]byte, in []byte, maxValue int) []string {
	var out []string
	for len(in) > 0 && len(out) < 10000 {
		n, blocks, isErr, ok := refReply(KindOf(op), in, maxValue)
		if !ok || (!isErr && !refAnswers(op, keys, in[:n], blocks)) {
			return append(out, "refused")
		}
		out = append(out, fmt.Sprintf("reply %q", in[:n]))
		in = in[n:]
	}
	return append(out, "clean end")
}

// refAnswers is what memcached guarantees of a well-formed reply that is
// not an error line: a retrieval's values are a subsequence of the keys
// asked, with a cas unique exactly for gets and gats; a line is one that
// memcached gives to op.
func refAnswers(op Op, keys [][]byte, raw []byte, blocks [][2][]byte) bool {
	if op.IsRetrieval() {
		next := 0
		for _, b := range blocks {
			header, _, _ := bytes.Cut(b[1], []byte("\r\n"))
			withCas := len(strings.Split(string(header), " ")) == 5
			if withCas != (op == OpGets || op == OpGats) {
				return false
			}
			for next < len(keys) && !bytes.Equal(keys[next], b[0]) {
				next++
			}
			if next == len(keys) {
				return false
			}
			next++
		}
		return true
	}
	if KindOf(op) != ReplyLine {
		return true
	}
	line := strings.TrimSuffix(string(raw), "\r\n")
	_, numErr := strconv.ParseUint(line, 10, 64)
	allowed := map[Op][]string{
		OpSet: {"STORED", "NOT_STORED", "EXISTS", "NOT_FOUND"}, OpAdd: {"STORED", "NOT_STORED", "EXISTS", "NOT_FOUND"},
		OpReplace: {"STORED", "NOT_STORED", "EXISTS", "NOT_FOUND"}, OpAppend: {"STORED", "NOT_STORED", "EXISTS", "NOT_FOUND"},
		OpPrepend: {"STORED", "NOT_STORED", "EXISTS", "NOT_FOUND"}, OpCas: {"STORED", "NOT_STORED", "EXISTS", "NOT_FOUND"},
		OpDelete: {"DELETED", "NOT_FOUND"}, OpTouch: {"TOUCHED", "NOT_FOUND"},
		OpIncr: {"NOT_FOUND"}, OpDecr: {"NOT_FOUND"}, OpFlushAll: {"OK"}, OpVerbosity: {"OK"},
	}
	switch op {
	case OpIncr, OpDecr:
		if numErr == nil {
			return true
		}
	case OpVersion:
		return strings.HasPrefix(line, "VERSION ")
	case OpNone, OpQuit: // not sent to a backend: any one-line reply
		return true
	}
	for _, s := range allowed[op] {
		if line == s {
			return true
		}
	}
	return false
}
