package proxy

// A turn of an event loop is bounded. Each turn a client session may run at
// most Options.ReqsPerEvent commands and read at most
// Options.ReadBytesPerEvent bytes from its socket; past either it yields:
// it stops where it is, with what it has read still buffered, and the loop
// resumes it on its next turn without waiting for the socket to become
// readable again (eventLoop.resumeYielded). A loop that has sessions to
// resume polls without sleeping, so a yield costs one epoll_wait that does
// not block.
//
// memcached does the same (-R, 20 commands per connection per event, counted
// as conn_yields): without it a client that keeps its socket full of
// commands the proxy answers itself (version, verbosity, mn) keeps its loop
// in one turn for as long as it writes, and every other client of that
// loop, its backend replies and its deadlines wait. The byte budget covers
// what the command count does not: a data block or a refused block being
// thrown away is one command however long it is.
//
// A pipelining client pays nothing below the budget: 16 commands in flight
// fit in one turn, as before.

// Turn budget (config: limits.reqs_per_event, limits.read_bytes_per_event).
const (
	// DefaultReqsPerEvent is Options.ReqsPerEvent's default, memcached's
	// own (-R 20).
	DefaultReqsPerEvent = 20
	// MinReqsPerEvent and MaxReqsPerEvent bound Options.ReqsPerEvent.
	MinReqsPerEvent = 1
	MaxReqsPerEvent = 1 << 20
	// DefaultReadBytesPerEvent is Options.ReadBytesPerEvent's default: a
	// few maximum-size reads of memcached's 16 KiB read buffer's worth of
	// commands, a quarter of a default-size item's data block.
	DefaultReadBytesPerEvent = 256 << 10
	// MinReadBytesPerEvent and MaxReadBytesPerEvent bound
	// Options.ReadBytesPerEvent.
	MinReadBytesPerEvent = 16 << 10
	MaxReadBytesPerEvent = 1 << 30
)

// turnBudget is what a session may still do in the current turn of its
// loop; owned by the loop.
type turnBudget struct {
	turn uint64 // the loop turn the budget was given for
	reqs int    // commands it may still run this turn
}

// beginTurn gives s its budget the first time it runs in a turn.
func (s *session) beginTurn() {
	if s.budget.turn == s.l.turn {
		return
	}
	s.budget.turn = s.l.turn
	s.budget.reqs = s.p.opts.ReqsPerEvent
	s.in.budget = s.p.opts.ReadBytesPerEvent
}

// spent reports whether s has run its budget of commands for this turn.
// The byte budget is the reader's (fdReader.budget): past it, the reader
// reports that it would block, and the session yields (readCommands) after
// parsing what it has already read.
func (s *session) spent() bool {
	return s.budget.reqs <= 0
}

// yield puts s on its loop's list to resume next turn.
func (s *session) yield() {
	if s.yielded {
		return
	}
	s.yielded = true
	s.l.yielded = append(s.l.yielded, s)
	s.p.stats.connYields.Add(1)
}

// resumeYielded runs the sessions that yielded in the last turn, except
// those that have run in this turn already (their socket was readable
// again); it runs after the turn's events, so the clients that were waiting
// go first.
func (l *eventLoop) resumeYielded(yielded []*session) {
	for i, s := range yielded {
		yielded[i] = nil
		if s.budget.turn != l.turn && s.state < sessLost {
			s.readCommands()
		}
	}
}

// takeYielded starts a turn's list of sessions to resume: the ones that
// yielded in the last turn, which may yield again in this one.
func (l *eventLoop) takeYielded() []*session {
	if len(l.yielded) == 0 {
		return nil
	}
	yielded := l.yielded
	l.yielded = l.spareYielded[:0]
	for _, s := range yielded {
		s.yielded = false
	}
	return yielded
}
