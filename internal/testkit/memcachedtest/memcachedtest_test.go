package memcachedtest

import (
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/textclient"
)

// TestServerLifecycle drives one memcached through what failure tests do
// to it: a frozen server answers nothing, a thawed one answers again, and a
// restarted one is back on its port, empty.
func TestServerLifecycle(t *testing.T) {
	s := Start(t)
	Send(t, s.Addr, "set k 0 0 1\r\nx\r\n", "STORED\r\n", 1)
	if n := Stat(t, s.Addr, "curr_items"); n != 1 {
		t.Fatalf("curr_items %d after a set, want 1", n)
	}

	if err := s.Freeze(); err != nil {
		t.Fatal(err)
	}
	if _, err := textclient.Stats(s.Addr, "", 200*time.Millisecond); err == nil {
		t.Fatal("a frozen memcached answered stats")
	}
	if err := s.Thaw(); err != nil {
		t.Fatal(err)
	}
	WaitStat(t, "thawed", s.Addr, "curr_items", "1")

	pid := s.PID()
	s.Restart(t)
	if s.PID() == pid || s.PID() == 0 {
		t.Fatalf("pid %d after a restart, was %d", s.PID(), pid)
	}
	if n := Stat(t, s.Addr, "curr_items"); n != 0 {
		t.Fatalf("curr_items %d after a restart, want 0", n)
	}
	s.Kill()
	s.Kill() // a second Kill is harmless
	if err := s.Freeze(); err == nil {
		t.Fatal("Freeze of a killed memcached did not fail")
	}
}

// TestLoadCountsWithoutErrors runs the test load against a memcached: it
// makes progress and sees no error.
func TestLoadCountsWithoutErrors(t *testing.T) {
	s := Start(t)
	l := StartLoad(t, s.Addr, 4, "load:", 100)
	l.Check(t, "steady", 500)
	l.Stop()
	if l.Ops() < 500 {
		t.Fatalf("%d operations", l.Ops())
	}
}
