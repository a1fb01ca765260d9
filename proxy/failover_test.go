package proxy

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/memctest"
)

// locationOf returns the address the proxy's current ring sends key to.
func locationOf(tp *testProxy, key string) string {
	tab := tp.table.Load()
	return tab.members[tab.ring.Locate([]byte(key))].addr
}

// remainingTTL asks the memcached at addr directly how long key has left:
// -1 for never, ok false when the key is not there.
func remainingTTL(t *testing.T, addr, key string) (ttl int, ok bool) {
	t.Helper()
	c := dial(t, addr)
	got := roundTrip(t, c, "mg "+key+" t\r\n", "\r\n")
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

// expectLines sends cmd on c and reads n reply lines.
func expectLines(t *testing.T, c net.Conn, cmd string, n int) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(exchangeBound))
	if _, err := c.Write([]byte(cmd)); err != nil {
		t.Fatalf("write %q: %v", cmd, err)
	}
	var got []byte
	buf := make([]byte, 1)
	for strings.Count(string(got), "\r\n") < n {
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("reply to %q: read %q then %v", cmd, got, err)
		}
		got = append(got, buf[0])
	}
	return string(got)
}

// proxyStat returns one of the proxy's own stats.
func proxyStat(t *testing.T, tp *testProxy, name string) int {
	t.Helper()
	return memctest.Stat(t, tp.addr, name)
}

// outage kills victim and waits until it has left the ring.
func outage(t *testing.T, tp *testProxy, victim *memctest.Server) {
	t.Helper()
	victim.Kill()
	waitInRing(t, tp, victim.Addr, false)
}

// recover restarts victim and waits until it is back in the ring.
func recoverBackend(t *testing.T, tp *testProxy, victim *memctest.Server) {
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
			c := dial(t, tp.addr)
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
