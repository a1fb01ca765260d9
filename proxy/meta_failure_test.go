package proxy

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// TestMetaDeadBackend kills one backend with health checking off, so the
// ring keeps it: an mg of its keys is a miss (EN, with O and k echoed as
// memcached echoes them, and nothing at all in quiet mode), every other
// meta command SERVER_ERROR, and the connection stays in step.
func TestMetaDeadBackend(t *testing.T) {
	tp := startProxy(t, 3, func(o *Options) { o.Health.AlwaysUp = true })
	victim := tp.backends[0]
	dead := keyOn(t, tp, victim.Addr, "dead")
	alive := keyOn(t, tp, tp.backends[1].Addr, "alive")
	b64 := base64.StdEncoding.EncodeToString([]byte(dead))
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, fmt.Sprintf("ms %s 1\r\nx\r\nms %s 1\r\ny\r\n", dead, alive), "HD\r\nHD\r\n", 1)

	victim.Kill()

	for i := 0; i < 3; i++ {
		got := memcachedtest.RoundTrip(t, c, fmt.Sprintf("mg %s v O5 k\r\nmg %s b k v O6\r\nmg %s v q\r\nmg %s v\r\nmn\r\n", dead, b64, dead, alive), "MN\r\n", 1)
		want := fmt.Sprintf("EN O5 k%s\r\nEN k%s b O6\r\nVA 1\r\ny\r\nMN\r\n", dead, b64)
		if got != want {
			t.Fatalf("mg with a dead backend: %q, want %q", got, want)
		}
		for _, cmd := range []string{"ms " + dead + " 1 q\r\nz\r\n", "md " + dead + " q\r\n", "ma " + dead + "\r\n", "me " + dead + "\r\n"} {
			got := memcachedtest.RoundTrip(t, c, cmd, "\r\n", 1)
			if !strings.HasPrefix(got, "SERVER_ERROR backend ") {
				t.Fatalf("%q on a dead backend: %q", cmd, got)
			}
		}
	}
}

// TestMetaCounted: meta commands show in stats (cmd_meta and memcached's
// per-command counters) and in mcproxy_commands_total by command and
// result.
func TestMetaCounted(t *testing.T) {
	tp := startProxy(t, 3, nil)
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, "ms a 1\r\nx\r\nmg a v\r\nmg nope\r\nmg a T10\r\nmd a\r\nmd a q\r\nma n N0 J1\r\nma n MD\r\nmn\r\n", "HD\r\nVA 1\r\nx\r\nEN\r\nHD\r\nHD\r\nNF\r\nHD\r\nHD\r\nMN\r\n", 1)

	for name, want := range map[string]int{
		"cmd_meta": 9, "cmd_get": 2, "cmd_touch": 1, "cmd_set": 1, "get_hits": 1, "get_misses": 1,
		"touch_hits": 1, "delete_hits": 1, "delete_misses": 1, "decr_hits": 1,
	} {
		if n := proxyStat(t, tp, name); n != want {
			t.Errorf("stat %s %d, want %d", name, n, want)
		}
	}
	for series, want := range map[[2]string]float64{
		{"mg", "hit"}: 2, {"mg", "miss"}: 1, {"ms", "stored"}: 1, {"md", "deleted"}: 1,
		{"md", "not_found"}: 1, {"ma", "hit"}: 2, {"mn", "ok"}: 1,
	} {
		if v := commandsMetric(t, tp, series[0], series[1]); v != want {
			t.Errorf("mcproxy_commands_total{command=%q,result=%q} %v, want %v", series[0], series[1], v, want)
		}
	}
}

// metaTTL asks the memcached at addr directly how long the item under the
// key token (base64 with b) has left: -1 for never, ok false when absent.
func metaTTL(t *testing.T, addr, token string, b bool) (ttl int, ok bool) {
	t.Helper()
	c := memcachedtest.Dial(t, addr)
	cmd := "mg " + token + " t"
	if b {
		cmd += " b"
	}
	got := memcachedtest.RoundTrip(t, c, cmd+"\r\n", "\r\n", 1)
	if got == "EN\r\n" {
		return 0, false
	}
	f := strings.Fields(got)
	if len(f) < 2 || f[0] != "HD" || !strings.HasPrefix(f[1], "t") { // W, X, Z may follow
		t.Fatalf("%s on %s: %q", cmd, addr, got)
	}
	n, err := strconv.Atoi(f[1][1:])
	if err != nil {
		t.Fatalf("%s on %s: %q", cmd, addr, got)
	}
	return n, true
}

// TestMetaFailoverCapsStandInExptime: while a backend is out, every meta
// command that gives one of its keys an expiry on the stand-in gets at
// most failover.ttl: ms (with T, and without, which means never), mg's
// touch (T) and vivify (N), ma's N and T, md I with T; binary keys too.
func TestMetaFailoverCapsStandInExptime(t *testing.T) {
	const ttl = 20
	tp := startProxy(t, 3, func(o *Options) { o.FailoverTTL = ttl * time.Second })
	victim := tp.backends[0]
	keys := keysOn(t, tp, victim.Addr, "mcap", 12)
	// A binary key (a space in it) whose home is the victim.
	var bin string
	for i := 0; ; i++ {
		k := fmt.Sprintf("bin %d", i)
		if locationOf(tp, k) == victim.Addr {
			bin = k
			break
		}
	}
	outage(t, tp, victim)
	c := memcachedtest.Dial(t, tp.addr)
	cases := []struct {
		name string
		cmds string // %s is the key
		n    int    // reply lines
	}{
		{"ms never", "ms %s 1\r\nx\r\n", 1},
		{"ms past ttl", "ms %s 1 T3600 q\r\nx\r\nmn\r\n", 1},
		{"ms with opaque and many flags", "ms %s 1 T0 O1 k c F1 s t f h l u\r\nx\r\n", 1},
		// 18 tokens: the T the cap adds takes the slot of the proxy's O.
		{"ms with one slot left", "ms %s 1 k c F1 s t f h l u v P L R30 N30 J1\r\nx\r\n", 1},
		{"ms add", "ms %s 1 ME\r\nx\r\n", 1},
		{"mg touch", "ms %s 1 T5\r\nx\r\nmg %s T0\r\n", 2},
		{"mg vivify", "mg %s N0 v\r\n", 2},
		{"ma vivify", "ma %s N3600 J5\r\n", 1},
		// Fenced (q kept, mn after): the cap rewrites the line, the mn stays.
		{"ma vivify quiet", "ma %s N3600 J5 q\r\nmn\r\n", 2},
		{"ma touch", "ms %s 1 T5\r\n1\r\nma %s T0\r\n", 2},
		{"md invalidate", "ms %s 1 T5\r\nx\r\nmd %s I T3600\r\n", 2},
	}
	for i, tc := range cases {
		k := keys[i]
		cmds := strings.ReplaceAll(tc.cmds, "%s", k)
		got := expectLines(t, c, cmds, tc.n)
		if strings.Contains(got, "ERROR") || strings.Contains(got, "NS") || strings.Contains(got, "NF") {
			t.Fatalf("%s: %q answered %q", tc.name, cmds, got)
		}
		left, ok := metaTTL(t, locationOf(tp, k), k, false)
		if !ok || left < ttl-3 || left > ttl {
			t.Errorf("%s: %ds left on the stand-in (present %v), want %d..%d", tc.name, left, ok, ttl-3, ttl)
		}
	}
	// 19 tokens and no T: no room for the cap, so the write is refused
	// rather than sent uncapped.
	full := "ms " + keys[len(cases)] + " 1 k c F1 s t f h l u v P L R30 N30 J1 D1\r\nx\r\n"
	if got := expectLines(t, c, full, 1); got != "SERVER_ERROR "+errNoRoomToCap.Error()+"\r\n" {
		t.Errorf("full ms line to a stand-in: %q", got)
	}
	tok := base64.StdEncoding.EncodeToString([]byte(bin))
	if got := expectLines(t, c, "ms "+tok+" 1 b k\r\nx\r\n", 1); got != "HD k"+tok+" b\r\n" {
		t.Fatalf("ms of a binary key: %q", got)
	}
	if left, ok := metaTTL(t, locationOf(tp, bin), tok, true); !ok || left < ttl-3 || left > ttl {
		t.Errorf("binary key: %ds left on the stand-in (present %v), want %d..%d", left, ok, ttl-3, ttl)
	}
	if n := proxyStat(t, tp, "failover_capped_writes"); n < len(cases)+1 {
		t.Errorf("failover_capped_writes %d, want at least %d", n, len(cases)+1)
	}
}

// TestMetaFailoverInvalidates: within the window after the backend is
// back, a meta change of a key at home deletes its stand-in copy before
// the client has its reply, binary keys too (with "md <key> b"), and md
// with I as well as ms.
func TestMetaFailoverInvalidates(t *testing.T) {
	tp := startProxy(t, 3, func(o *Options) { o.FailoverTTL = 30 * time.Second })
	victim := tp.backends[1]
	var keys []string
	for i := 0; len(keys) < 4; i++ {
		k := fmt.Sprintf("inv %d", i) // a space: only base64 can carry it
		if locationOf(tp, k) == victim.Addr {
			keys = append(keys, k)
		}
	}
	c := memcachedtest.Dial(t, tp.addr)
	outage(t, tp, victim)
	var toks, standIns []string
	for _, k := range keys {
		tok := base64.StdEncoding.EncodeToString([]byte(k))
		toks = append(toks, tok)
		standIns = append(standIns, locationOf(tp, k))
		expectLines(t, c, "ms "+tok+" 2 b\r\nv1\r\n", 1)
		if _, ok := metaTTL(t, locationOf(tp, k), tok, true); !ok {
			t.Fatalf("%q was not written on its stand-in", k)
		}
	}
	recoverBackend(t, tp, victim)
	before := proxyStat(t, tp, "failover_invalidations")
	for i, cmd := range []string{"ms %s 2 b\r\nv2\r\n", "md %s b I\r\n", "ma %s b N0 J1\r\n", "ma %s b N0 J1 q\r\nmn\r\n"} {
		lines := 1
		if strings.HasSuffix(cmd, "mn\r\n") {
			lines = 2 // a quiet ma that creates: its HD, then MN
		}
		got := expectLines(t, c, fmt.Sprintf(cmd, toks[i]), lines)
		if strings.Contains(got, "ERROR") {
			t.Fatalf("%q: %q", cmd, got)
		}
		if _, ok := metaTTL(t, standIns[i], toks[i], true); ok {
			t.Errorf("the stand-in still holds %q after %q was answered", keys[i], cmd)
		}
	}
	if n := proxyStat(t, tp, "failover_invalidations") - before; n < 4 {
		t.Errorf("%d invalidating deletes, want at least 4", n)
	}
	if n := proxyStat(t, tp, "failover_invalidation_errors"); n != 0 {
		t.Errorf("failover_invalidation_errors %d, want 0", n)
	}
}
