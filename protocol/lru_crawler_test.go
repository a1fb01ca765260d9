package protocol_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/protocol"
)

// crawlerLines are lru_crawler lines and what the parser makes of them:
// memcached's refusal, "metadump <target>" as AppendMetadump writes it, or
// the subcommand it accepts.
var crawlerLines = []struct{ line, want string }{
	{"lru_crawler metadump all", "metadump all"},
	{"lru_crawler metadump hash", "metadump hash"},
	{"lru_crawler metadump 1", "metadump 1"},
	{"lru_crawler metadump 3,1,2", "metadump 1,2,3"},
	{"lru_crawler metadump 1,1", "metadump 1"},
	{"lru_crawler metadump 1,", "metadump 1"},
	{"lru_crawler metadump ,1,,2", "metadump 1,2"},
	{"lru_crawler metadump 01", "metadump 1"},
	{"lru_crawler metadump +1", "metadump 1"},
	{"lru_crawler metadump 63", "metadump 63"},
	{"lru_crawler metadump 4294967297", "metadump 1"}, // safe_strtoul truncates to 32 bits
	{"lru_crawler metadump 1\t", "metadump 1"},
	{"lru_crawler  metadump  all  ", "metadump all"},
	{"lru_crawler metadump 0", "BADCLASS invalid class id"},
	{"lru_crawler metadump 64", "BADCLASS invalid class id"},
	{"lru_crawler metadump -1", "BADCLASS invalid class id"},
	{"lru_crawler metadump -0", "BADCLASS invalid class id"},
	{"lru_crawler metadump x", "BADCLASS invalid class id"},
	{"lru_crawler metadump 1,x", "BADCLASS invalid class id"},
	{"lru_crawler metadump ALL", "BADCLASS invalid class id"},
	{"lru_crawler metadump all,1", "BADCLASS invalid class id"},
	{"lru_crawler metadump hash,1", "BADCLASS invalid class id"},
	{"lru_crawler metadump 99999999999999999999", "BADCLASS invalid class id"},
	{"lru_crawler metadump", "ERROR"},
	{"lru_crawler metadump all noreply", "ERROR"},
	{"lru_crawler metadump all extra", "ERROR"},
	{"lru_crawler mgdump all", "ERROR"},
	{"lru_crawler", "ERROR"},
	{"lru_crawler foo", "ERROR"},
	{"lru_crawler foo bar", "ERROR"},
	{"lru_crawler crawl all", "crawl"},
	{"lru_crawler crawl 1,2", "crawl"},
	{"lru_crawler crawl 0", "BADCLASS invalid class id"},
	{"lru_crawler crawl", "ERROR"},
	{"lru_crawler tocrawl 0", "tocrawl"},
	{"lru_crawler tocrawl x", "CLIENT_ERROR bad command line format"},
	{"lru_crawler tocrawl -1", "CLIENT_ERROR bad command line format"},
	{"lru_crawler tocrawl", "ERROR"},
	{"lru_crawler sleep 100", "sleep"},
	{"lru_crawler sleep 1000001", "CLIENT_ERROR sleep must be one second or less"},
	{"lru_crawler sleep x", "CLIENT_ERROR bad command line format"},
	{"lru_crawler enable x", "ERROR"},
	{"lru_crawler disable x", "ERROR"},
	// Sent to memcached last: a metadump of no class wedges its crawler's
	// client slot for good (see lru_crawler.go).
	{"lru_crawler metadump ,", "NOTSTARTED no items to crawl"},
}

// parseCrawler returns what the parser makes of line, as crawlerLines
// writes it.
func parseCrawler(t *testing.T, line string) string {
	t.Helper()
	rr := protocol.NewRequestReader(strings.NewReader(line+"\r\n"), 0)
	var req protocol.Request
	err := rr.Next(&req)
	if re, ok := err.(*protocol.ReplyError); ok {
		return re.Line
	}
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if req.Op != protocol.OpLruCrawler {
		t.Fatalf("%q parsed as %v", line, req.Op)
	}
	if req.Crawler.Sub == protocol.CrawlerMetadump {
		return strings.TrimSuffix(string(protocol.AppendMetadump(nil, &req.Crawler)), "\r\n")[len("lru_crawler "):]
	}
	return req.Crawler.Sub.String()
}

func TestParseLruCrawler(t *testing.T) {
	for _, c := range crawlerLines {
		if got := parseCrawler(t, c.line); got != c.want {
			t.Errorf("%q: got %q, want %q", c.line, got, c.want)
		}
	}
	for _, c := range []struct{ line, want string }{
		{"lru_crawler enable", "enable"},
		{"lru_crawler disable", "disable"},
	} {
		if got := parseCrawler(t, c.line); got != c.want {
			t.Errorf("%q: got %q, want %q", c.line, got, c.want)
		}
	}
}

// TestLruCrawlerMatchesMemcached sends every line of crawlerLines to a real
// memcached, each on a connection of its own, and checks that it refuses
// exactly what the parser refuses, with the same words, and answers the
// rest: a metadump with a dump (END, the server is empty), the others OK.
// enable and disable are left out: they would change how the lines after
// them are answered.
func TestLruCrawlerMatchesMemcached(t *testing.T) {
	mc := startMemcached(t)
	for _, c := range crawlerLines {
		want := parseCrawler(t, c.line)
		var got string
		// A crawl just asked for may still hold the crawler: BUSY until
		// it is done.
		memcachedtest.WaitFor(t, "the crawler to be free for "+c.line, func() bool {
			got = crawlerReply(t, mc.Addr, c.line)
			return got != protocol.ErrCrawlerBusy.Line+"\r\n"
		})
		switch {
		case strings.HasPrefix(want, "metadump "):
			want = "END"
		case want == "crawl" || want == "tocrawl" || want == "sleep":
			want = "OK"
		}
		if got != want+"\r\n" {
			t.Errorf("%q: memcached %q, parser %q", c.line, got, want)
		}
	}
}

// crawlerReply sends line on a new connection to addr and returns the
// reply: up to END for a dump, else one line.
func crawlerReply(t *testing.T, addr, line string) string {
	t.Helper()
	c := memcachedtest.Dial(t, addr)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(line + "\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var got []byte
	for {
		l, err := br.ReadSlice('\n')
		got = append(got, l...)
		if err != nil {
			t.Fatalf("%q: read %q then %v", line, got, err)
		}
		if !bytes.HasPrefix(l, []byte("key=")) {
			return string(got)
		}
	}
}

// TestClassifyMemcachedDump stores keys of every byte value (through
// base64 meta keys, which may hold any byte) and of the longest length in
// a real memcached, with and without an expiry, fetched and not, and
// checks that every line of its metadump is an item line and the last is
// END.
func TestClassifyMemcachedDump(t *testing.T) {
	mc := startMemcached(t)
	c := memcachedtest.Dial(t, mc.Addr)
	var cmds strings.Builder
	keys := [][]byte{bytes.Repeat([]byte("k"), protocol.MaxKeyLength), []byte("a-b.c_d~e")}
	fmt.Fprintf(&cmds, "set %s 0 0 2\r\nhi\r\nset %s 0 100 2\r\nhi\r\n", keys[0], keys[1])
	for b := 0; b < 256; b++ {
		k := []byte{'x', byte(b), 'y'}
		keys = append(keys, k)
		fmt.Fprintf(&cmds, "ms %s 2 b T%d q\r\nhi\r\n", base64.StdEncoding.EncodeToString(k), b%2*1000)
	}
	cmds.WriteString("get a-b.c_d~e\r\nmn\r\n")
	want := "STORED\r\nSTORED\r\nVALUE a-b.c_d~e 0 2\r\nhi\r\nEND\r\nMN\r\n"
	if got := memcachedtest.RoundTrip(t, c, cmds.String(), "MN\r\n", 1); got != want {
		t.Fatalf("storing the keys: %q", got)
	}
	dump := crawlerReply(t, mc.Addr, "lru_crawler metadump all")
	lines := strings.SplitAfter(dump, "\n")
	lines = lines[:len(lines)-1] // after the last "\n"
	if len(lines) != len(keys)+1 {
		t.Fatalf("%d lines for %d keys: %q", len(lines), len(keys), dump)
	}
	for i, l := range lines {
		want := protocol.DumpItem
		if i == len(lines)-1 {
			want = protocol.DumpEnd
		}
		if got := protocol.ClassifyDumpLine([]byte(l)); got != want {
			t.Errorf("%q: %v, want %v", l, got, want)
		}
	}
}

func TestClassifyDumpLine(t *testing.T) {
	item := "key=a%20b exp=-1 la=1700000000 cas=7 fetch=no cls=1 size=62"
	for _, c := range []struct {
		line string
		want protocol.DumpLine
	}{
		{item + "\n", protocol.DumpItem},
		{item + "\r\n", protocol.DumpItem},
		{item + " flags=0 \n", protocol.DumpItem},                          // memcached 1.6.2x
		{item + " flags=5 ext_page=3 ext_offset=96 \n", protocol.DumpItem}, // with extstore
		{strings.Replace(item, "exp=-1", "exp=1700000100", 1) + "\n", protocol.DumpItem},
		{strings.Replace(item, "fetch=no", "fetch=yes", 1) + "\n", protocol.DumpItem},
		{"END\r\n", protocol.DumpEnd},
		{"BUSY currently processing crawler request\r\n", protocol.DumpBusy},
		{"ERROR metadump not allowed\r\n", protocol.DumpRefused},
		{"ERROR\r\n", protocol.DumpRefused},
		{"CLIENT_ERROR lru crawler disabled\r\n", protocol.DumpRefused},
		{"SERVER_ERROR out of memory\r\n", protocol.DumpRefused},
		{"BADCLASS invalid class id\r\n", protocol.DumpRefused},
		{"NOTSTARTED no items to crawl\r\n", protocol.DumpRefused},
		{item, protocol.DumpBad},         // no line ending
		{"END\n", protocol.DumpBad},      // END always has its CR
		{"END \r\n", protocol.DumpBad},   //
		{"ENDX\r\n", protocol.DumpBad},   //
		{"STORED\r\n", protocol.DumpBad}, //
		{"VALUE a 0 1\r\n", protocol.DumpBad},
		{"ERROR\x00\r\n", protocol.DumpBad},
		{"SERVER_ERROR a\rb\r\n", protocol.DumpBad},
		{"key= exp=-1 la=1 cas=1 fetch=no cls=1 size=1\n", protocol.DumpBad},
		{"key=a b exp=-1 la=1 cas=1 fetch=no cls=1 size=1\n", protocol.DumpBad},
		{"key=a%2 exp=-1 la=1 cas=1 fetch=no cls=1 size=1\n", protocol.DumpBad},
		{"key=a%2a exp=-1 la=1 cas=1 fetch=no cls=1 size=1\n", protocol.DumpBad}, // memcached writes upper-case hex
		{"key=a\x01 exp=-1 la=1 cas=1 fetch=no cls=1 size=1\n", protocol.DumpBad},
		{"key=" + strings.Repeat("k", 251) + " exp=-1 la=1 cas=1 fetch=no cls=1 size=1\n", protocol.DumpBad},
		{"key=a exp=x la=1 cas=1 fetch=no cls=1 size=1\n", protocol.DumpBad},
		{"key=a exp=- la=1 cas=1 fetch=no cls=1 size=1\n", protocol.DumpBad},
		{"key=a exp=-1 la=-1 cas=1 fetch=no cls=1 size=1\n", protocol.DumpBad},
		{"key=a exp=-1 la=1 cas=1 fetch=maybe cls=1 size=1\n", protocol.DumpBad},
		{"key=a exp=-1 la=1 cas=1 fetch=no size=1 cls=1\n", protocol.DumpBad},
		{"key=a exp=-1 la=1 cas=1 fetch=no cls=1\n", protocol.DumpBad},
		{"key=a exp=-1 la=1 cas=1 fetch=no cls=1 size=1  \n", protocol.DumpBad},
		{"key=a exp=-1 la=1 cas=1 fetch=no cls=1 size=1 Flags=1\n", protocol.DumpBad},
		{"key=a exp=-1 la=1 cas=1 fetch=no cls=1 size=1 flags\n", protocol.DumpBad},
		{"key=a exp=-1 la=1 cas=1 fetch=no cls=1 size=1 flags=\n", protocol.DumpBad},
		{"key=a exp=-1 la=1 cas=1 fetch=no cls=1 size=1 flags=\x7f\n", protocol.DumpBad},
		{"key=a exp=-1 la=1 cas=1 fetch=no cls=1 size=1\rx\n", protocol.DumpBad},
	} {
		if got := protocol.ClassifyDumpLine([]byte(c.line)); got != c.want {
			t.Errorf("%q: %v, want %v", c.line, got, c.want)
		}
	}
	long := "key=" + strings.Repeat("%41", 250) + " exp=-1 la=1 cas=1 fetch=no cls=1 size=1 x=" + strings.Repeat("9", protocol.MaxDumpLine) + "\n"
	if got := protocol.ClassifyDumpLine([]byte(long)); got != protocol.DumpBad {
		t.Errorf("a line of %d bytes: %v", len(long), got)
	}
}

// FuzzDumpLine checks that whatever a backend sends, a line taken for an
// item or a refusal can be passed to a client as one line: it has no
// control byte but its line ending, and nothing after it.
func FuzzDumpLine(f *testing.F) {
	f.Add([]byte("key=a%20b exp=-1 la=1700000000 cas=7 fetch=no cls=1 size=62\n"))
	f.Add([]byte("key=a exp=1 la=1 cas=1 fetch=yes cls=1 size=1 flags=0 \n"))
	f.Add([]byte("END\r\n"))
	f.Add([]byte("BUSY currently processing crawler request\r\n"))
	f.Add([]byte("ERROR metadump not allowed\r\n"))
	f.Fuzz(func(t *testing.T, line []byte) {
		k := protocol.ClassifyDumpLine(line)
		if k == protocol.DumpBad {
			return
		}
		body := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) > protocol.MaxDumpLine || len(body) == len(line) {
			t.Fatalf("%v: %q", k, line)
		}
		for _, c := range body {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("%v with a control byte: %q", k, line)
			}
		}
		if k == protocol.DumpItem && (!bytes.HasPrefix(line, []byte("key=")) || bytes.Contains(body, []byte("  "))) {
			t.Fatalf("item %q", line)
		}
		if k != protocol.DumpItem && !bytes.HasSuffix(line, []byte("\r\n")) {
			t.Fatalf("%v without CRLF: %q", k, line)
		}
	})
}
