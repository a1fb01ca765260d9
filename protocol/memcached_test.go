package protocol_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/protocol"
)

// These tests hold the parsers to a real memcached: the request parser
// must refuse exactly the lines memcached refuses, with memcached's words,
// and stay in step with it; the reply parser must frame memcached's real
// replies exactly.

func startMemcached(t *testing.T) *memcachedtest.Server {
	t.Helper()
	if _, err := memcachedtest.Binary(); err != nil {
		t.Skip(err)
	}
	return memcachedtest.Start(t)
}

// exchange sends input and then "version", and returns what memcached
// answered before the version's reply. It fails if the version's reply
// does not come: then memcached lost track of where commands start.
func exchange(t *testing.T, addr string, input []byte) []byte {
	t.Helper()
	c := memcachedtest.Dial(t, addr)
	defer c.Close() // at once, not at the end of the test: a test makes one exchange an input
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	go func() { _, _ = c.Write(append(bytes.Clone(input), "version\r\n"...)) }()
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		if i := bytes.Index(got, []byte("VERSION ")); i >= 0 && bytes.HasSuffix(got, []byte("\r\n")) && (i == 0 || got[i-1] == '\n') {
			return got[:i]
		}
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("input %.80q: no reply to the trailing version (%v); got %.200q", input, err, got)
		}
	}
}

// compareErrors sends each input to the memcached at addr and checks that
// the parser finds the errors memcached answers, in the same order.
func compareErrors(t *testing.T, addr string, inputs []string) {
	t.Helper()
	for _, in := range inputs {
		want := errorLines(exchange(t, addr, []byte(in)))
		got := parserErrors(t, []byte(in))
		if testing.Verbose() {
			t.Logf("%.60q: %q", in, want)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("input %.80q:\nparser    %q\nmemcached %q", in, got, want)
		}
	}
}

// errorLines returns the error replies in a reply stream.
func errorLines(replies []byte) []string {
	var out []string
	for _, l := range strings.Split(string(replies), "\r\n") {
		if l == "ERROR" || strings.HasPrefix(l, "ERROR:") || strings.HasPrefix(l, "CLIENT_ERROR ") || strings.HasPrefix(l, "SERVER_ERROR ") {
			out = append(out, l)
		}
	}
	return out
}

// parserErrors runs the request parser over input followed by "version" and
// returns the error replies a client would see (none for noreply), failing
// unless the parser, too, ends on the version command.
func parserErrors(t *testing.T, input []byte) []string {
	t.Helper()
	rr := protocol.NewRequestReader(bytes.NewReader(append(bytes.Clone(input), "version\r\n"...)), 0)
	var req protocol.Request
	var out []string
	last := protocol.OpNone
	for {
		err := rr.Next(&req)
		if err == io.EOF {
			break
		}
		var re *protocol.ReplyError
		switch {
		case errors.As(err, &re):
			if !req.NoReply {
				out = append(out, re.Line)
			}
			last = protocol.OpNone
			continue
		case err != nil:
			t.Fatalf("input %.80q: %v", input, err)
		}
		last = req.Op
		if req.Op.HasData() {
			data := make([]byte, req.Bytes+2)
			if err := rr.ReadData(data); err == protocol.ErrBadDataChunk {
				if !req.NoReply {
					out = append(out, err.Error())
				}
			} else if err != nil {
				t.Fatalf("input %.80q: data: %v", input, err)
			}
		}
	}
	if last != protocol.OpVersion {
		t.Fatalf("input %.80q: the parser did not end on the trailing version", input)
	}
	return out
}

func TestRequestVerdictsMatchMemcached(t *testing.T) {
	mc := startMemcached(t)
	k251 := strings.Repeat("k", 251)
	cases := []string{
		// retrievals
		"get a\r\n", "get\r\n", "gets\r\n", "gat\r\n", "gat 10\r\n", "gats 10\r\n", "gat x a\r\n", "gat 1x a\r\n",
		"gat 5\ta b\r\n", "gat 9223372036854775808 a\r\n", "gat 2147483648 a\r\n", "get " + k251 + "\r\n",
		"get " + k251[:250] + "\r\n", "gets a " + k251 + "\r\n", "bget a\r\n", "get a\x00b c\r\n",
		"get " + strings.Repeat("k ", 30) + "\r\n", "  get a\r\n", "get a\n",
		// storage
		"set k 0 0 1\r\nx\r\n", "set k 0 0 1 noreply\r\nx\r\n", "set k 0 0 1 junk\r\nx\r\n", "set k x 0 1\r\nx\r\n",
		"set k x 0 1 noreply\r\nx\r\n", "set k 0 0 -1\r\n", "set k 0 0\r\n", "set k 0 0 1 noreply x\r\nx\r\n",
		"set k -1 0 1\r\nx\r\n", "set k -0 0 1\r\nx\r\n", "set k 4294967296 0 1\r\nx\r\n", "set k 0 0 4294967297\r\nx\r\n",
		"set k 0 0 3\r\nabcd\r\n", "set k 0 0 3 noreply\r\nabcd\r\n", "set k 0 0 0\r\n\r\n", "set k 0 0 1\r\nxy\r\n",
		"set k 0 0 2000000\r\n" + strings.Repeat("v", 2000002), "set k 0 0 2000000 noreply\r\n" + strings.Repeat("v", 2000002),
		"set " + k251 + " 0 0 1\r\nx\r\n", "cas k 0 0 1 -1\r\nx\r\n", "cas k 0 0 1\r\nx\r\n", "cas k 0 0 1 99\r\nx\r\n",
		"add k 0 0 1 \r\nx\r\n", "  set k 0 0 1\r\nx\r\n", "set k 0 0 1\nx\r\n", "set k 0 0 1\r\nx\n\n",
		"set k 0 +1 1\r\nx\r\n", "set k 0 0 1\x00junk\r\nx\r\n", "set k\x00 0 0 1\r\nx\r\n", "set k 0 0 1\t\r\nx\r\n",
		"append k 0 0 1\r\nx\r\n", "prepend k 0 0 1\r\nx\r\n", "replace k 0 0 1\r\nx\r\n", "set k 0 0 x1\r\nx\r\n",
		// arithmetic, touch, delete
		"incr cnt 1\r\n", "incr cnt x\r\n", "incr cnt -1\r\n", "incr cnt 18446744073709551616\r\n", "incr cnt 1 noreply\r\n",
		"incr cnt\r\n", "decr cnt 1 2 3\r\n", "incr " + k251 + " 1\r\n", "decr cnt -0\r\n",
		"touch k 10\r\n", "touch k x\r\n", "touch k 9223372036854775808\r\n", "touch k\r\n", "touch k 1 noreply\r\n",
		"delete k\r\n", "delete k 0\r\n", "delete k noreply\r\n", "delete k 0 noreply\r\n", "delete k 5\r\n",
		"delete k 5 noreply\r\n", "delete k 0 0\r\n", "delete\r\n", "delete k 0 noreply x\r\n", "delete " + k251 + "\r\n",
		// the rest
		"flush_all\r\n", "flush_all 0\r\n", "flush_all x\r\n", "flush_all noreply\r\n", "flush_all x noreply\r\n",
		"flush_all 0 0 0\r\n", "flush_all -1\r\n", "verbosity\r\n", "verbosity 1\r\n", "verbosity x\r\n",
		"verbosity 1 noreply\r\n", "verbosity x noreply\r\n", "version x\r\n",
		"bogus\r\n", "GET a\r\n", "\r\n", "\n", "x\r\n", "\x01\x02\r\n", "g\r\n", "ge a\r\n", "sets k\r\n",
		"\r\r\n", " \r\n", "get\t a\r\n",
		// shutdown is refused as by a memcached without -A, noreply or not
		"shutdown\r\n", "shutdown graceful\r\n", "shutdown foo bar\r\n", "shutdown noreply\r\n",
		"shutdown graceful noreply\r\n", "SHUTDOWN\r\n", "  shutdown\r\n", "shutdownx\r\n",
	}
	compareErrors(t, mc.Addr, cases)
}

// recorder keeps every byte read through it.
type recorder struct {
	r   io.Reader
	got []byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.got = append(r.got, p[:n]...)
	return n, err
}

func TestRepliesOfMemcached(t *testing.T) {
	mc := startMemcached(t)
	type step struct {
		cmd  []byte
		kind protocol.ReplyKind
		// want is the exact reply, or a prefix when it ends in "*"; keys
		// lists the keys of the values of a retrieval.
		want string
		keys []string
	}
	store := func(op protocol.Op, key string, cas uint64, data string) []byte {
		req := protocol.Request{Op: op, Keys: [][]byte{[]byte(key)}, Flags: 7, Bytes: len(data), Cas: cas}
		return append(append(protocol.AppendStorageLine(nil, &req), data...), "\r\n"...)
	}
	keyed := func(op protocol.Op, key string, n uint64) []byte {
		req := protocol.Request{Op: op, Keys: [][]byte{[]byte(key)}, Delta: n, Exptime: int32(n)}
		return protocol.AppendKeyCommand(nil, &req)
	}
	get := func(op protocol.Op, keys ...string) []byte {
		var k [][]byte
		for _, s := range keys {
			k = append(k, []byte(s))
		}
		return protocol.AppendRetrieval(nil, op, 100, k)
	}
	tricky := "x\r\nEND\r\nVALUE y 0 1\r\nz\r\nSERVER_ERROR no\r\n"
	large := strings.Repeat("L", 500000)
	steps := []step{
		{cmd: store(protocol.OpSet, "a", 0, "hello"), want: "STORED\r\n"},
		{cmd: store(protocol.OpSet, "bin", 0, tricky), want: "STORED\r\n"},
		{cmd: store(protocol.OpSet, "empty", 0, ""), want: "STORED\r\n"},
		{cmd: get(protocol.OpGet, "a", "miss", "bin", "empty", "a"), kind: protocol.ReplyRetrieval,
			want: "VALUE a 7 5\r\nhello\r\nVALUE bin 7 " + fmt.Sprint(len(tricky)) + "\r\n" + tricky + "\r\nVALUE empty 7 0\r\n\r\nVALUE a 7 5\r\nhello\r\nEND\r\n",
			keys: []string{"a", "bin", "empty", "a"}},
		{cmd: get(protocol.OpGets, "a"), kind: protocol.ReplyRetrieval, want: "VALUE a 7 5 *", keys: []string{"a"}},
		{cmd: get(protocol.OpGat, "a", "miss"), kind: protocol.ReplyRetrieval, want: "VALUE a 7 5\r\nhello\r\nEND\r\n", keys: []string{"a"}},
		{cmd: get(protocol.OpGats, "miss"), kind: protocol.ReplyRetrieval, want: "END\r\n"},
		{cmd: store(protocol.OpAdd, "a", 0, "x"), want: "NOT_STORED\r\n"},
		{cmd: store(protocol.OpReplace, "miss", 0, "x"), want: "NOT_STORED\r\n"},
		{cmd: store(protocol.OpAppend, "a", 0, "!"), want: "STORED\r\n"},
		{cmd: store(protocol.OpPrepend, "a", 0, "<"), want: "STORED\r\n"},
		{cmd: store(protocol.OpCas, "a", 1, "x"), want: "EXISTS\r\n"},
		{cmd: store(protocol.OpCas, "miss", 1, "x"), want: "NOT_FOUND\r\n"},
		{cmd: store(protocol.OpSet, "n", 0, "10"), want: "STORED\r\n"},
		{cmd: keyed(protocol.OpIncr, "n", 5), want: "15\r\n"},
		{cmd: keyed(protocol.OpDecr, "n", 100), want: "0\r\n"},
		{cmd: keyed(protocol.OpIncr, "a", 1), want: "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"},
		{cmd: keyed(protocol.OpIncr, "miss", 1), want: "NOT_FOUND\r\n"},
		{cmd: keyed(protocol.OpTouch, "a", 10), want: "TOUCHED\r\n"},
		{cmd: keyed(protocol.OpTouch, "miss", 10), want: "NOT_FOUND\r\n"},
		{cmd: store(protocol.OpSet, "big", 0, strings.Repeat("B", 2000000)), want: "SERVER_ERROR object too large for cache\r\n"},
		{cmd: store(protocol.OpSet, "large", 0, large), want: "STORED\r\n"},
		{cmd: get(protocol.OpGet, "large", "a"), kind: protocol.ReplyRetrieval,
			want: "VALUE large 7 500000\r\n" + large + "\r\nVALUE a 7 7\r\n<hello!\r\nEND\r\n", keys: []string{"large", "a"}},
		{cmd: protocol.AppendDelete(nil, []byte("a")), want: "DELETED\r\n"},
		{cmd: protocol.AppendDelete(nil, []byte("a")), want: "NOT_FOUND\r\n"},
		{cmd: []byte("stats\r\n"), kind: protocol.ReplyStats, want: "STAT pid *"},
		{cmd: []byte("version\r\n"), want: "VERSION *"},
		{cmd: protocol.AppendFlushAll(nil, &protocol.Request{}), want: "OK\r\n"},
		{cmd: get(protocol.OpGet, "n"), kind: protocol.ReplyRetrieval, want: "END\r\n"},
	}
	c := memcachedtest.Dial(t, mc.Addr)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var all []byte
	for _, s := range steps {
		all = append(all, s.cmd...)
	}
	go func() { _, _ = c.Write(all) }() // pipelined, while the replies are read
	rec := &recorder{r: c}
	rr := protocol.NewReplyReader(rec, 0)
	var r protocol.Reply
	var framed []byte
	for i, s := range steps {
		// Every reply of memcached's answers its command, as ReadReplyTo
		// checks it: keys in order, cas uniques where due, the right line.
		if err := rr.ReadReplyTo(opOf(s.cmd), s.cmd, &r); err != nil {
			t.Fatalf("step %d (%.40q): %v", i, s.cmd, err)
		}
		if k := protocol.KindOf(opOf(s.cmd)); k != s.kind {
			t.Fatalf("step %d: kind %d, want %d", i, k, s.kind)
		}
		framed = append(framed, r.Raw...)
		raw := string(r.Raw)
		if w, prefix := strings.CutSuffix(s.want, "*"); (prefix && !strings.HasPrefix(raw, w)) || (!prefix && raw != s.want) {
			t.Fatalf("step %d (%.40q): reply %.120q, want %.120q", i, s.cmd, raw, s.want)
		}
		if r.IsError != (strings.HasPrefix(s.want, "CLIENT_ERROR ") || strings.HasPrefix(s.want, "SERVER_ERROR ")) {
			t.Errorf("step %d: IsError %v for %.60q", i, r.IsError, raw)
		}
		var keys []string
		for j := range r.Values {
			keys = append(keys, string(r.Key(j)))
			if b := r.Block(j); !bytes.HasPrefix(b, []byte("VALUE "+string(r.Key(j))+" ")) || !bytes.HasSuffix(b, []byte("\r\n")) {
				t.Errorf("step %d: block %.60q", i, b)
			}
		}
		if strings.Join(keys, ",") != strings.Join(s.keys, ",") {
			t.Errorf("step %d: keys %q want %q", i, keys, s.keys)
		}
	}
	if rr.Buffered() != 0 || !bytes.Equal(framed, rec.got) {
		t.Fatalf("the replies do not cover exactly what memcached sent: %d bytes framed, %d received, %d left",
			len(framed), len(rec.got), rr.Buffered())
	}
}

// opOf returns the command of an encoded line.
func opOf(cmd []byte) protocol.Op {
	name, _, _ := bytes.Cut(cmd, []byte(" "))
	name, _, _ = bytes.Cut(name, []byte("\r"))
	for op := protocol.Op(1); op < protocol.NumOps; op++ {
		if op.String() == string(name) {
			return op
		}
	}
	return protocol.OpNone
}

// TestCasUniqueWithCasDisabled: memcached started with -C (no cas) still
// writes a cas unique, 0, for gets and gats, and none for get and gat;
// ReadReplyTo, which insists on that, accepts its replies.
func TestCasUniqueWithCasDisabled(t *testing.T) {
	if _, err := memcachedtest.Binary(); err != nil {
		t.Skip(err)
	}
	mc := memcachedtest.Start(t, "-C")
	c := memcachedtest.Dial(t, mc.Addr)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	a := [][]byte{[]byte("a")}
	steps := []struct {
		op   protocol.Op
		cmd  []byte
		want string
	}{
		{protocol.OpSet, []byte("set a 0 0 1\r\nx\r\n"), "STORED\r\n"},
		{protocol.OpGets, protocol.AppendRetrieval(nil, protocol.OpGets, 0, a), "VALUE a 0 1 0\r\nx\r\nEND\r\n"},
		{protocol.OpGats, protocol.AppendRetrieval(nil, protocol.OpGats, 0, a), "VALUE a 0 1 0\r\nx\r\nEND\r\n"},
		{protocol.OpGet, protocol.AppendRetrieval(nil, protocol.OpGet, 0, a), "VALUE a 0 1\r\nx\r\nEND\r\n"},
		{protocol.OpGat, protocol.AppendRetrieval(nil, protocol.OpGat, 0, a), "VALUE a 0 1\r\nx\r\nEND\r\n"},
	}
	rr := protocol.NewReplyReader(c, 0)
	var r protocol.Reply
	for _, s := range steps {
		if _, err := c.Write(s.cmd); err != nil {
			t.Fatal(err)
		}
		if err := rr.ReadReplyTo(s.op, s.cmd, &r); err != nil {
			t.Fatalf("%q: %v", s.cmd, err)
		}
		if string(r.Raw) != s.want {
			t.Fatalf("%q: %q, want %q", s.cmd, r.Raw, s.want)
		}
	}
}
