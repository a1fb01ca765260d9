package memcachedtest

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/textclient"
)

// statsWait bounds one stats exchange.
const statsWait = 5 * time.Second

// Stats sends "stats" (or "stats <group>" when group is not empty) to addr,
// a memcached or an mcproxy on a loopback address, on a new connection and
// returns the STAT lines as name -> value. It fails the test on any error.
func Stats(t testing.TB, addr, group string) map[string]string {
	t.Helper()
	m, err := textclient.Stats(addr, group, statsWait)
	if err != nil {
		t.Fatalf("memcachedtest: %v", err)
	}
	return m
}

// ParseStats turns STAT lines into name -> value.
func ParseStats(s string) map[string]string { return textclient.ParseStats(s) }

// Stat returns one numeric stat of addr.
func Stat(t testing.TB, addr, name string) int {
	t.Helper()
	v, ok := Stats(t, addr, "")[name]
	if !ok {
		t.Fatalf("memcachedtest: no stat %s from %s", name, addr)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("memcachedtest: stat %s of %s: %v", name, addr, err)
	}
	return n
}

// WaitStat polls the stat name of addr until it is want, and fails the test
// if it is not within WaitBound; step names the moment in the message.
func WaitStat(t testing.TB, step, addr, name, want string) {
	t.Helper()
	WaitFor(t, fmt.Sprintf("%s: stat %s of %s to be %q", step, name, addr, want), func() bool {
		return Stats(t, addr, "")[name] == want
	})
}
