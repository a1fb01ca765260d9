package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// flood is a client that writes one command over and over, as fast as
// loopback takes it, and reads and throws away whatever comes back.
type flood struct {
	conn    net.Conn
	written atomic.Int64
	wg      sync.WaitGroup
}

// startFlood starts a flood of unit on a new connection to addr and waits
// until a megabyte of it has gone out. The test's cleanup stops it.
// The commands go out with sendfile(2) from a file of them, so that the
// kernel keeps the proxy's socket full without a copy through this process.
func startFlood(t *testing.T, addr, unit string) *flood {
	t.Helper()
	f := &flood{conn: memcachedtest.Dial(t, addr)}
	file, err := os.Create(filepath.Join(t.TempDir(), "flood"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { file.Close() })
	// written grows by whole passes over the file: keep it short.
	if _, err := file.Write(bytes.Repeat([]byte(unit), floodFile/len(unit))); err != nil {
		t.Fatal(err)
	}
	tcp := f.conn.(*net.TCPConn)
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		for {
			if _, err := file.Seek(0, io.SeekStart); err != nil {
				return
			}
			n, err := tcp.ReadFrom(file) // sendfile
			f.written.Add(n)
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer f.wg.Done()
		buf := make([]byte, 256<<10)
		for {
			if _, err := f.conn.Read(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(f.stop)
	f.waitPass(t)
	return f
}

// floodFile is the size of the file a flood sends over and over.
const floodFile = 1 << 20

// waitPass waits until the flood has sent its file once more: it is still
// going on, and being read.
func (f *flood) waitPass(t *testing.T) {
	t.Helper()
	from := f.written.Load()
	memcachedtest.WaitFor(t, "the flood to go on", func() bool { return f.written.Load() > from })
}

func (f *flood) stop() {
	f.conn.Close()
	f.wg.Wait()
}

// steady keeps a test's backends in the ring and its requests from timing
// out on a loaded machine: a flood starves the health probes, and an
// ejected backend is flushed when it comes back, which would turn a
// neighbour's hit or the counter into a miss.
func steady(o *Options) {
	o.Health.AlwaysUp = true
	o.Timeout = memcachedtest.WaitBound
}

// neighbourTrips has each of n clients make rounds round trips of cmd (whose
// reply is want) at once, and returns the slowest. A round trip that gets
// no answer within memcachedtest's bound fails the test.
func neighbourTrips(t *testing.T, addr string, n, rounds int, cmd, want string) time.Duration {
	t.Helper()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = memcachedtest.Dial(t, addr)
	}
	var slowest atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			_ = c.SetDeadline(time.Now().Add(memcachedtest.WaitBound))
			for i := 0; i < rounds; i++ {
				start := time.Now()
				if _, err := c.Write([]byte(cmd)); err != nil {
					errs <- err.Error()
					return
				}
				var got []byte
				for len(got) < len(want) {
					k, err := c.Read(buf)
					got = append(got, buf[:k]...)
					if err != nil {
						errs <- fmt.Sprintf("round trip %d: read %q then %v", i, got, err)
						return
					}
				}
				if string(got) != want {
					errs <- fmt.Sprintf("round trip %d: %q, want %q", i, got, want)
					return
				}
				if d := int64(time.Since(start)); d > slowest.Load() {
					slowest.Store(d) // a race between clients only loses a near tie
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	return time.Duration(slowest.Load())
}

// TestFloodDoesNotStallLoop: one client floods commands at loopback speed
// while eight others of the same event loop make round trips. Without a
// turn budget the flooder keeps the loop to itself for as long as it writes
// and the others get no answer at all; with it, every round trip is
// answered while the flood goes on, and the yields are counted.
func TestFloodDoesNotStallLoop(t *testing.T) {
	for _, tc := range []struct{ name, unit string }{
		{"verbosity noreply", "verbosity 1 noreply\r\n"},
		{"version", "version\r\n"},
		{"mn", "mn\r\n"},
		{"pipelined gets", "get flood\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := startProxy(t, 2, func(o *Options) { o.EventLoops = 1; steady(o) })
			key := "neighbour"
			memcachedtest.Send(t, tp.addr, "set "+key+" 0 0 1\r\nv\r\n", "STORED\r\n", 1)

			f := startFlood(t, tp.addr, tc.unit)
			slowest := neighbourTrips(t, tp.addr, 8, 20, "get "+key+"\r\nversion\r\n",
				"VALUE "+key+" 0 1\r\nv\r\nEND\r\n"+tp.versionLine+"\r\n")
			// The flood was not over: the answers came while it went on.
			f.waitPass(t)
			t.Logf("slowest of 8×20 round trips during a %s flood: %v", tc.name, slowest)

			if n := memcachedtest.Stat(t, tp.addr, "conn_yields"); n == 0 {
				t.Fatal("conn_yields = 0 after a flood")
			}
		})
	}
}

// TestFloodKeepsBackendTimeouts: a request to a frozen backend times out
// as usual while another client of the same loop floods it. The loop's
// deadlines are checked every turn, so they need turns to end.
func TestFloodKeepsBackendTimeouts(t *testing.T) {
	tp := startProxy(t, 2, func(o *Options) {
		o.EventLoops = 1
		o.Health.AlwaysUp = true
		o.Timeout = 200 * time.Millisecond
	})
	victim := tp.backends[0]
	frozen := keyOn(t, tp, victim.Addr, "frozen")
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, "set "+frozen+" 0 0 1\r\nx\r\n", "STORED\r\n", 1)
	if err := victim.Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Thaw() })

	f := startFlood(t, tp.addr, "version\r\n")
	start := time.Now()
	if got := memcachedtest.RoundTrip(t, c, "get "+frozen+"\r\n", "END\r\n", 1); got != "END\r\n" {
		t.Fatalf("get on a frozen backend during a flood: %q, want a miss", got)
	}
	took := time.Since(start)
	f.waitPass(t)
	if n := memcachedtest.Stat(t, tp.addr, "backend_timeouts"); n == 0 {
		t.Fatal("the miss was not a counted timeout")
	}
	t.Logf("get on a frozen backend during a flood answered after %v (timeout 200ms)", took)
}

// TestTurnBudgetInterleavesClients shows a turn's bound in the order a
// backend sees commands. With the loop held, client A writes increments
// and then client B a get of the counter; let go, the loop finds both
// readable, A first. A runs its budget and yields, and B's get goes out in
// the same write to the backend as A's first increments, so it sees at most
// the budget's worth of them, not all. Once A's commands are read, no
// readiness event comes for those still buffered: the loop must resume A by
// itself, and every increment lands.
func TestTurnBudgetInterleavesClients(t *testing.T) {
	const incr = "incr ctr 1 noreply\r\n"
	for _, tc := range []struct {
		name        string
		reqs, bytes int
		incrs       int
		seenAtMost  int
	}{
		// 500 increments are 10 KB, one read's worth: all are read at once.
		{"reqs_per_event", DefaultReqsPerEvent, DefaultReadBytesPerEvent, 500, DefaultReqsPerEvent},
		// 2000 are 40 KB, more than the 16 KB A may read in a turn.
		{"read_bytes_per_event", MaxReqsPerEvent, MinReadBytesPerEvent, 2000, MinReadBytesPerEvent / len(incr)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := startProxy(t, 1, func(o *Options) {
				o.EventLoops = 1
				steady(o)
				o.ReqsPerEvent, o.ReadBytesPerEvent = tc.reqs, tc.bytes
			})
			a, b := memcachedtest.Dial(t, tp.addr), memcachedtest.Dial(t, tp.addr)
			memcachedtest.RoundTrip(t, a, "set ctr 0 0 1\r\n0\r\n", "STORED\r\n", 1)
			memcachedtest.RoundTrip(t, b, "version\r\n", "\r\n", 1)

			entered, release := make(chan struct{}), make(chan struct{})
			if !tp.loops[0].post(func() { close(entered); <-release }) {
				t.Fatal("loop stopped")
			}
			<-entered
			_, errA := a.Write(bytes.Repeat([]byte(incr), tc.incrs))
			_, errB := b.Write([]byte("get ctr\r\n"))
			close(release)
			if errA != nil || errB != nil {
				t.Fatal(errA, errB)
			}

			seen := counterValue(t, memcachedtest.RoundTrip(t, b, "", "END\r\n", 1))
			t.Logf("B's get saw %d of A's %d increments", seen, tc.incrs)
			if seen > tc.seenAtMost {
				t.Fatalf("B's get saw %d increments, want at most %d: A ran past its budget", seen, tc.seenAtMost)
			}
			memcachedtest.WaitFor(t, "every increment to land", func() bool {
				return counterValue(t, memcachedtest.RoundTrip(t, b, "get ctr\r\n", "END\r\n", 1)) == tc.incrs
			})
		})
	}
}

// counterValue reads the number out of the reply to "get ctr".
func counterValue(t *testing.T, reply string) int {
	t.Helper()
	var size, n int
	if _, err := fmt.Sscanf(reply, "VALUE ctr 0 %d\r\n%d\r\nEND\r\n", &size, &n); err != nil {
		t.Fatalf("get ctr: %q: %v", reply, err)
	}
	return n
}

// TestYieldedSessionIsNotQuiet: a session that yielded still has commands
// read and not run, so neither a drain's quiet period nor the idle timeout
// may stop it, however long ago their bytes came. The check runs with the
// clock an hour ahead, on the loop, right after the session yielded; every
// command must still run.
func TestYieldedSessionIsNotQuiet(t *testing.T) {
	const incrs = 500
	tp := startProxy(t, 1, func(o *Options) {
		o.EventLoops = 1
		steady(o)
		o.ReqsPerEvent = 1
		o.ClientIdleTimeout = time.Minute
	})
	c := memcachedtest.Dial(t, tp.addr)
	memcachedtest.RoundTrip(t, c, "set ctr 0 0 1\r\n0\r\n", "STORED\r\n", 1)

	l := tp.loops[0]
	entered, release := make(chan struct{}), make(chan struct{})
	if !l.post(func() { close(entered); <-release }) {
		t.Fatal("loop stopped")
	}
	<-entered
	// Posted while the loop is held, this runs in its next turn, after
	// that turn's events: the client's commands have been read, one has
	// run, and the session has yielded.
	checked := make(chan string, 1)
	l.post(func() {
		for s := range l.sessions {
			if !s.yielded {
				checked <- "the session did not yield"
				return
			}
			s.checkDeadlines(l.now.Add(time.Hour)) // idle for an hour
			s.drain()
			s.checkDeadlines(l.now.Add(time.Hour)) // quiet for an hour
			if !s.reading() {
				checked <- "the session was stopped with commands still to run"
				return
			}
		}
		checked <- ""
	})
	_, err := c.Write(bytes.Repeat([]byte("incr ctr 1 noreply\r\n"), incrs))
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	if msg := <-checked; msg != "" {
		t.Fatal(msg)
	}
	// The drain ends the session once its commands have run and it has
	// been quiet: the client reads EOF.
	_ = c.SetReadDeadline(time.Now().Add(memcachedtest.WaitBound))
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("after the drain: read %q, %v; want EOF", b, err)
	}
	got := memcachedtest.Send(t, tp.backends[0].Addr, "get ctr\r\n", "END\r\n", 1)
	if n := counterValue(t, got); n != incrs {
		t.Fatalf("%d of %d increments ran", n, incrs)
	}
}
