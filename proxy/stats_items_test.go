package proxy

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// TestDisableFlushAllLikeMemcachedF: with disable_flush_all, every form of
// flush_all gets what memcached -F answers, byte for byte, and flushes
// nothing; cmd_flush counts the refused commands, as memcached's does.
func TestDisableFlushAllLikeMemcachedF(t *testing.T) {
	refusing := memcachedtest.Start(t, "-F")
	p := startProxy(t, 2, func(o *Options) { o.DisableFlushAll = true })
	input := []byte("set k 0 0 1\r\nv\r\nflush_all\r\nflush_all 0\r\nflush_all noreply\r\nflush_all 10 noreply\r\nget k\r\n")
	want := exchange(t, refusing.Addr, input)
	if !bytes.Contains(want, []byte("CLIENT_ERROR flush_all not allowed\r\n")) {
		t.Fatalf("memcached -F answered %q; is this memcached too old for -F?", want)
	}
	if got := exchange(t, p.addr, input); !bytes.Equal(got, want) {
		t.Errorf("through the proxy:\n%q\nmemcached -F:\n%q", got, want)
	}
	st := memcachedtest.Stats(t, p.addr, "")
	if st["cmd_flush"] != "4" {
		t.Errorf("proxy cmd_flush = %s, want 4 (memcached -F counts refused flushes: %s)",
			st["cmd_flush"], memcachedtest.Stats(t, refusing.Addr, "")["cmd_flush"])
	}
	for _, b := range p.backends {
		if n := memcachedtest.Stats(t, b.Addr, "")["cmd_flush"]; n != "0" {
			t.Errorf("backend %s saw %s flush_all, want 0", b.Addr, n)
		}
	}
	if got := memcachedtest.Stats(t, p.addr, "settings")["flush_enabled"]; got != "no" {
		t.Errorf("stats settings flush_enabled = %q, want no (memcached -F's)", got)
	}
}

// storeSizes stores values of several sizes through addr, so that items
// land in several slab classes of every backend.
func storeSizes(t *testing.T, addr string, n int) {
	t.Helper()
	c := memcachedtest.Dial(t, addr)
	var cmds strings.Builder
	sizes := []int{10, 200, 1500, 9000}
	for i := 0; i < n; i++ {
		v := strings.Repeat("x", sizes[i%len(sizes)])
		fmt.Fprintf(&cmds, "set key:%d 0 0 %d noreply\r\n%s\r\n", i, len(v), v)
	}
	cmds.WriteString("version\r\n")
	memcachedtest.RoundTrip(t, c, cmds.String(), "\r\n", 1)
}

// TestStatsItemsAndSlabsAddUpBackends checks the merged views against the
// backends' own answers: counts summed per class, the class geometry kept,
// ages as the oldest; a dead backend drops out of the sums.
func TestStatsItemsAndSlabsAddUpBackends(t *testing.T) {
	p := startProxy(t, 3, nil)
	storeSizes(t, p.addr, 400)

	sum := func(group string, backends []*memcachedtest.Server) (map[string]uint64, map[string]uint64) {
		s, mx := map[string]uint64{}, map[string]uint64{}
		for _, b := range backends {
			for k, v := range memcachedtest.Stats(t, b.Addr, group) {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					continue
				}
				s[k] += n
				mx[k] = max(mx[k], n)
			}
		}
		return s, mx
	}
	check := func(step string, backends []*memcachedtest.Server) {
		t.Helper()
		items := memcachedtest.Stats(t, p.addr, "items")
		wantItems, maxItems := sum("items", backends)
		classes := 0
		for k, want := range wantItems {
			if !strings.HasSuffix(k, ":number") {
				continue
			}
			classes++
			if got := items[k]; got != strconv.FormatUint(want, 10) {
				t.Errorf("%s: stats items %s = %s, want the backends' sum %d", step, k, got, want)
			}
			age := strings.TrimSuffix(k, "number") + "age"
			if got, _ := strconv.ParseUint(items[age], 10, 64); got+2 < maxItems[age] || got > maxItems[age]+2 {
				t.Errorf("%s: stats items %s = %d, want the oldest backend's (%d, give or take a second)", step, age, got, maxItems[age])
			}
		}
		if classes < 3 {
			t.Fatalf("%s: items in only %d slab classes; the test wants several", step, classes)
		}
		slabs := memcachedtest.Stats(t, p.addr, "slabs")
		wantSlabs, maxSlabs := sum("slabs", backends)
		active := 0
		for k, want := range wantSlabs {
			cls, fld, ok := strings.Cut(k, ":")
			if !ok {
				continue
			}
			switch fld {
			case "chunk_size", "chunks_per_page":
				want = maxSlabs[k]
			case "total_pages":
				active++
			}
			if got := slabs[k]; got != strconv.FormatUint(want, 10) {
				t.Errorf("%s: stats slabs %s:%s = %s, want %d", step, cls, fld, got, want)
			}
		}
		if got := slabs["active_slabs"]; got != strconv.Itoa(active) {
			t.Errorf("%s: active_slabs = %s, want %d (classes in use on any backend)", step, got, active)
		}
		if got := slabs["total_malloced"]; got != strconv.FormatUint(wantSlabs["total_malloced"], 10) {
			t.Errorf("%s: total_malloced = %s, want %d", step, got, wantSlabs["total_malloced"])
		}
	}
	check("3 backends", p.backends)

	p.backends[2].Kill()
	waitInRing(t, p, p.backends[2].Addr, false)
	check("one backend killed", p.backends[:2])
}

// TestMergedStatsRules covers the rules on hand-made replies, including
// text values and classes present on only one backend.
func TestMergedStatsRules(t *testing.T) {
	a := "STAT items:1:number 3\r\nSTAT items:1:age 10\r\nSTAT items:1:evicted_time 0\r\nSTAT items:5:number 1\r\nSTAT items:5:evicted_time 40\r\nEND\r\n"
	b := "STAT items:1:number 4\r\nSTAT items:1:age 7\r\nSTAT items:1:evicted_time 9\r\nSTAT items:3:number 2\r\nSTAT items:5:number 1\r\nSTAT items:5:evicted_time 30\r\nEND\r\n"
	got := string(appendMergedStats(nil, "items", [][]byte{[]byte(a), []byte(b)}))
	want := "STAT items:1:number 7\r\nSTAT items:1:age 10\r\nSTAT items:1:evicted_time 9\r\n" +
		"STAT items:3:number 2\r\n" +
		"STAT items:5:number 2\r\nSTAT items:5:evicted_time 30\r\nEND\r\n"
	if got != want {
		t.Errorf("items:\n got %q\nwant %q", got, want)
	}

	disabled := "STAT sizes_status disabled\r\nEND\r\n"
	if got := string(appendMergedStats(nil, "sizes", [][]byte{[]byte(disabled), []byte(disabled)})); got != disabled {
		t.Errorf("sizes, all disabled: %q", got)
	}
	on := "STAT sizes_status enabled\r\nSTAT 96 2\r\nSTAT 32 5\r\nEND\r\n"
	got = string(appendMergedStats(nil, "sizes", [][]byte{[]byte(on), []byte("STAT sizes_status enabled\r\nSTAT 32 1\r\nEND\r\n")}))
	if want := "STAT sizes_status enabled\r\nSTAT 32 6\r\nSTAT 96 2\r\nEND\r\n"; got != want {
		t.Errorf("sizes:\n got %q\nwant %q", got, want)
	}
	got = string(appendMergedStats(nil, "sizes", [][]byte{[]byte(on), []byte(disabled)}))
	if strings.Contains(got, "sizes_status") {
		t.Errorf("sizes_status differs between backends but was reported: %q", got)
	}
	if got := string(appendMergedStats(nil, "slabs", nil)); got != "STAT active_slabs 0\r\nSTAT total_malloced 0\r\nEND\r\n" {
		t.Errorf("slabs with no backend answering: %q", got)
	}
}

// TestStatsSizesAnswered: stats sizes goes to the backends (memcached 1.6
// answers sizes_status disabled unless started with -o track_sizes).
func TestStatsSizesAnswered(t *testing.T) {
	p := startProxy(t, 2, nil)
	want := exchange(t, p.backends[0].Addr, []byte("stats sizes\r\n"))
	if got := exchange(t, p.addr, []byte("stats sizes\r\n")); !bytes.Equal(got, want) {
		t.Errorf("stats sizes through the proxy %q, memcached %q", got, want)
	}
}

// displayRows runs memcached-tool ADDR display and returns its rows by
// slab class, without the Max_age column (which moves with the clock).
func displayRows(t *testing.T, tool, addr string) map[string]string {
	t.Helper()
	out, err := exec.Command("perl", tool, addr, "display").CombinedOutput()
	if err != nil {
		t.Fatalf("memcached-tool %s display: %v\n%s", addr, err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 2 || !strings.Contains(lines[0], "Item_Size") {
		t.Fatalf("memcached-tool %s display printed:\n%s", addr, out)
	}
	rows := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 8 {
			t.Fatalf("memcached-tool display row %q", l)
		}
		rows[f[0]] = strings.Join(append([]string{f[1]}, f[3:]...), " ")
	}
	return rows
}

// TestMemcachedToolThroughProxy: memcached-tool's display and stats work
// against the proxy. With one backend, display shows exactly what it shows
// for that memcached; with three, each class's Count is the sum.
func TestMemcachedToolThroughProxy(t *testing.T) {
	tool := memcachedTool(t)

	one := startProxy(t, 1, nil)
	storeSizes(t, one.addr, 200)
	direct, proxied := displayRows(t, tool, one.backends[0].Addr), displayRows(t, tool, one.addr)
	if len(direct) < 3 || fmt.Sprint(direct) != fmt.Sprint(proxied) {
		t.Errorf("memcached-tool display, one backend:\n memcached: %v\n proxy:     %v", direct, proxied)
	}

	three := startProxy(t, 3, nil)
	storeSizes(t, three.addr, 400)
	counts := map[string]int{}
	for _, b := range three.backends {
		for cls, row := range displayRows(t, tool, b.Addr) {
			n, _ := strconv.Atoi(strings.Fields(row)[2])
			counts[cls] += n
		}
	}
	rows := displayRows(t, tool, three.addr)
	if len(rows) != len(counts) {
		t.Errorf("display through the proxy has classes %v, the backends together %v", rows, counts)
	}
	for cls, want := range counts {
		if f := strings.Fields(rows[cls]); len(f) < 3 || f[2] != strconv.Itoa(want) {
			t.Errorf("display class %s: %q, want Count %d", cls, rows[cls], want)
		}
	}

	out, err := exec.Command("perl", tool, three.addr, "stats").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("curr_items")) || !bytes.Contains(out, []byte("1.6.0-mcproxy-test")) {
		t.Errorf("memcached-tool stats through the proxy: %v\n%s", err, out)
	}
}
