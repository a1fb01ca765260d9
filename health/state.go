package health

import "time"

// State is a backend's health.
type State uint8

const (
	// Up: the backend serves and belongs in the ring.
	Up State = iota
	// Down: the backend failed FailureLimit times in a row and stays out
	// until it passes SuccessLimit probes in a row.
	Down
)

func (s State) String() string {
	if s == Down {
		return "down"
	}
	return "up"
}

// tracker is the up/down state machine of one backend. It has no clock or
// I/O of its own, so the rules can be tested step by step.
type tracker struct {
	cfg   Config
	state State

	failures  int // consecutive failures, reset by a successful probe
	successes int // consecutive successful probes while down

	lastChange time.Time
	lastUp     time.Time     // when it last came back; zero if never
	holdDown   time.Duration // current flap hold-down; 0 when not flapping
	downUntil  time.Time     // earliest return while held down
	lastError  string
	// joining: added down (SetBackendsPending) and not up since.
	joining bool

	ejections, readds uint64
}

// failure records a failed probe or a passive failure. It reports whether
// the backend went down just now.
func (t *tracker) failure(now time.Time, reason string) bool {
	t.lastError = reason
	t.successes = 0
	t.failures++
	if t.state == Down || t.failures < t.cfg.FailureLimit {
		return false
	}
	t.state = Down
	t.ejections++
	if !t.lastUp.IsZero() && now.Sub(t.lastUp) < t.cfg.FlapWindow {
		t.holdDown = min(max(2*t.holdDown, t.cfg.MinHoldDown), t.cfg.MaxHoldDown)
	} else {
		t.holdDown = 0
	}
	t.downUntil = now.Add(t.holdDown)
	t.lastChange = now
	return true
}

// wouldComeUp reports whether one more successful probe at now would bring
// the backend back.
func (t *tracker) wouldComeUp(now time.Time) bool {
	return t.state == Down && t.successes+1 >= t.cfg.SuccessLimit && !now.Before(t.downUntil)
}

// success records a successful probe. It reports whether the backend came
// back just now.
func (t *tracker) success(now time.Time) bool {
	t.failures = 0
	if t.state == Up {
		return false
	}
	t.successes++
	if t.successes < t.cfg.SuccessLimit || now.Before(t.downUntil) {
		return false
	}
	t.state = Up
	t.joining = false
	t.successes = 0
	if t.ejections > 0 {
		t.readds++ // not a backend joining for the first time
	}
	t.lastUp = now
	t.lastChange = now
	return true
}
