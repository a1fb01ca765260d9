package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/protocol"
)

// toolBound bounds one run of memcached-tool, which waits for END for ever.
const toolBound = 60 * time.Second

// runTool runs memcached-tool addr mode and returns what it printed on
// stdout.
func runTool(t *testing.T, tool, addr, mode string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, "perl", tool, addr, mode)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("memcached-tool %s %s: %v\n%s", addr, mode, err, stderr.Bytes())
	}
	return string(out)
}

// dumpItem is what the dump test stores under a key.
type dumpItem struct {
	flags uint32
	value string
}

// TestMetadumpMemcachedTool runs memcached's own memcached-tool against the
// proxy in front of three memcached: dump prints an add of every key with
// its flags and value, keys lists every key, and each of them once.
func TestMetadumpMemcachedTool(t *testing.T) {
	tool := memcachedTool(t)
	p := startProxy(t, 3, nil)
	items := map[string]dumpItem{}
	var cmds strings.Builder
	for i := range 600 {
		// Keys memcached URI-encodes in a dump (":", "/", "%", bytes past
		// ASCII), which memcached-tool decodes again.
		k := fmt.Sprintf("key:%d/%%é-%d", i, i*7)
		it := dumpItem{flags: uint32(i % 5), value: strings.Repeat(string(rune('a'+i%26)), 1+i%40)}
		items[k] = it
		fmt.Fprintf(&cmds, "set %s %d 0 %d noreply\r\n%s\r\n", k, it.flags, len(it.value), it.value)
	}
	cmds.WriteString("mn\r\n")
	memcachedtest.Send(t, p.addr, cmds.String(), "MN\r\n", 1)
	for _, b := range p.backends { // the keys are spread over all three
		if n := memcachedtest.Stat(t, b.Addr, "curr_items"); n == 0 || n == len(items) {
			t.Fatalf("backend %s holds %d of the %d keys", b.Addr, n, len(items))
		}
	}

	out := runTool(t, tool, p.addr, "dump")
	seen := map[string]int{}
	rest := out
	for rest != "" {
		var k string
		var flags uint32
		var exp, n int
		line, after, ok := strings.Cut(rest, "\r\n")
		if _, err := fmt.Sscanf(line, "add %s %d %d %d", &k, &flags, &exp, &n); !ok || err != nil || len(after) < n+2 {
			t.Fatalf("memcached-tool dump printed %q", clip(rest))
		}
		value := after[:n]
		rest = strings.TrimPrefix(after[n:], "\r\n")
		seen[k]++
		if want, ok := items[k]; !ok || want.flags != flags || want.value != value || exp != 0 {
			t.Errorf("dump: add %q %d %d %q; stored %+v", k, flags, exp, value, want)
		}
	}
	checkAllOnce(t, "dump", items, seen)

	seen = map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(runTool(t, tool, p.addr, "keys"), "\n"), "\n") {
		if protocol.ClassifyDumpLine([]byte(line+"\n")) != protocol.DumpItem {
			t.Fatalf("memcached-tool keys printed %q", line)
		}
		k, err := url.PathUnescape(strings.TrimPrefix(strings.Fields(line)[0], "key="))
		if err != nil {
			t.Fatalf("key in %q: %v", line, err)
		}
		seen[k]++
	}
	checkAllOnce(t, "keys", items, seen)
	if n := p.stats.results[protocol.OpLruCrawler][resOK].Load(); n != 2 {
		t.Errorf("%d metadumps counted ok, want 2", n)
	}
}

// checkAllOnce checks that seen counts every key of items once, and
// nothing else.
func checkAllOnce(t *testing.T, what string, items map[string]dumpItem, seen map[string]int) {
	t.Helper()
	for k := range items {
		if seen[k] != 1 {
			t.Errorf("%s: key %q listed %d times", what, k, seen[k])
		}
	}
	if len(seen) != len(items) {
		t.Errorf("%s: %d keys listed, %d stored", what, len(seen), len(items))
	}
}

func clip(s string) string { return s[:min(len(s), 200)] }

// dumpLine is an item line as memcached 1.6.18 writes it.
func dumpLine(key string) string {
	return "key=" + key + " exp=-1 la=1700000000 cas=1 fetch=no cls=1 size=64\n"
}

// readAll reads c until EOF, within exchangeBound.
func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(exchangeBound))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (after %q)", err, clip(string(b)))
	}
	return string(b)
}

// TestMetadumpBackendStopsMidDump: a backend that stops answering in the
// middle of its dump (a fake that sends a few lines and then nothing), or
// that sends a line that is no dump line, ends the client's dump with an
// error line naming it, after the lines that came, and the connection
// closes: no END, so the list cannot pass for a whole one.
func TestMetadumpBackendStopsMidDump(t *testing.T) {
	for _, c := range []struct {
		name, tail, reason string
	}{
		{"silent", "", "backend timeout"},
		{"garbage", "VALUE k 0 1\r\n", "backend protocol error"},
		{"refusal after lines", protocol.ErrCrawlerBusy.Line + "\r\n", "backend protocol error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			lines := dumpLine("a") + dumpLine("b%20c")
			fb := startFake(t, func(_ int, f []string, _ []byte) string {
				if f[0] != "lru_crawler" {
					return honest(f)
				}
				return lines + c.tail
			})
			p := startProxyFor(t, nil, func(o *Options) {
				o.Backends = []Backend{{Addr: fb.addr, Weight: 1}}
				o.Timeout = 100 * time.Millisecond
			})
			conn := memcachedtest.Dial(t, p.addr)
			if _, err := conn.Write([]byte("lru_crawler metadump all\r\n")); err != nil {
				t.Fatal(err)
			}
			want := lines + "SERVER_ERROR metadump of " + fb.addr + " failed: " + c.reason + "\r\n"
			if got := readAll(t, conn); got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			if n := p.stats.results[protocol.OpLruCrawler][resError].Load(); n != 1 {
				t.Errorf("%d metadumps counted failed, want 1", n)
			}
		})
	}
}

// TestMetadumpRefusalPassedOn: a backend's refusal that is its whole reply
// reaches the client as memcached wrote it, and the connection stays in
// use; a backend that stays busy gets asked again for a while, then its
// BUSY is the answer.
func TestMetadumpRefusalPassedOn(t *testing.T) {
	for _, refusal := range []string{"ERROR metadump not allowed", "CLIENT_ERROR lru crawler disabled", protocol.ErrCrawlerBusy.Line} {
		fb := startFake(t, func(_ int, f []string, _ []byte) string {
			if f[0] == "lru_crawler" {
				return refusal + "\r\n"
			}
			return honest(f)
		})
		p := startProxyFor(t, nil, func(o *Options) {
			o.Backends = []Backend{{Addr: fb.addr, Weight: 1}}
			o.Timeout = 100 * time.Millisecond
		})
		before := fb.commands.Load()
		got := memcachedtest.Send(t, p.addr, "lru_crawler metadump all\r\nget k\r\n", "END\r\n", 1)
		if want := refusal + "\r\nVALUE k 0 3\r\nv-k\r\nEND\r\n"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		asked := fb.commands.Load() - before - 1 // less the get
		if refusal == protocol.ErrCrawlerBusy.Line && asked < 2 || refusal != protocol.ErrCrawlerBusy.Line && asked != 1 {
			t.Errorf("%q: the backend was asked %d times", refusal, asked)
		}
	}
}

// TestMetadumpPipelined holds the proxy to memcached's rule: a metadump
// behind a command whose reply is unsent is refused with memcached's
// error, byte for byte the same as memcached's answer to the same bytes;
// behind a get or mn (whose replies memcached writes before it reads on)
// it runs.
func TestMetadumpPipelined(t *testing.T) {
	p := startProxy(t, 3, nil)
	direct := memcachedtest.Start(t)
	for _, in := range []string{
		"set a 0 0 1\r\nx\r\nlru_crawler metadump all\r\n",
		"set a 0 0 1 noreply\r\nx\r\nlru_crawler metadump all\r\n",
		"delete nope\r\nlru_crawler metadump all\r\n",
		"mg a v\r\nlru_crawler metadump hash\r\n",
		"foo\r\nlru_crawler metadump 1\r\n",
	} {
		want, got := againstMemcached(t, direct.Addr, p.addr, in, maskCas)
		if !bytes.Equal(got, want) || !bytes.Contains(got, []byte(protocol.ErrMetadumpPipelined.Line)) {
			t.Errorf("%q:\nproxy     %q\nmemcached %q", in, got, want)
		}
	}
	// Commands sent behind a metadump run after it (memcached leaves them
	// unread until more bytes come; the proxy reads them once the dump is
	// complete), so a second metadump behind a first is not pipelined.
	for in, want := range map[string]string{
		"get nope\r\nlru_crawler metadump all\r\nget nope\r\n":                         "END\r\nEND\r\nEND\r\n",
		"mn\r\nlru_crawler metadump all\r\nmn\r\n":                                     "MN\r\nEND\r\nMN\r\n",
		"lru_crawler metadump all\r\nlru_crawler metadump all\r\nmn\r\n":               "END\r\nEND\r\nMN\r\n",
		"lru_crawler metadump all\r\nset a 0 0 1\r\nx\r\nlru_crawler metadump all\r\n": "END\r\nSTORED\r\n" + protocol.ErrMetadumpPipelined.Line + "\r\n",
	} {
		memcachedtest.Send(t, p.addr, "flush_all\r\n", "OK\r\n", 1) // a dump does not list flushed items
		if got := exchange(t, p.addr, []byte(in)); string(got) != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// TestLruCrawlerCommands: the proxy answers lru_crawler's bad lines as
// memcached does, refuses its subcommands other than metadump clearly,
// answers a metadump of no class itself (which would wedge memcached
// 1.6.18's dumps for good) and lists only the classes asked for.
func TestLruCrawlerCommands(t *testing.T) {
	p := startProxy(t, 3, nil)
	memcachedtest.Send(t, p.addr, "set small 0 0 1\r\nx\r\nset big 0 0 5000\r\n"+strings.Repeat("y", 5000)+"\r\n", "STORED\r\n", 2)
	for in, want := range map[string]string{
		"lru_crawler metadump 0\r\n":     "BADCLASS invalid class id\r\n",
		"lru_crawler metadump ,\r\n":     "NOTSTARTED no items to crawl\r\n",
		"lru_crawler metadump\r\n":       "ERROR\r\n",
		"lru_crawler metadump all x\r\n": "ERROR\r\n",
		"lru_crawler sleep 2000000\r\n":  "CLIENT_ERROR sleep must be one second or less\r\n",
		"lru_crawler tocrawl x\r\n":      "CLIENT_ERROR bad command line format\r\n",
		"lru_crawler crawl all\r\n":      "CLIENT_ERROR lru_crawler crawl is not supported by mcproxy; only metadump is\r\n",
		"lru_crawler enable\r\n":         "CLIENT_ERROR lru_crawler enable is not supported by mcproxy; only metadump is\r\n",
		"lru_crawler metadump 63\r\n":    "END\r\n",
	} {
		if got := exchange(t, p.addr, []byte(in)); string(got) != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
	for _, target := range []string{"all", "hash", "1", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30"} {
		got := exchange(t, p.addr, []byte("lru_crawler metadump "+target+"\r\n"))
		keys := dumpKeys(t, got)
		want := []string{"__sentinel__", "big", "small"} // exchange's sentinel is there too
		if target == "1" {
			want = []string{"__sentinel__", "small"}
		}
		if fmt.Sprint(keys) != fmt.Sprint(want) {
			t.Errorf("metadump %s listed %v, want %v (%q)", target, keys, want, got)
		}
	}
}

// dumpKeys returns the keys a dump lists, sorted, checking that it is
// item lines and one END.
func dumpKeys(t *testing.T, dump []byte) []string {
	t.Helper()
	body, ok := bytes.CutSuffix(dump, []byte("END\r\n"))
	if !ok {
		t.Fatalf("dump without END: %q", clip(string(dump)))
	}
	var keys []string
	for _, l := range bytes.SplitAfter(body, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		if protocol.ClassifyDumpLine(l) != protocol.DumpItem {
			t.Fatalf("dump line %q", l)
		}
		keys = append(keys, strings.TrimPrefix(strings.Fields(string(l))[0], "key="))
	}
	sort.Strings(keys)
	return keys
}

// TestMetadumpSlowClientAndKill: a client that stops reading a large dump
// stops the proxy reading its backend (the proxy holds no more than its
// output high-water mark and two chunks for it), a second dump meanwhile
// gets BUSY, as from memcached; then the backend being dumped is killed
// (SIGKILL): once the client reads on it gets the lines that came, an
// error line naming the backend, and EOF.
func TestMetadumpSlowClientAndKill(t *testing.T) {
	p := startProxy(t, 3, nil)
	first := p.pool0().members[0] // dumped first
	var victim *memcachedtest.Server
	for _, b := range p.backends {
		if b.Addr == first.addr {
			victim = b
		}
	}
	// About 25 MB of dump lines, far more than the socket buffers between
	// memcached and the client can take.
	const n = 120000
	prefix := strings.Repeat("k", 150)
	c := memcachedtest.Dial(t, victim.Addr)
	w := bufio.NewWriterSize(c, 1<<20)
	for i := range n {
		fmt.Fprintf(w, "set %s%d 0 0 1 noreply\r\nx\r\n", prefix, i)
	}
	w.WriteString("mn\r\n")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	memcachedtest.RoundTrip(t, c, "", "MN\r\n", 1)

	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	slow, err := d.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := slow.Write([]byte("lru_crawler metadump all\r\n")); err != nil {
		t.Fatal(err)
	}
	memcachedtest.WaitFor(t, "the dump to stall on the client", func() bool {
		return memcachedtest.Stat(t, victim.Addr, "lru_crawler_running") == 1 && maxHeld(p) >= outputHighWater
	})
	// The proxy holds what its output buffer allows and its two chunks; the
	// backend's crawler waits for the rest. Look a few times: it stays so.
	for range 20 {
		if h := maxHeld(p); h > outputHighWater+(dumpChunks+1)*dumpChunkSize {
			t.Fatalf("the proxy holds %d bytes for a client that does not read", h)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := memcachedtest.Send(t, p.addr, "lru_crawler metadump all\r\n", "\r\n", 1); got != protocol.ErrCrawlerBusy.Line+"\r\n" {
		t.Errorf("a second dump got %q", got)
	}

	victim.Kill()
	got := readAll(t, slow)
	body, errLine, _ := strings.Cut(got, "SERVER_ERROR ")
	if want := "metadump of " + first.name + " failed: backend connection failed\r\n"; errLine != want {
		t.Errorf("dump ends with %q, want %q", clip(errLine), want)
	}
	lines := strings.SplitAfter(body, "\n")
	if last := lines[len(lines)-1]; last != "" {
		t.Fatalf("partial line before the error: %q", last)
	}
	for _, l := range lines[:len(lines)-1] {
		if protocol.ClassifyDumpLine([]byte(l)) != protocol.DumpItem {
			t.Fatalf("dump line %q", l)
		}
	}
	if len(lines) < 100 || len(lines) > n {
		t.Errorf("%d lines before the error", len(lines)-1)
	}
	// The guard is free again: a dump of the two backends left runs.
	memcachedtest.WaitFor(t, "the killed backend to leave the ring", func() bool { return len(p.liveBackendsNow()) == 2 })
	if got := memcachedtest.Send(t, p.addr, "lru_crawler metadump all\r\n", "END\r\n", 1); got != "END\r\n" {
		t.Errorf("dump after the kill: %q", clip(got))
	}
}

// maxHeld returns the most reply memory the proxy holds for one client.
func maxHeld(p *testProxy) int64 {
	var m int64
	for _, h := range p.HeldReplyBytes() {
		m = max(m, h)
	}
	return m
}

// liveBackendsNow returns the backends a dump would list now.
func (p *Proxy) liveBackendsNow() []*backend {
	return (&session{p: p}).liveBackends()
}
