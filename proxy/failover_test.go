package proxy

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/ring"
)

// remainingTTL asks the memcached at addr directly how long key has left:
// -1 for never, ok false when the key is not there.
func remainingTTL(t *testing.T, addr, key string) (ttl int, ok bool) {
	t.Helper()
	c := memcachedtest.Dial(t, addr)
	got := memcachedtest.RoundTrip(t, c, "mg "+key+" t\r\n", "\r\n", 1)
	if got == "EN\r\n" {
		return 0, false
	}
	f := strings.Fields(got)
	if len(f) != 2 || f[0] != "HD" || !strings.HasPrefix(f[1], "t") {
		t.Fatalf("mg %s t on %s: %q", key, addr, got)
	}
	n, err := strconv.Atoi(f[1][1:])
	if err != nil {
		t.Fatalf("mg %s t on %s: %q", key, addr, got)
	}
	return n, true
}

// outage kills victim and waits until it has left the ring.
func outage(t *testing.T, tp *testProxy, victim *memcachedtest.Server) {
	t.Helper()
	victim.Kill()
	waitInRing(t, tp, victim.Addr, false)
}

// recover restarts victim and waits until it is back in the ring.
func recoverBackend(t *testing.T, tp *testProxy, victim *memcachedtest.Server) {
	t.Helper()
	victim.Restart(t)
	waitInRing(t, tp, victim.Addr, true)
}

// TestNoStaleReadAcrossTwoOutages is issue 8's stale read: a key's backend
// leaves twice. The first time the key is written on a stand-in; back
// home it is changed again; the second time the same ring sends it to the
// same stand-in, which must not answer with what it got during the first
// outage. Variants: the change at home is a set, a delete, an incr.
func TestNoStaleReadAcrossTwoOutages(t *testing.T) {
	cases := []struct {
		name string
		// during the first outage, on the stand-in
		first, firstWant string
		// back home
		home, homeWant string
		// during the second outage: the read and what it must not be
		read, stale string
	}{
		{"set", "set %[1]s 0 0 2\r\nv1\r\n", "STORED\r\n",
			"set %[1]s 0 0 2\r\nv2\r\n", "STORED\r\n",
			"get %[1]s\r\n", "VALUE %[1]s 0 2\r\nv1\r\nEND\r\n"},
		{"delete", "set %[1]s 0 0 2\r\nv1\r\n", "STORED\r\n",
			"delete %[1]s\r\n", "NOT_FOUND\r\n", // flushed on re-add: not there
			"get %[1]s\r\n", "VALUE %[1]s 0 2\r\nv1\r\nEND\r\n"},
		{"incr", "set %[1]s 0 0 2\r\n10\r\nincr %[1]s 1\r\n", "STORED\r\n11\r\n",
			"set %[1]s 0 0 3\r\n100\r\nincr %[1]s 1\r\n", "STORED\r\n101\r\n",
			"incr %[1]s 1\r\n", "12\r\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tp := startProxy(t, 3, nil)
			victim := tp.backends[1]
			k := keyOn(t, tp, victim.Addr, "twice:")
			c := memcachedtest.Dial(t, tp.addr)
			exchangeAll := func(cmd, want string) {
				t.Helper()
				cmd, want = strings.ReplaceAll(cmd, "%[1]s", k), strings.ReplaceAll(want, "%[1]s", k)
				if got := expectLines(t, c, cmd, strings.Count(want, "\r\n")); got != want {
					t.Fatalf("%q: got %q, want %q", cmd, got, want)
				}
			}

			outage(t, tp, victim)
			standIn := locationOf(tp, k)
			exchangeAll(tc.first, tc.firstWant)
			recoverBackend(t, tp, victim)
			if got := locationOf(tp, k); got != victim.Addr {
				t.Fatalf("key back on %s, want its home %s", got, victim.Addr)
			}
			exchangeAll(tc.home, tc.homeWant)
			outage(t, tp, victim)
			if got := locationOf(tp, k); got != standIn {
				t.Fatalf("second outage sends the key to %s, first sent it to %s", got, standIn)
			}
			got := expectLines(t, c, strings.ReplaceAll(tc.read, "%[1]s", k), 1)
			if strings.HasPrefix(got, "VALUE") {
				got += expectLines(t, c, "", 2)
			}
			if got == strings.ReplaceAll(tc.stale, "%[1]s", k) {
				t.Fatalf("second outage: %q answered %q, the value from the first outage", strings.ReplaceAll(tc.read, "%[1]s", k), got)
			}
		})
	}
}

// homeOf returns the address of key's home: its backend on the ring of
// every configured backend.
func homeOf(tp *testProxy, key string) string {
	tab := tp.pool0()
	if h := tab.fo.home; h != nil {
		return h.src.members[h.src.place.Locate([]byte(key))].addr
	}
	return locationOf(tp, key)
}

// keyAtHome returns a key whose location is its home and not on avoid.
func keyAtHome(t *testing.T, tp *testProxy, avoid, prefix string) string {
	t.Helper()
	for i := 0; i < 100000; i++ {
		k := prefix + strconv.Itoa(i)
		if loc := locationOf(tp, k); loc != avoid && loc == homeOf(tp, k) {
			return k
		}
	}
	t.Fatalf("no key at home off %s", avoid)
	return ""
}

// TestFailoverCapsStandInExptime: while a backend is out, every command
// that gives one of its keys an expiry on the stand-in gets at most
// failover.ttl, checked on the stand-in memcached itself; keys at home
// keep theirs.
func TestFailoverCapsStandInExptime(t *testing.T) {
	const ttl = 20
	tp := startProxy(t, 3, func(o *Options) { o.FailoverTTL = ttl * time.Second })
	victim := tp.backends[0]
	keys := keysOn(t, tp, victim.Addr, "cap", 12)
	outage(t, tp, victim)
	c := memcachedtest.Dial(t, tp.addr)
	now := time.Now().Unix()
	cases := []struct {
		name string
		cmds string // %s is the key
		n    int    // reply lines
		max  int    // largest remaining ttl allowed; 0: the key must be gone
		min  int    // smallest remaining ttl expected
	}{
		{"set never", "set %s 0 0 1\r\nx\r\n", 1, ttl, ttl - 3},
		{"set past ttl", "set %s 0 3600 1\r\nx\r\n", 1, ttl, ttl - 3},
		{"set within ttl", "set %s 0 10 1\r\nx\r\n", 1, 10, 7},
		{"set absolute past ttl", fmt.Sprintf("set %%s 0 %d 1\r\nx\r\n", now+3600), 1, ttl, ttl - 3},
		{"set absolute within ttl", fmt.Sprintf("set %%s 0 %d 1\r\nx\r\n", now+8), 1, 9, 4},
		{"set negative", "set %s 0 0 1\r\nx\r\nset %s 0 -1 1\r\ny\r\n", 2, 0, 0},
		{"add", "add %s 0 0 1\r\nx\r\n", 1, ttl, ttl - 3},
		{"replace", "set %s 0 5 1\r\nx\r\nreplace %s 0 0 1\r\ny\r\n", 2, ttl, ttl - 3},
		{"touch", "set %s 0 5 1\r\nx\r\ntouch %s 0\r\n", 2, ttl, ttl - 3},
		{"touch absolute", fmt.Sprintf("set %%s 0 5 1\r\nx\r\ntouch %%s %d\r\n", now+86400), 2, ttl, ttl - 3},
		{"gat", "set %s 0 5 1\r\nx\r\ngat 0 %s\r\n", 4, ttl, ttl - 3},
		{"gats", "set %s 0 5 1\r\nx\r\ngats 7200 %s\r\n", 4, ttl, ttl - 3},
	}
	before := proxyStat(t, tp, "failover_capped_writes")
	for i, tc := range cases {
		k := keys[i]
		cmds := strings.ReplaceAll(tc.cmds, "%s", k)
		got := expectLines(t, c, cmds, tc.n)
		if strings.Contains(got, "ERROR") || strings.Contains(got, "NOT_") {
			t.Fatalf("%s: %q answered %q", tc.name, cmds, got)
		}
		left, ok := remainingTTL(t, locationOf(tp, k), k)
		switch {
		case tc.max == 0 && ok:
			t.Errorf("%s: the key is still on the stand-in, %ds left", tc.name, left)
		case tc.max > 0 && !ok:
			t.Errorf("%s: the key is not on the stand-in", tc.name)
		case tc.max > 0 && (left < tc.min || left > tc.max):
			t.Errorf("%s: %ds left on the stand-in, want %d..%d", tc.name, left, tc.min, tc.max)
		}
	}
	if n := proxyStat(t, tp, "failover_capped_writes") - before; n < len(cases) {
		t.Errorf("failover_capped_writes rose by %d, want at least %d", n, len(cases))
	}

	// A gat over a key at home and a key on a stand-in: only the second
	// is capped, although both may live on the same backend.
	home := keyAtHome(t, tp, victim.Addr, "home:")
	var away string
	for i := 0; ; i++ {
		away = keys[0] + "m" + strconv.Itoa(i)
		if homeOf(tp, away) == victim.Addr && locationOf(tp, away) == locationOf(tp, home) {
			break
		}
		if i > 100000 {
			t.Fatal("no stand-in key shares a backend with the home key")
		}
	}
	expectLines(t, c, fmt.Sprintf("set %s 0 0 1\r\nh\r\nset %s 0 5 1\r\na\r\n", home, away), 2)
	got := expectLines(t, c, fmt.Sprintf("gat 0 %s %s\r\n", home, away), 5)
	if want := fmt.Sprintf("VALUE %s 0 1\r\nh\r\nVALUE %s 0 1\r\na\r\nEND\r\n", home, away); got != want {
		t.Fatalf("mixed gat: %q, want %q", got, want)
	}
	if left, _ := remainingTTL(t, locationOf(tp, home), home); left != -1 {
		t.Errorf("key at home after gat 0: %ds left, want never (-1)", left)
	}
	if left, ok := remainingTTL(t, locationOf(tp, away), away); !ok || left < ttl-3 || left > ttl {
		t.Errorf("stand-in key after gat 0: %ds left (present %v), want %d..%d", left, ok, ttl-3, ttl)
	}
}

// TestFailoverSteadyPathUntouched: with every backend in the ring and no
// ring change, nothing is capped and no delete is added.
func TestFailoverSteadyPathUntouched(t *testing.T) {
	tp := startProxy(t, 3, func(o *Options) { o.FailoverTTL = 5 * time.Second })
	c := memcachedtest.Dial(t, tp.addr)
	for i := 0; i < 50; i++ {
		k := fmt.Sprintf("steady:%d", i)
		got := expectLines(t, c, fmt.Sprintf("set %s 0 0 1\r\n1\r\ntouch %s 0\r\nincr %s 1\r\ngat 0 %s\r\n", k, k, k, k), 6)
		if !strings.HasPrefix(got, "STORED\r\nTOUCHED\r\n2\r\nVALUE") {
			t.Fatalf("%s: %q", k, got)
		}
		if left, _ := remainingTTL(t, locationOf(tp, k), k); left != -1 {
			t.Fatalf("%s: %ds left, want never (-1)", k, left)
		}
		expectLines(t, c, "delete "+k+"\r\n", 1)
	}
	for _, name := range []string{"failover_capped_writes", "failover_invalidations", "failover_invalidation_errors"} {
		if n := proxyStat(t, tp, name); n != 0 {
			t.Errorf("%s %d with every backend in the ring, want 0", name, n)
		}
	}
}

// TestFailoverWindow: within the window after a re-add, a change of a key
// deletes its stand-in copy (and the client's reply waits for that);
// past the window no delete is added, and the stand-in copy has expired
// by itself.
func TestFailoverWindow(t *testing.T) {
	const ttl = 2 * time.Second
	tp := startProxy(t, 3, func(o *Options) { o.FailoverTTL = ttl })
	victim := tp.backends[2]
	early := keyOn(t, tp, victim.Addr, "early:")
	late := keyOn(t, tp, victim.Addr, "late:")
	c := memcachedtest.Dial(t, tp.addr)
	outage(t, tp, victim)
	earlyStandIn, lateStandIn := locationOf(tp, early), locationOf(tp, late)
	expectLines(t, c, fmt.Sprintf("set %s 0 0 2\r\nv1\r\nset %s 0 0 2\r\nv1\r\n", early, late), 2)
	recoverBackend(t, tp, victim)

	before := proxyStat(t, tp, "failover_invalidations")
	if got := expectLines(t, c, "set "+early+" 0 0 2\r\nv2\r\n", 1); got != "STORED\r\n" {
		t.Fatalf("set at home: %q", got)
	}
	if n := proxyStat(t, tp, "failover_invalidations") - before; n != 1 {
		t.Errorf("a set within the window sent %d invalidating deletes, want 1", n)
	}
	if _, ok := remainingTTL(t, earlyStandIn, early); ok {
		t.Errorf("the stand-in still holds %s after the set at home was answered", early)
	}

	memcachedtest.WaitFor(t, "the invalidation window to close", func() bool { return !tp.pool0().fo.active(time.Now()) })
	if _, ok := remainingTTL(t, lateStandIn, late); ok {
		t.Errorf("the stand-in copy of %s outlived the window", late)
	}
	before = proxyStat(t, tp, "failover_invalidations")
	expectLines(t, c, "set "+late+" 0 0 2\r\nv2\r\ndelete "+late+"\r\n", 2)
	if n := proxyStat(t, tp, "failover_invalidations") - before; n != 0 {
		t.Errorf("%d invalidating deletes past the window, want 0", n)
	}
	if n := proxyStat(t, tp, "failover_invalidation_errors"); n != 0 {
		t.Errorf("failover_invalidation_errors %d, want 0", n)
	}
}

// TestNoStaleReadDisplacedKey: the bounded-load ring can move a key off
// its home when some other backend leaves, although its home is still in
// the ring. The home copy is not capped, so a change on the stand-in must
// delete it there, or the key would read its old value once the other
// backend is back and the key goes home again, however long after.
func TestNoStaleReadDisplacedKey(t *testing.T) {
	// A tight load bound over few points makes such moves common; any of
	// the three may be the one to leave.
	tp := startProxy(t, 3, func(o *Options) {
		o.FailoverTTL = time.Second
		o.Ring = ring.Config{Partitions: 1009, ReplicationFactor: 5, Load: 1.01}
	})
	// Find a key that the ring without the victim moves between the two
	// others, by building that ring here.
	full := tp.pool0()
	var victim *memcachedtest.Server
	var k string
	for _, v := range tp.backends {
		var others []ring.Member
		for _, b := range full.members {
			if b.addr != v.Addr {
				others = append(others, ring.Member{Name: b.name, Weight: 1})
			}
		}
		without, err := ring.New(others, full.opts.Ring)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100000 && k == ""; i++ {
			cand := "moved:" + strconv.Itoa(i)
			home := full.members[full.place.Locate([]byte(cand))].addr
			if home != v.Addr && without.LocateName([]byte(cand)) != home {
				k, victim = cand, v
			}
		}
		if k != "" {
			break
		}
	}
	if k == "" {
		t.Fatal("no key moves off a home that stays in the ring")
	}
	c := memcachedtest.Dial(t, tp.addr)
	expectLines(t, c, "set "+k+" 0 0 2\r\nv1\r\n", 1)
	outage(t, tp, victim)
	if locationOf(tp, k) == homeOf(tp, k) {
		t.Fatalf("%s did not move off its home", k)
	}
	home := homeOf(tp, k)
	// Past the window of the ejection only the home rule can delete the
	// old copy.
	memcachedtest.WaitFor(t, "the invalidation window to close", func() bool { return !time.Now().Before(tp.pool0().fo.windowEnd) })
	if got := expectLines(t, c, "set "+k+" 0 0 2\r\nv3\r\n", 1); got != "STORED\r\n" {
		t.Fatalf("set on the stand-in: %q", got)
	}
	if _, ok := remainingTTL(t, home, k); ok {
		t.Errorf("the home %s still holds %s after a set on the stand-in", home, k)
	}
	recoverBackend(t, tp, victim)
	got := expectLines(t, c, "get "+k+"\r\n", 1)
	if strings.HasPrefix(got, "VALUE") {
		got += expectLines(t, c, "", 2)
	}
	if strings.Contains(got, "v1") {
		t.Fatalf("back home the key reads %q, the value from before the outage", got)
	}
}

// TestFailoverRandomized runs a few seconds of random set, get, delete and
// incr on a few hundred keys while one backend is killed and restarted
// twice. Each key belongs to one worker, so each worker knows the last
// value acknowledged for its keys: a read may miss (a cache may always
// miss), but a hit must be that value, an incr must start from it, and a
// deleted key must stay deleted.
func TestFailoverRandomized(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a backend twice")
	}
	tp := startProxy(t, 3, nil)
	victim := tp.backends[1]
	const workers, keysPer = 4, 100
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ops, violations atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			randomWorker(t, tp.addr, w, keysPer, stop, &ops, &violations)
		}(w)
	}
	progress := func() {
		t.Helper()
		start := ops.Load()
		memcachedtest.WaitFor(t, "the load to make progress", func() bool { return ops.Load() >= start+int64(workers*keysPer) })
	}
	defer func() {
		close(stop)
		wg.Wait()
		t.Logf("%d operations, %d violations", ops.Load(), violations.Load())
		if n := violations.Load(); n > 0 {
			t.Errorf("%d reads older than an acknowledged write", n)
		}
	}()
	for cycle := 0; cycle < 2; cycle++ {
		progress()
		outage(t, tp, victim)
		progress()
		victim.Restart(t)
		// The second return waits out the checker's flap hold-down.
		memcachedtest.WaitFor(t, "the victim to rejoin the ring", func() bool {
			if inRing(tp, victim.Addr) {
				return true
			}
			progress()
			return false
		})
	}
	progress()
}

// randomWorker is one client of TestFailoverRandomized, on keys
// rnd:<w>:<i>, counting what it completes in ops.
func randomWorker(t *testing.T, addr string, w, nkeys int, stop chan struct{}, ops, violations *atomic.Int64) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Errorf("worker %d: dial: %v", w, err)
		return
	}
	defer c.Close()
	br := bufio.NewReader(c)
	line := func() string {
		s, err := br.ReadString('\n')
		if err != nil {
			t.Errorf("worker %d: read: %v", w, err)
		}
		return s
	}
	// model: the value last acknowledged; "" deleted; "?" unknown (a
	// command failed, it may or may not have applied).
	model := make([]string, nkeys)
	for i := range model {
		model[i] = "?"
	}
	violate := func(format string, args ...any) {
		violations.Add(1)
		if violations.Load() <= 10 {
			t.Errorf("worker %d: "+format, append([]any{w}, args...)...)
		}
	}
	rnd := rand.New(rand.NewPCG(uint64(w), 8))
	seq := 1000
	for n := 0; n < 1_000_000; n++ {
		select {
		case <-stop:
			return
		default:
		}
		ops.Add(1)
		i := rnd.IntN(nkeys)
		k := fmt.Sprintf("rnd:%d:%d", w, i)
		_ = c.SetDeadline(time.Now().Add(exchangeBound))
		switch op := rnd.IntN(10); {
		case op < 3:
			seq++
			v := strconv.Itoa(seq)
			fmt.Fprintf(c, "set %s 0 0 %d\r\n%s\r\n", k, len(v), v)
			switch r := line(); r {
			case "STORED\r\n":
				model[i] = v
			default:
				model[i] = "?"
			}
		case op < 4:
			fmt.Fprintf(c, "delete %s\r\n", k)
			switch r := line(); r {
			case "DELETED\r\n", "NOT_FOUND\r\n":
				model[i] = ""
			default:
				model[i] = "?"
			}
		case op < 6:
			fmt.Fprintf(c, "incr %s 1\r\n", k)
			r := strings.TrimSuffix(line(), "\r\n")
			switch {
			case r == "NOT_FOUND":
			case strings.HasPrefix(r, "SERVER_ERROR"):
				model[i] = "?"
			case model[i] == "?":
				model[i] = r
			case model[i] == "":
				violate("incr %s answered %s after it was deleted", k, r)
				model[i] = r
			default:
				m, _ := strconv.Atoi(model[i])
				if r != strconv.Itoa(m+1) {
					violate("incr %s answered %s, want %d", k, r, m+1)
				}
				model[i] = r
			}
		default:
			fmt.Fprintf(c, "get %s\r\n", k)
			r := line()
			if !strings.HasPrefix(r, "VALUE ") {
				continue // END: a miss is always allowed
			}
			v := strings.TrimSuffix(line(), "\r\n")
			line() // END
			switch model[i] {
			case "?", v:
			case "":
				violate("get %s answered %s after it was deleted", k, v)
			default:
				violate("get %s answered %s, want %s", k, v, model[i])
			}
		}
	}
}

// TestLateWriteAfterSwap: a set routed with the old table reaches its
// backend only after the table was replaced (the backend was frozen
// meanwhile), so the new table's invalidations may already have passed
// there. Its copy off the new ring must be gone by the time the client
// has its STORED.
func TestLateWriteAfterSwap(t *testing.T) {
	servers := []*memcachedtest.Server{memcachedtest.Start(t), memcachedtest.Start(t), memcachedtest.Start(t)}
	tp := startProxyFor(t, servers[:2], func(o *Options) {
		o.Health.AlwaysUp = true // the swap comes from Reconfigure alone
		o.Timeout = 10 * time.Second
	})
	slow, added := servers[1], servers[2]
	grown := []ring.Member{{Name: servers[0].Addr, Weight: 1}, {Name: slow.Addr, Weight: 1}, {Name: added.Addr, Weight: 1}}
	next, err := ring.New(grown, tp.pool0().opts.Ring)
	if err != nil {
		t.Fatal(err)
	}
	var k string
	for i := 0; i < 100000 && k == ""; i++ {
		cand := "late:" + strconv.Itoa(i)
		if locationOf(tp, cand) == slow.Addr && next.LocateName([]byte(cand)) == added.Addr {
			k = cand
		}
	}
	if k == "" {
		t.Fatal("no key moves from the slow backend to the added one")
	}
	c := memcachedtest.Dial(t, tp.addr)
	expectLines(t, c, "set warm 0 0 1\r\nw\r\nset "+k+" 0 0 2\r\nv0\r\n", 2) // connections up
	var sb *backend
	for _, b := range tp.pool0().members {
		if b.addr == slow.Addr {
			sb = b
		}
	}
	sent := sb.requests()

	if err := slow.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slow.Thaw() })
	_ = c.SetDeadline(time.Now().Add(exchangeBound + 10*time.Second))
	if _, err := c.Write([]byte("set " + k + " 0 0 2\r\nv1\r\n")); err != nil {
		t.Fatal(err)
	}
	memcachedtest.WaitFor(t, "the set to leave for the slow backend", func() bool { return sb.requests() != sent })
	var bs []Backend
	for _, m := range grown {
		bs = append(bs, Backend{Addr: m.Name, Weight: 1})
	}
	if _, err := tp.reconfigure(bs, tp.pool0().opts.Ring); err != nil {
		t.Fatal(err)
	}
	if got := locationOf(tp, k); got != added.Addr {
		t.Fatalf("after the reload %s is on %s, want %s", k, got, added.Addr)
	}
	if err := slow.Thaw(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("STORED\r\n"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "STORED\r\n" {
		t.Fatalf("late set: %q, %v", buf, err)
	}
	if _, ok := remainingTTL(t, slow.Addr, k); ok {
		t.Errorf("the late set left its copy on %s, off the new ring", slow.Addr)
	}
	if n := proxyStat(t, tp, "failover_late_writes"); n != 1 {
		t.Errorf("failover_late_writes %d, want 1", n)
	}
}
