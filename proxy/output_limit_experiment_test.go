package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// TestOutputLimitExperiment measures the proxy's peak RSS, and the latency
// of another client of the same backend connection, while one client
// misbehaves (issue 8, item 4):
//
//	A: one client pipelines 100k gets of a 500 KB value and reads nothing;
//	B: one client sends one get of 10000 keys of 100 KB (1 GB) and reads
//	   it slowly (about 100 MB/s).
//
// The proxy is bin/mcproxy run as a child (MCPROXY_BIN, else built from
// ../cmd/mcproxy), so its /proc/PID/status VmHWM is the proxy's alone; the
// peak is reset (clear_refs 5) after the data is loaded. It is an
// experiment, not a pass/fail test:
//
//	MCPROXY_OUTPUT_EXPERIMENT=1 go test -run TestOutputLimitExperiment -v -timeout 20m ./proxy/
func TestOutputLimitExperiment(t *testing.T) {
	if os.Getenv("MCPROXY_OUTPUT_EXPERIMENT") == "" {
		t.Skip("set MCPROXY_OUTPUT_EXPERIMENT=1 to run")
	}
	bin := os.Getenv("MCPROXY_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "mcproxy")
		out, err := exec.Command("go", "build", "-o", bin, "../cmd/mcproxy").CombinedOutput()
		if err != nil {
			t.Fatalf("build mcproxy: %v\n%s", err, out)
		}
	}
	t.Run("A pipelined gets of 500 KB, no reading", func(t *testing.T) {
		be := memcachedtest.Start(t, "-m", "256")
		px := startChild(t, bin, be.Addr)
		value := strings.Repeat("a", 500<<10)
		c := memcachedtest.Dial(t, px.addr)
		memcachedtest.RoundTrip(t, c, fmt.Sprintf("set big 0 0 %d\r\n%s\r\nset small 0 0 1\r\nx\r\n", len(value), value), "STORED\r\nSTORED\r\n", 1)
		px.resetPeak(t)
		base := px.rss(t)
		go func() { // blocks once the proxy stops reading; ends when c closes
			_, _ = c.Write([]byte(strings.Repeat("get big\r\n", 100000)))
		}()
		lat := otherClient(t, px.addr, "small", 5*time.Second)
		px.report(t, base, lat)
		c.Close()
	})
	t.Run("B one get of 10000 keys of 100 KB, read slowly", func(t *testing.T) {
		var addrs []string
		for i := 0; i < 3; i++ {
			addrs = append(addrs, memcachedtest.Start(t, "-m", "700").Addr)
		}
		px := startChild(t, bin, addrs...)
		value := strings.Repeat("b", 100<<10)
		c := memcachedtest.Dial(t, px.addr)
		keys := make([]string, 10000)
		var set bytes.Buffer
		for i := range keys {
			keys[i] = "k" + strconv.Itoa(i)
			fmt.Fprintf(&set, "set %s 0 0 %d noreply\r\n%s\r\n", keys[i], len(value), value)
			if i%50 == 49 || i == len(keys)-1 { // a few MB per round trip
				set.WriteString("set small 0 0 1\r\nx\r\n")
				memcachedtest.RoundTrip(t, c, set.String(), "STORED\r\n", 1)
				set.Reset()
			}
		}
		px.resetPeak(t)
		base := px.rss(t)
		want := len(keys)*(len("VALUE  0 102400\r\n\r\n")+len(value)) + len("END\r\n")
		for _, k := range keys {
			want += len(k)
		}
		got := make(chan int, 1)
		go func() { got <- slowRead(c, "get "+strings.Join(keys, " ")+"\r\n", 100<<20) }()
		lat := otherClient(t, px.addr, "small", 0, got)
		n := <-got
		px.report(t, base, lat)
		t.Logf("the slow client received %d of %d reply bytes", n, want)
	})
}

// child is a running bin/mcproxy.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(t *testing.T, bin string, backends ...string) *child {
	t.Helper()
	port, err := memcachedtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cfg := "listen: " + addr + "\nbackends:\n"
	for _, b := range backends {
		cfg += "  - " + b + "\n"
	}
	// One connection per backend: every client shares it with the slow one.
	cfg += "backend: {connections: 1, timeout: 5s}\n"
	path := filepath.Join(t.TempDir(), "mcproxy.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", path)
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mcproxy not listening on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &child{cmd: cmd, addr: addr}
}

func (c *child) status(t *testing.T, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(c.cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc status", field)
	return 0
}

func (c *child) rss(t *testing.T) int64 { return c.status(t, "VmRSS") }

// resetPeak makes VmHWM start again from the current RSS.
func (c *child) resetPeak(t *testing.T) {
	if err := os.WriteFile("/proc/"+strconv.Itoa(c.cmd.Process.Pid)+"/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset peak RSS: %v", err)
	}
}

func (c *child) report(t *testing.T, base int64, lat []time.Duration) {
	peak := c.status(t, "VmHWM")
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	var p99, worst time.Duration
	if len(lat) > 0 {
		p99, worst = lat[len(lat)*99/100], lat[len(lat)-1]
	}
	t.Logf("proxy RSS before %d MB, peak %d MB (+%d MB); other client: %d gets, p99 %v, slowest %v",
		base>>20, peak>>20, (peak-base)>>20, len(lat), p99, worst)
}

// otherClient makes gets of key, one at a time, for d or until done
// delivers (which it passes back), and returns each one's latency. A get
// that fails or gets no answer within 10 s counts as 10 s.
func otherClient(t *testing.T, addr, key string, d time.Duration, done ...chan int) []time.Duration {
	c := memcachedtest.Dial(t, addr)
	br := bufio.NewReader(c)
	var lat []time.Duration
	end := time.Now().Add(d)
	for {
		if d > 0 && time.Now().After(end) {
			return lat
		}
		if len(done) > 0 {
			select {
			case n := <-done[0]:
				done[0] <- n
				return lat
			default:
			}
		}
		start := time.Now()
		_ = c.SetDeadline(start.Add(10 * time.Second))
		ok := false
		if _, err := c.Write([]byte("get " + key + "\r\n")); err == nil {
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					break
				}
				if line == "END\r\n" {
					ok = true
					break
				}
			}
		}
		if !ok {
			lat = append(lat, 10*time.Second)
			return lat
		}
		lat = append(lat, time.Since(start))
		time.Sleep(time.Millisecond)
	}
}

// slowRead sends cmd and reads its reply at about rate bytes/s until END
// or an error, and returns the bytes read.
func slowRead(c net.Conn, cmd string, rate int) int {
	_ = c.SetDeadline(time.Now().Add(5 * time.Minute))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return 0
	}
	buf := make([]byte, 64<<10)
	total := 0
	start := time.Now()
	var tail []byte
	for {
		n, err := c.Read(buf)
		total += n
		tail = append(tail, buf[:n]...)
		if len(tail) > 16 {
			tail = tail[len(tail)-16:]
		}
		if err != nil || bytes.HasSuffix(tail, []byte("\r\nEND\r\n")) {
			return total
		}
		if ahead := time.Duration(float64(total)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
}
