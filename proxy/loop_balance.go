package proxy

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// The loop balancer: as few event loops awake as the load needs.
//
// Each loop batches only its own clients' commands onto its own backend
// connections, and pays its own wake-ups. Spread thin over several loops,
// moderate traffic batches worse and wakes more: on a 2-core host shared
// with its clients, two loops spent 1.14-1.37x the CPU per key of one at
// every load measured (docs/design.md). So with event_loops at its default
// (0) mcproxy starts one loop per CPU but keeps only the first k awake:
// new clients go to those k (Proxy.admit), and the balancer moves sessions
// so that the others hold none and sleep in epoll_wait at no cost.
//
// Every balanceInterval the balancer reads each loop's busy fraction
// (loop_load.go) and the host's idle CPUs among those the process may run
// on (loop_cpu.go):
//
//   - wake one more loop when the awake loops are saturated on average
//     (saturatedBusy) for wakeAfter intervals in a row and an idle CPU is
//     there to run it (spareCPUForLoop). A saturated loop on a host with
//     no idle CPU is short of CPU, not of loops: another loop would take
//     its CPU from the same clients and backends, and batch worse;
//   - let the last awake loop sleep when the load of all of them would fit
//     in one fewer at most sleepBusy busy each, for sleepAfter intervals in
//     a row. The gap between the two thresholds keeps it from flapping.
//
// Waking loop k, each awake loop hands it its share of sessions (1/(k+1)
// of its own); putting loop k to sleep, it hands all of its sessions to
// the loops that stay awake. Sessions move at command boundaries
// (loop_move.go). With event_loops set, every loop stays awake and the
// balancer does not run.
const (
	balanceInterval = 250 * time.Millisecond
	saturatedBusy   = 0.85
	sleepBusy       = 0.5
	spareCPUForLoop = 0.75
	wakeAfter       = 2
	sleepAfter      = 4
)

// loopBalancer keeps the number of awake loops fitted to the load. Its
// goroutine runs each step under mu, which guards every field but active
// and moves (atomics, read by the acceptor and stats).
type loopBalancer struct {
	p  *Proxy
	mu sync.Mutex
	// active is the number of awake loops, the first active of p.loops:
	// the acceptor deals new clients over them. All loops when event_loops
	// is set.
	active atomic.Int32
	moves  atomic.Uint64 // sessions moved between loops, in all

	stop chan struct{}
	done chan struct{}

	cpu       hostCPU
	lastAt    time.Time
	lastSlept []time.Duration
	busy      []float64 // each loop's busy fraction over the last interval
	hot, cool int       // intervals in a row over saturatedBusy, under sleepBusy
}

// startBalancer starts the balancer when the loop count is the default's;
// otherwise every loop stays awake.
func (p *Proxy) startBalancer() {
	b := &p.balance
	b.p = p
	if !p.opts.adaptiveLoops || len(p.loops) < 2 {
		b.active.Store(int32(len(p.loops)))
		return
	}
	b.active.Store(1)
	b.stop, b.done = make(chan struct{}), make(chan struct{})
	b.cpu.init()
	b.lastSlept = make([]time.Duration, len(p.loops))
	b.busy = make([]float64, len(p.loops))
	b.sample(time.Now())
	go b.run()
}

// stopBalancer stops the balancer's goroutine, if it runs.
func (p *Proxy) stopBalancer() {
	if b := &p.balance; b.stop != nil {
		close(b.stop)
		<-b.done
		b.stop = nil
	}
}

// awakeLoops returns the loops new clients are dealt to.
func (p *Proxy) awakeLoops() []*eventLoop {
	return p.loops[:max(int(p.balance.active.Load()), 1)]
}

func (b *loopBalancer) run() {
	defer close(b.done)
	t := time.NewTicker(balanceInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			b.mu.Lock()
			b.step(b.sample(now))
			b.mu.Unlock()
		}
	}
}

// sample reads each loop's busy fraction since the last sample into
// b.busy, and returns the host's idle CPUs over the same time (negative
// when they cannot be read).
func (b *loopBalancer) sample(now time.Time) float64 {
	wall := now.Sub(b.lastAt)
	for i, l := range b.p.loops {
		slept := l.load.slept(now)
		if wall > 0 {
			b.busy[i] = min(max(1-float64(slept-b.lastSlept[i])/float64(wall), 0), 1)
		}
		b.lastSlept[i] = slept
	}
	b.lastAt = now
	return b.cpu.idleCPUs()
}

// step decides from the last sample whether to wake a loop or let one
// sleep, and has the sessions moved accordingly.
func (b *loopBalancer) step(spare float64) {
	k := int(b.active.Load())
	switch want := nextActive(b.busy, k, spare); {
	case want > k:
		b.hot++
		b.cool = 0
		if b.hot >= wakeAfter {
			b.setActive(want)
		}
	case want < k:
		b.cool++
		b.hot = 0
		if b.cool >= sleepAfter {
			b.setActive(want)
		}
	default:
		b.hot, b.cool = 0, 0
	}
	b.sweep()
}

// nextActive is the balancer's rule: the number of loops that should be
// awake, given each loop's busy fraction, k loops awake, and spare idle
// CPUs on the host (negative: unknown, taken as enough).
func nextActive(busy []float64, k int, spare float64) int {
	var sum float64
	for _, f := range busy[:k] {
		sum += f
	}
	switch {
	case k < len(busy) && sum >= saturatedBusy*float64(k) && (spare < 0 || spare >= spareCPUForLoop):
		return k + 1
	case k > 1 && sum <= sleepBusy*float64(k-1):
		return k - 1
	}
	return k
}

// setActive wakes or puts to sleep loops until k are awake, one step at a
// time, and moves sessions to match.
func (b *loopBalancer) setActive(k int) {
	b.hot, b.cool = 0, 0
	old := int(b.active.Load())
	loops := b.p.loops
	switch {
	case k == old+1:
		// Each awake loop gives the new one its share.
		b.active.Store(int32(k))
		to := loops[old : old+1]
		for _, l := range loops[:old] {
			l.post(func() { l.moveSome((len(l.sessions)-len(l.leaving))/k, to) })
		}
	case k == old-1:
		b.active.Store(int32(k)) // sweep moves the sleeping loop's sessions
	default:
		return
	}
	b.p.log.Debug("event loops awake", zap.Int("from", old), zap.Int("to", k))
}

// sweep asks every sleeping loop that still holds sessions (a loop just
// put to sleep, or clients dealt to it as it fell asleep) to move them to
// the awake loops.
func (b *loopBalancer) sweep() {
	awake := b.p.awakeLoops()
	for _, l := range b.p.loops[len(awake):] {
		if l.load.sessions.Load() > 0 {
			l.post(func() { l.moveSome(len(l.sessions), awake) })
		}
	}
}

// setAwake sets the number of awake loops at once and moves sessions as
// the balancer would; for tests. The balancer goes on from there.
func (b *loopBalancer) setAwake(k int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for int(b.active.Load()) < k {
		b.setActive(int(b.active.Load()) + 1)
	}
	for int(b.active.Load()) > k {
		b.setActive(int(b.active.Load()) - 1)
	}
	b.sweep()
}

// writeLoopStats writes the event loop lines of "stats": the loops awake,
// the sessions moved between loops, and each loop's clients now
// (event_loop_clients, comma-separated, loop 0 first).
func (p *Proxy) writeLoopStats(w *statWriter) {
	w.int64("event_loops_awake", int64(p.balance.active.Load()))
	w.uint64("event_loop_moves", p.balance.moves.Load())
	var clients []byte
	for i, l := range p.loops {
		if i > 0 {
			clients = append(clients, ',')
		}
		clients = strconv.AppendInt(clients, int64(l.load.sessions.Load()), 10)
	}
	w.str("event_loop_clients", string(clients))
}
