package health

import (
	"testing"
	"time"
)

func newTracker() *tracker {
	return &tracker{cfg: Config{FailureLimit: 3, SuccessLimit: 2, FlapWindow: time.Minute,
		MinHoldDown: 5 * time.Second, MaxHoldDown: 20 * time.Second}.withDefaults()}
}

func TestTrackerNeedsConsecutiveFailures(t *testing.T) {
	tr := newTracker()
	now := time.Unix(1000, 0)
	if tr.failure(now, "a") || tr.failure(now, "b") {
		t.Fatal("down before the failure limit")
	}
	tr.success(now) // a success in between resets the count
	if tr.failure(now, "c") || tr.failure(now, "d") {
		t.Fatal("failures before a success still counted")
	}
	if !tr.failure(now, "e") {
		t.Fatal("not down after 3 consecutive failures")
	}
	if tr.state != Down || tr.ejections != 1 || tr.lastError != "e" || !tr.lastChange.Equal(now) {
		t.Fatalf("after going down: %+v", tr)
	}
	if tr.failure(now, "f") {
		t.Fatal("a down backend went down again")
	}
}

func TestTrackerNeedsConsecutiveSuccesses(t *testing.T) {
	tr := newTracker()
	now := time.Unix(1000, 0)
	for i := 0; i < 3; i++ {
		tr.failure(now, "x")
	}
	if tr.success(now) {
		t.Fatal("up after one success")
	}
	tr.failure(now, "y") // breaks the streak
	if tr.success(now) {
		t.Fatal("up after a broken streak")
	}
	if !tr.success(now) {
		t.Fatal("not up after 2 consecutive successes")
	}
	if tr.state != Up || tr.readds != 1 || tr.failures != 0 {
		t.Fatalf("after coming back: %+v", tr)
	}
}

func TestTrackerFlapHoldDown(t *testing.T) {
	tr := newTracker()
	now := time.Unix(1000, 0)
	down := func() {
		t.Helper()
		for i := 0; i < 3; i++ {
			tr.failure(now, "x")
		}
		if tr.state != Down {
			t.Fatal("not down")
		}
	}
	// cameBackAfter asserts the backend returns only once hold has passed.
	cameBackAfter := func(hold time.Duration) {
		t.Helper()
		if tr.success(now) {
			t.Fatal("back after one success")
		}
		if hold > 0 {
			if tr.success(now.Add(hold - time.Millisecond)) {
				t.Fatalf("back before its hold-down of %v", hold)
			}
			now = now.Add(hold)
		}
		if !tr.success(now) || tr.state != Up {
			t.Fatalf("not back after its hold-down of %v", hold)
		}
	}
	down()
	cameBackAfter(0) // first ejection: no hold-down
	now = now.Add(10 * time.Second)
	down() // ejected again within the flap window
	cameBackAfter(5 * time.Second)
	now = now.Add(time.Second)
	down()
	cameBackAfter(10 * time.Second)
	now = now.Add(time.Second)
	down()
	cameBackAfter(20 * time.Second)
	now = now.Add(time.Second)
	down()
	cameBackAfter(20 * time.Second) // capped
	now = now.Add(2 * time.Minute)  // stable for longer than the window
	down()
	cameBackAfter(0)
}

func TestStateString(t *testing.T) {
	if Up.String() != "up" || Down.String() != "down" {
		t.Fatalf("%s %s", Up, Down)
	}
}
