package memcachedtest

import (
	"testing"
	"time"
)

// WaitBound bounds every wait of a test for state it can observe: a
// backend going down, a session ending, a process accepting. It is
// generous because the machines are small and shared (a test must pass
// while another `make test` runs beside it); a test that passes never
// waits this long.
const WaitBound = 30 * time.Second

// pollEvery is how often WaitFor asks again.
const pollEvery = 5 * time.Millisecond

// WaitFor calls cond until it returns true and fails the test if it has not
// within WaitBound; what names the awaited state in the message. cond may
// act as well as look (send a request, report a failure): it runs once per
// poll.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", WaitBound, what)
		}
		time.Sleep(pollEvery)
	}
}
