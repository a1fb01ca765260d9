package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// TestNextActive: the balancer's rule. A loop wakes only when the awake
// ones are saturated and an idle CPU is there to run it; the last loop
// sleeps when the others can carry its load with room to spare.
func TestNextActive(t *testing.T) {
	for _, c := range []struct {
		name  string
		busy  []float64
		k     int
		spare float64
		want  int
	}{
		{"idle stays at one", []float64{0.1, 0, 0}, 1, 2, 1},
		{"saturated with an idle CPU wakes one", []float64{0.95, 0, 0}, 1, 1.2, 2},
		{"saturated with half a CPU idle stays", []float64{0.95, 0, 0}, 1, 0.5, 1},
		{"saturated without an idle CPU stays", []float64{0.95, 0, 0}, 1, 0.1, 1},
		{"saturated, idle CPUs unknown, wakes one", []float64{0.95, 0, 0}, 1, -1, 2},
		{"all loops awake stays", []float64{0.99, 0.99}, 2, 2, 2},
		{"two half-busy loops stay", []float64{0.6, 0.5, 0}, 2, 1, 2},
		{"two quiet loops let one sleep", []float64{0.2, 0.25, 0}, 2, 1, 1},
		{"average saturated wakes the third", []float64{0.9, 0.85, 0}, 2, 1, 3},
		{"one hot, one cold: the average decides", []float64{1, 0.3, 0}, 2, 1, 2},
	} {
		if got := nextActive(c.busy, c.k, c.spare); got != c.want {
			t.Errorf("%s: nextActive(%v, %d, %v) = %d, want %d", c.name, c.busy, c.k, c.spare, got, c.want)
		}
	}
}

// TestCPULines: /proc/stat's per-CPU lines are read, the sum line is not.
func TestCPULines(t *testing.T) {
	if _, ok := cpuNumber([]byte("cpu  10 0 10 80 0 0 0 0 0 0")); ok {
		t.Error(`"cpu " (the sum) was taken for a CPU`)
	}
	n, ok := cpuNumber([]byte("cpu12 10 0 10 80 0 0 0 0 0 0"))
	if !ok || n != 12 {
		t.Errorf("cpuNumber(cpu12) = %d, %v", n, ok)
	}
	idle, total := cpuJiffies([]byte("cpu1 10 1 9 70 5 2 3 0 7 0"))
	if idle != 75 || total != 100 {
		t.Errorf("cpuJiffies = idle %d total %d, want 75 and 100 (guest time is in user already)", idle, total)
	}
	var h hostCPU
	h.init()
	if h.idleCPUs(); h.cpus < 1 {
		t.Errorf("read %d CPUs from /proc/stat", h.cpus)
	}
}

// adaptive makes the proxy start loops loops with the balancer on, as
// event_loops: 0 does with one loop per CPU.
func adaptive(loops int) func(*Options) {
	return func(o *Options) {
		o.EventLoops = loops
		o.adaptiveLoops = true
	}
}

// TestLoopsSpreadAndGather: clients move between loops while they send
// commands, and every reply reaches its client in order. The balancer's
// own steps are stopped, so that the test decides when loops wake and
// sleep; where clients are is read from stats (event_loop_clients).
func TestLoopsSpreadAndGather(t *testing.T) {
	tp := startProxy(t, 3, adaptive(3))
	tp.stopBalancer()
	st := dialLoopStats(t, tp.addr) // a client too: 13 in all
	load := startOrderedClients(t, tp.addr, 12)
	st.wait(t, "start", "event_loop_clients", "13,0,0")
	st.wait(t, "start", "event_loops_awake", "1")
	load.waitRounds(t, "on one loop", 50)

	// Loop 0 gives loop 1 half of its 13, then loops 0 and 1 each give
	// loop 2 a third of theirs.
	tp.balance.setAwake(2)
	st.wait(t, "two awake", "event_loop_clients", "7,6,0")
	load.waitRounds(t, "on two loops", 50)
	tp.balance.setAwake(3)
	st.wait(t, "three awake", "event_loop_clients", "5,4,4")
	st.wait(t, "three awake", "event_loops_awake", "3")
	load.waitRounds(t, "on three loops", 50)

	tp.balance.setAwake(1)
	st.wait(t, "one awake", "event_loop_clients", "13,0,0")
	load.waitRounds(t, "back on one loop", 50)
	load.stop(t)
	// 6 and 2+2 out, 4+4 back.
	st.wait(t, "end", "event_loop_moves", "18")
}

// TestIdleLoopsSleep: with the balancer running, a loop woken without the
// load to keep it busy goes back to sleep, its clients gather on the first
// loop, and new clients go there too.
func TestIdleLoopsSleep(t *testing.T) {
	tp := startProxy(t, 2, adaptive(2))
	st := dialLoopStats(t, tp.addr)
	load := startOrderedClients(t, tp.addr, 4)
	st.wait(t, "start", "event_loop_clients", "5,0")
	tp.balance.setAwake(2)
	load.waitRounds(t, "two awake", 20)
	load.stop(t)
	st.wait(t, "idle", "event_loops_awake", "1")
	st.wait(t, "idle", "event_loop_clients", "1,0")
	more := startOrderedClients(t, tp.addr, 3)
	st.wait(t, "new clients", "event_loop_clients", "4,0")
	more.waitRounds(t, "new clients", 20)
	more.stop(t)
	if n, _ := strconv.Atoi(st.get(t)["event_loop_moves"]); n < 2 {
		t.Errorf("event_loop_moves = %d, want at least 2 (out to loop 1)", n)
	}
}

// TestSaturatedLoopWakesAnother: the balancer's steps, fed a saturated
// first loop (its own sampling stopped), wake the second loop only when a
// CPU is idle for it and only after wakeAfter intervals in a row; the
// clients then spread, and stats say so.
func TestSaturatedLoopWakesAnother(t *testing.T) {
	tp := startProxy(t, 1, adaptive(2))
	tp.stopBalancer()
	st := dialLoopStats(t, tp.addr)
	load := startOrderedClients(t, tp.addr, 5)
	st.wait(t, "start", "event_loop_clients", "6,0")
	b := &tp.balance
	step := func(busy, spare float64) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.busy[0], b.busy[1] = busy, 0
		b.step(spare)
	}
	for range 2 * wakeAfter {
		step(0.95, 0.2) // saturated, but no CPU idle to run another loop
	}
	for range wakeAfter - 1 {
		step(0.95, 1.5)
	}
	if n := b.active.Load(); n != 1 {
		t.Fatalf("%d loops awake before the saturation lasted %d intervals", n, wakeAfter)
	}
	step(0.95, 1.5)
	st.wait(t, "woken", "event_loops_awake", "2")
	st.wait(t, "woken", "event_loop_clients", "3,3")
	load.waitRounds(t, "spread", 20)
	load.stop(t)
}

// TestFixedLoopsStayAwake: with event_loops set, every loop serves from
// the start, clients are dealt round robin over all of them, and the
// balancer does not run.
func TestFixedLoopsStayAwake(t *testing.T) {
	tp := startProxy(t, 1, func(o *Options) { o.EventLoops = 2 })
	if tp.balance.stop != nil {
		t.Error("the balancer runs with event_loops set")
	}
	st := dialLoopStats(t, tp.addr)
	st.wait(t, "start", "event_loop_clients", "0,1")
	load := startOrderedClients(t, tp.addr, 5)
	st.wait(t, "start", "event_loop_clients", "3,3")
	st.wait(t, "start", "event_loops_awake", "2")
	load.waitRounds(t, "two loops", 20)
	load.stop(t)
}

// loopStats asks "stats" on one connection of its own, which stays where
// the balancer puts it like any client.
type loopStats struct{ c net.Conn }

func dialLoopStats(t *testing.T, addr string) *loopStats {
	t.Helper()
	c := memcachedtest.Dial(t, addr)
	t.Cleanup(func() { c.Close() })
	return &loopStats{c: c}
}

func (s *loopStats) get(t *testing.T) map[string]string {
	t.Helper()
	return memcachedtest.ParseStats(memcachedtest.RoundTrip(t, s.c, "stats\r\n", "END\r\n", 1))
}

// wait polls the stat name until it is want; step names the moment.
func (s *loopStats) wait(t *testing.T, step, name, want string) {
	t.Helper()
	deadline := time.Now().Add(memcachedtest.WaitBound)
	for {
		got := s.get(t)[name]
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: gave up after %v waiting for stat %s to be %q: it is %q",
				step, memcachedtest.WaitBound, name, want, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// orderedClients are clients that each write a new value of their own key
// and read it back many times, in two writes without waiting between them: a
// client's commands must be answered in order, with its own last write,
// wherever its session moves meanwhile. Each stops by itself after
// orderedRounds rounds.
type orderedClients struct {
	quit   chan struct{}
	wg     sync.WaitGroup
	rounds atomic.Int64
	mu     sync.Mutex
	err    error
}

const (
	orderedRounds = 200000
	orderedBurst  = DefaultReqsPerEvent + 10
)

func startOrderedClients(t *testing.T, addr string, n int) *orderedClients {
	t.Helper()
	o := &orderedClients{quit: make(chan struct{})}
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = memcachedtest.Dial(t, addr)
	}
	for i, c := range conns {
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			defer c.Close()
			if err := o.run(c, i); err != nil {
				o.fail(err)
			}
		}()
	}
	t.Cleanup(func() { o.stop(t) })
	return o
}

func (o *orderedClients) fail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		o.err = err
	}
}

func (o *orderedClients) run(c net.Conn, id int) error {
	r := bufio.NewReader(c)
	key := "order:" + strconv.Itoa(id)
	for round := 0; round < orderedRounds; round++ {
		select {
		case <-o.quit:
			return nil
		default:
		}
		_ = c.SetDeadline(time.Now().Add(memcachedtest.WaitBound))
		val := strconv.Itoa(round)
		// More gets than a turn runs (limits.reqs_per_event): the session
		// yields with commands read and not parsed, which a move must
		// carry to the new loop.
		get := fmt.Sprintf("get %s\r\n", key)
		burst := fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, len(val), val) + strings.Repeat(get, orderedBurst)
		if _, err := io.WriteString(c, burst); err != nil {
			return fmt.Errorf("client %d: write: %w", id, err)
		}
		if _, err := io.WriteString(c, get); err != nil {
			return fmt.Errorf("client %d: write: %w", id, err)
		}
		want := "STORED\r\n" + strings.Repeat(fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", key, len(val), val), orderedBurst+1)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(r, got); err != nil {
			return fmt.Errorf("client %d round %d: read: %w", id, round, err)
		}
		if string(got) != want {
			return fmt.Errorf("client %d round %d: got %q, want %q", id, round, got, want)
		}
		o.rounds.Add(1)
	}
	return nil
}

// waitRounds waits for n more rounds of the clients and fails the test if
// any client saw a wrong reply.
func (o *orderedClients) waitRounds(t *testing.T, step string, n int64) {
	t.Helper()
	start := o.rounds.Load()
	memcachedtest.WaitFor(t, fmt.Sprintf("%d more rounds (%s)", n, step), func() bool {
		return o.rounds.Load() >= start+n || o.firstErr() != nil
	})
	if err := o.firstErr(); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

func (o *orderedClients) firstErr() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// stop ends the clients and fails the test if any saw a wrong reply.
func (o *orderedClients) stop(t *testing.T) {
	t.Helper()
	select {
	case <-o.quit:
		return
	default:
	}
	close(o.quit)
	o.wg.Wait()
	if err := o.firstErr(); err != nil {
		t.Fatal(err)
	}
}
