package proxy

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// eventLoop is one epoll event loop: a goroutine that owns a share of the
// client sessions and its own connections to every backend, and does all of
// their I/O itself. A command is read, parsed, routed and queued for its
// backend connection on this goroutine; the connection writes everything
// queued in one writev per loop turn; replies are parsed and rendered for
// their clients on this goroutine too, and each client gets one write per
// turn. Nothing on that path crosses goroutines, takes a lock, arms a timer
// or allocates.
//
// Other goroutines (the acceptor, the health checker, reconfiguration,
// shutdown, backend dials) reach a loop only through post, which queues a
// function for the loop to run and wakes it through an eventfd.
//
// Deadlines (a backend's oldest request, a connection's backoff, a client's
// idle and drain periods) are not timers: each turn the loop checks the
// conditions that may have expired and sleeps in epoll_wait until the next
// one can (timers.go).
type eventLoop struct {
	p  *Proxy
	id int

	epfd   int
	wakeFd int // an eventfd: post writes it, the loop reads it
	events []unix.EpollEvent

	// handlers maps a file descriptor to what owns it. Indexed by fd:
	// descriptors are small integers, and a slice lookup is cheaper than
	// a map's on every event.
	handlers []fdHandler

	mu       sync.Mutex // guards tasks
	tasks    []func()
	spare    []func()
	wakeSent atomic.Bool // the eventfd has been written and not yet read
	stopped  atomic.Bool // the loop has returned: post refuses
	quit     bool        // owned by the loop: return after this turn
	done     chan struct{}

	// now is the time of the current turn. Everything the loop does in a
	// turn takes its time from here: one clock read per turn, not per
	// command.
	now time.Time

	sessions map[*session]struct{}
	conns    []*backendConn // every backend connection this loop owns

	// Work found during a turn and done at its end, so that one turn's
	// commands to a backend leave in one write and one turn's replies to a
	// client leave in one write.
	dirtySessions []*session
	dirtyConns    []*backendConn

	// Sessions that used up their turn budget and resume on the next
	// turn (turn_budget.go); spareYielded keeps the other list's memory.
	yielded      []*session
	spareYielded []*session
	// turn counts the loop's turns; a session's budget is for one turn.
	turn uint64

	timers loopTimers

	// load is what the balancer reads of this loop (loop_load.go).
	load loopLoad
	// leaving holds the sessions asked to move to another loop, which
	// move once they are quiet (loop_move.go); nextConn deals the
	// sessions that arrive over the loop's connections to each backend.
	leaving  []*session
	nextConn int
}

// fdHandler is a client session or backend connection registered with a
// loop's epoll set.
type fdHandler interface {
	onEvent(events uint32)
}

// Interest sets. Level-triggered: a handler that leaves bytes unread (its
// client is over the output limit) takes EPOLLIN out of its set instead.
const (
	evRead  = unix.EPOLLIN | unix.EPOLLRDHUP
	evWrite = unix.EPOLLOUT
)

func newEventLoop(p *Proxy, id int) (*eventLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wakeFd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	l := &eventLoop{
		p:        p,
		id:       id,
		epfd:     epfd,
		wakeFd:   wakeFd,
		events:   make([]unix.EpollEvent, 256),
		sessions: make(map[*session]struct{}),
		done:     make(chan struct{}),
		now:      time.Now(),
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakeFd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakeFd)}); err != nil {
		unix.Close(epfd)
		unix.Close(wakeFd)
		return nil, fmt.Errorf("epoll_ctl add eventfd: %w", err)
	}
	return l, nil
}

// post queues f to run on the loop and wakes it. It returns false, without
// running f, when the loop has stopped.
func (l *eventLoop) post(f func()) bool {
	l.mu.Lock()
	if l.stopped.Load() {
		l.mu.Unlock()
		return false
	}
	l.tasks = append(l.tasks, f)
	l.mu.Unlock()
	if l.wakeSent.CompareAndSwap(false, true) {
		var one = [8]byte{1}
		for {
			_, err := unix.Write(l.wakeFd, one[:])
			if err != unix.EINTR {
				break
			}
		}
	}
	return true
}

// call runs f on the loop and waits for it; false when the loop has
// stopped. For control paths (shutdown, tests), never for the loop itself.
func (l *eventLoop) call(f func()) bool {
	ran := make(chan struct{})
	if !l.post(func() { f(); close(ran) }) {
		return false
	}
	select {
	case <-ran:
		return true
	case <-l.done:
		return false
	}
}

// run is the loop's goroutine.
func (l *eventLoop) run() {
	defer l.close()
	busy := false
	for !l.quit {
		var n int
		var err error
		if busy || len(l.yielded) > 0 {
			// The last turn had work, or sessions wait to resume: look
			// again without sleeping. Under load there usually is more,
			// and a poll that does not block costs far less than one that
			// parks the thread.
			if n, err = pollNow(l.epfd, l.events); n == 0 && err == nil && len(l.yielded) == 0 {
				busy = false
				yieldBeforeSleep()
				continue
			}
			l.now = time.Now()
		} else {
			sleptFrom := l.load.sleeping()
			n, err = unix.EpollWait(l.epfd, l.events, l.timers.pollTimeout(l))
			l.now = time.Now()
			l.load.woke(sleptFrom, l.now)
		}
		busy = n > 0
		if err != nil && !errors.Is(err, unix.EINTR) {
			l.p.log.Error("epoll_wait", zap.Int("loop", l.id), zap.Error(err))
			time.Sleep(10 * time.Millisecond) // never spin on a broken poller
			continue
		}
		l.turn++
		yielded := l.takeYielded()
		for i := 0; i < n; i++ {
			ev := &l.events[i]
			fd := int(ev.Fd)
			if fd == l.wakeFd {
				l.readWake()
				continue
			}
			if fd < len(l.handlers) && l.handlers[fd] != nil {
				l.handlers[fd].onEvent(ev.Events)
			}
		}
		l.runTasks()
		if yielded != nil {
			l.resumeYielded(yielded)
			l.spareYielded = yielded[:0]
		}
		l.timers.expire(l)
		l.endTurn()
		if len(l.leaving) > 0 {
			l.moveLeaving() // sessions asked to move to another loop (loop_move.go)
		}
	}
}

// yieldBeforeSleep lets the goroutines waiting for this loop's P run
// before the loop sleeps, when there is no other P for them: with
// GOMAXPROCS 1, a loop that went to sleep in epoll_wait with goroutines
// runnable made the runtime hand its P to another thread, which woke about
// 2,000 times a second under load. With more Ps the runtime runs them on an
// idle P (or, with every loop saturated, when a loop sleeps or is preempted
// after 10 ms), and a yield only costs: it wakes an idle thread (wakep) and
// sends the loop's goroutine through the global run queue, where another
// thread often takes it, so the loop hops between threads (futex wake-ups,
// cold caches); docs/scaling.md has both measured.
func yieldBeforeSleep() {
	if runtime.GOMAXPROCS(0) == 1 {
		runtime.Gosched()
	}
}

// readWake empties the eventfd, then clears the flag that stops posts
// from writing it again. In that order: a post whose write was read here
// appended its task before it wrote, and one that found the flag still set
// appended its task before the flag is cleared; runTasks, which comes
// after, sees both. (Clearing first would let a write land between the two
// steps and be read away with the flag left set: every later post would
// skip the write, and the loop would sleep on queued tasks.)
func (l *eventLoop) readWake() {
	var buf [8]byte
	_, _ = unix.Read(l.wakeFd, buf[:])
	l.wakeSent.Store(false)
}

func (l *eventLoop) runTasks() {
	l.mu.Lock()
	tasks := l.tasks
	l.tasks = l.spare[:0]
	l.mu.Unlock()
	for i, f := range tasks {
		f()
		tasks[i] = nil
	}
	l.spare = tasks[:0]
}

// endTurn does the writes a turn produced: every backend connection with
// commands queued writes them at once, and every client with replies ready
// gets them in one write. Writing replies can make room for a client whose
// reading was held back, whose next commands may in turn queue more work or
// be answered at once, so it goes round until nothing is left; it ends
// because each session runs at most its turn budget of commands
// (turn_budget.go).
func (l *eventLoop) endTurn() {
	for len(l.dirtyConns) > 0 || len(l.dirtySessions) > 0 {
		endTurns(&l.dirtyConns)
		endTurns(&l.dirtySessions)
	}
}

// turnEnder is what endTurn ends a turn for: a backend connection or a
// client session marked dirty during the turn.
type turnEnder interface {
	*backendConn | *session
	endTurn()
}

// endTurns ends the turn of everything in *dirty. What they mark dirty
// meanwhile lands in a fresh list, left for endTurn's next round; the old
// list's memory is kept for the next turn when nothing did.
func endTurns[T turnEnder](dirty *[]T) {
	items := *dirty
	*dirty = nil
	for i, x := range items {
		x.endTurn()
		items[i] = nil
	}
	if *dirty == nil {
		*dirty = items[:0]
	}
}

// markSession asks for s to write its replies at the end of the turn.
func (l *eventLoop) markSession(s *session) {
	if !s.dirty {
		s.dirty = true
		l.dirtySessions = append(l.dirtySessions, s)
	}
}

// markConn asks for c to write its queued commands at the end of the turn.
func (l *eventLoop) markConn(c *backendConn) {
	if !c.dirty {
		c.dirty = true
		l.dirtyConns = append(l.dirtyConns, c)
	}
}

// register adds fd to the epoll set with the given interest.
func (l *eventLoop) register(fd int, h fdHandler, events uint32) error {
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)}); err != nil {
		return fmt.Errorf("epoll_ctl add fd %d: %w", fd, err)
	}
	for fd >= len(l.handlers) {
		l.handlers = append(l.handlers, make([]fdHandler, len(l.handlers)+64)...)
	}
	l.handlers[fd] = h
	return nil
}

// modify changes fd's interest set.
func (l *eventLoop) modify(fd int, events uint32) {
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)}); err != nil {
		l.p.log.Warn("epoll_ctl mod", zap.Int("fd", fd), zap.Error(err))
	}
}

// unregister removes fd from the epoll set and closes it.
func (l *eventLoop) unregister(fd int) {
	if fd < len(l.handlers) {
		l.handlers[fd] = nil
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	_ = unix.Close(fd)
}

// stop makes the loop return after the current turn; what it owns must
// already be closed.
func (l *eventLoop) stop() {
	if l.post(func() { l.quit = true }) {
		<-l.done
	}
}

// close runs when the loop returns: later posts are refused, and tasks
// already queued run (they only close things).
func (l *eventLoop) close() {
	l.mu.Lock()
	l.stopped.Store(true)
	tasks := l.tasks
	l.tasks = nil
	l.mu.Unlock()
	for _, f := range tasks {
		f()
	}
	_ = unix.Close(l.epfd)
	_ = unix.Close(l.wakeFd)
	close(l.done)
}
