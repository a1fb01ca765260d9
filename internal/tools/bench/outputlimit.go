package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/mcproxyproc"
	"github.com/mcproxy/mcproxy/internal/tools/textclient"
)

// The output-limit scenario (mcbench -scenario output-limit) measures what
// one client that does not read its replies costs the proxy, and another
// client of the same backend connection, in two measurements (the figures
// the README's "Output limit" section quotes):
//
//   - pipelined: a client pipelines 100k gets of a 500 KB value and reads
//     nothing, for 5 s;
//   - slow reader: a client sends one get of 10000 keys of 100 KB (1 GB)
//     and reads the reply at about 100 MB/s.
//
// Each runs against a fresh mcproxy binary in front of fresh memcached, with
// one connection per backend, so the other client shares it with the
// misbehaving one. The proxy's peak RSS (VmHWM) is reset once the data is
// loaded, so the growth is the misbehaving client's alone.
var outputLimitFull = outputLimitSizes{
	pipelinedGets:  100_000,
	pipelinedValue: 500 << 10,
	pipelinedFor:   5 * time.Second,
	slowKeys:       10_000,
	slowValue:      100 << 10,
	slowRate:       100 << 20,
}

// outputLimitSizes are the sizes of the two measurements: outputLimitFull,
// or a small copy in the scenario's test.
type outputLimitSizes struct {
	pipelinedGets  int           // gets the pipelining client sends
	pipelinedValue int           // bytes of the value it gets
	pipelinedFor   time.Duration // how long the other client runs meanwhile
	slowKeys       int           // keys of the slow reader's get
	slowValue      int           // bytes of each of their values
	slowRate       int           // bytes per second the slow reader reads
}

// setBatch is how many sets go in one round trip while loading: a few MB.
const setBatch = 50

// Bounds of the scenario's exchanges.
const (
	// otherGetBound bounds one get of the other client; a get that takes
	// longer ends its run and counts as this long.
	otherGetBound = 10 * time.Second
	// loadBound bounds one round trip of the loading phase.
	loadBound = 30 * time.Second
	// slowReadBound bounds the slow reader's whole reply (1 GB at 100 MB/s
	// takes about 10 s).
	slowReadBound = 5 * time.Minute
	// dialBound bounds every connect.
	dialBound = time.Second
)

// OutputLimitConfig says which binaries the output-limit scenario runs.
type OutputLimitConfig struct {
	// Mcproxy is the path of the mcproxy binary (make build).
	Mcproxy string
	// Memcached is the memcached binary, a path or a name in PATH.
	Memcached string
	// KeepDir keeps each measurement's temp dir (the proxy's config and log).
	KeepDir bool

	sizes *outputLimitSizes // nil: outputLimitFull
}

// OutputLimitResult is one measurement of the output-limit scenario.
type OutputLimitResult struct {
	// Name says what the misbehaving client did.
	Name string
	// BaseKiB is the proxy's RSS when the misbehaving client started,
	// PeakKiB its peak RSS by the end of the measurement.
	BaseKiB, PeakKiB int64
	// Other is the latency of each get of the other client, in order.
	Other []time.Duration
	// Received and Want are the reply bytes the slow reader received and
	// the size of the whole reply; both 0 in the pipelined measurement.
	Received, Want int
}

// OtherP99 returns the other client's 99th-percentile get (0 without gets).
func (r *OutputLimitResult) OtherP99() time.Duration {
	s := r.sortedOther()
	if len(s) == 0 {
		return 0
	}
	return s[len(s)*99/100]
}

// OtherSlowest returns the other client's slowest get (0 without gets).
func (r *OutputLimitResult) OtherSlowest() time.Duration {
	s := r.sortedOther()
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

func (r *OutputLimitResult) sortedOther() []time.Duration {
	s := append([]time.Duration(nil), r.Other...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

// Complete reports whether the slow reader received its whole reply (true
// for the pipelined measurement, which reads nothing).
func (r *OutputLimitResult) Complete() bool { return r.Received == r.Want }

// WriteText prints the measurement: the proxy's RSS and the other client's
// gets, and for the slow reader how much of its reply it received.
func (r *OutputLimitResult) WriteText(w io.Writer) error {
	_, err := fmt.Fprintf(w, "%s\n  proxy RSS before %d MB, peak %d MB (+%d MB); other client: %d gets, p99 %v, slowest %v\n",
		r.Name, r.BaseKiB>>10, r.PeakKiB>>10, (r.PeakKiB-r.BaseKiB)>>10, len(r.Other),
		r.OtherP99().Round(10*time.Microsecond), r.OtherSlowest().Round(10*time.Microsecond))
	if err == nil && r.Want > 0 {
		_, err = fmt.Fprintf(w, "  the slow client received %d of %d reply bytes\n", r.Received, r.Want)
	}
	return err
}

// RunOutputLimit runs the two measurements of the output-limit scenario,
// each against its own mcproxy and memcached, and returns what it measured
// so far; ctx ends it early.
func RunOutputLimit(ctx context.Context, cfg OutputLimitConfig) ([]OutputLimitResult, error) {
	sz := &outputLimitFull
	if cfg.sizes != nil {
		sz = cfg.sizes
	}
	var results []OutputLimitResult
	for _, m := range []struct {
		backends      int
		memcachedArgs []string
		run           func(context.Context, *mcproxyproc.Cluster, *outputLimitSizes) (OutputLimitResult, error)
	}{
		{1, []string{"-m", "256"}, measurePipelined},
		{3, []string{"-m", "700"}, measureSlowReader},
	} {
		cl, err := mcproxyproc.StartCluster(mcproxyproc.ClusterSpec{
			Mcproxy:       cfg.Mcproxy,
			Memcached:     cfg.Memcached,
			MemcachedArgs: m.memcachedArgs,
			Backends:      m.backends,
			TempPrefix:    "mcbench-output-limit-",
			KeepDir:       cfg.KeepDir,
			Config:        outputLimitProxyConfig,
		})
		if err != nil {
			return results, err
		}
		r, err := m.run(ctx, cl, sz)
		if cerr := cl.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = ctx.Err() // interrupted: the measurement is cut short
		}
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	return results, nil
}

// outputLimitProxyConfig is the proxy's config: one connection per backend,
// so every client shares it with the misbehaving one.
func outputLimitProxyConfig(listen, _ string, backends []string) ([]byte, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\nbackends:\n", listen)
	for _, a := range backends {
		fmt.Fprintf(&b, "  - %s\n", a)
	}
	b.WriteString("backend: {connections: 1, timeout: 5s}\n")
	return []byte(b.String()), nil
}

// measurePipelined: one client pipelines gets of a large value and reads
// nothing while another gets a small value for pipelinedFor.
func measurePipelined(ctx context.Context, cl *mcproxyproc.Cluster, sz *outputLimitSizes) (OutputLimitResult, error) {
	r := OutputLimitResult{Name: fmt.Sprintf("pipelined: %d gets of %d KB, not read", sz.pipelinedGets, sz.pipelinedValue>>10)}
	c, err := setUp(cl, &r, []string{"big"}, sz.pipelinedValue, 'a')
	if err != nil {
		return r, err
	}
	written := make(chan struct{})
	go func() { // blocks once the proxy stops reading; ends when c closes
		defer close(written)
		_ = c.SetWriteDeadline(time.Now().Add(sz.pipelinedFor + loadBound))
		_, _ = c.Write([]byte(strings.Repeat("get big\r\n", sz.pipelinedGets)))
	}()
	stop, cancel := context.WithTimeout(ctx, sz.pipelinedFor)
	defer cancel()
	r.Other, err = otherClient(stop, cl.Proxy.Addr)
	if err == nil {
		r.PeakKiB, err = cl.Proxy.StatusKiB("VmHWM")
	}
	c.Close()
	<-written
	return r, err
}

// measureSlowReader: one client sends one get of slowKeys large values and
// reads the reply at slowRate while another gets a small value.
func measureSlowReader(ctx context.Context, cl *mcproxyproc.Cluster, sz *outputLimitSizes) (OutputLimitResult, error) {
	r := OutputLimitResult{Name: fmt.Sprintf("slow reader: one get of %d × %d KB, read at %d MB/s", sz.slowKeys, sz.slowValue>>10, sz.slowRate>>20)}
	keys := make([]string, sz.slowKeys)
	r.Want = len("END\r\n")
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
		r.Want += len("VALUE  0 \r\n\r\n") + len(keys[i]) + len(strconv.Itoa(sz.slowValue)) + sz.slowValue
	}
	c, err := setUp(cl, &r, keys, sz.slowValue, 'b')
	if err != nil {
		return r, err
	}
	defer c.Close()
	otherCtx, stopOther := context.WithCancel(ctx)
	defer stopOther()
	finished := make(chan struct{})
	var readErr error
	go func() {
		defer close(finished)
		defer stopOther() // the other client runs as long as the slow read
		r.Received, readErr = slowRead(c, "get "+strings.Join(keys, " ")+"\r\n", sz.slowRate)
	}()
	r.Other, err = otherClient(otherCtx, cl.Proxy.Addr)
	if ctx.Err() != nil {
		c.Close() // interrupted: end the slow read too
	}
	<-finished
	if err == nil {
		err = readErr
	}
	if err == nil {
		r.PeakKiB, err = cl.Proxy.StatusKiB("VmHWM")
	}
	return r, err
}

// setUp readies a measurement: it stores keys with values of size bytes of
// fill through the proxy, resets the proxy's peak RSS and records its RSS
// as r's base, and connects the misbehaving client.
func setUp(cl *mcproxyproc.Cluster, r *OutputLimitResult, keys []string, size int, fill byte) (net.Conn, error) {
	addr := cl.Proxy.Addr
	if err := storeValues(addr, keys, size, fill); err != nil {
		return nil, err
	}
	if err := cl.Proxy.ResetPeakRSS(); err != nil {
		return nil, err
	}
	var err error
	if r.BaseKiB, err = cl.Proxy.StatusKiB("VmRSS"); err != nil {
		return nil, err
	}
	c, err := net.DialTimeout("tcp", addr, dialBound)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return c, nil
}

// storeValues sets every key to a value of size bytes of fill, and "small"
// to "x" (what the other client gets), through the proxy at addr. The sets
// go as noreply in batches, each closed by the set of "small", whose
// STORED says the batch is done.
func storeValues(addr string, keys []string, size int, fill byte) error {
	c, err := textclient.Dial(addr, dialBound)
	if err != nil {
		return err
	}
	defer c.Close()
	value := []byte(strings.Repeat(string(fill), size))
	for i, k := range keys {
		c.Buf = fmt.Appendf(c.Buf, "set %s 0 0 %d noreply\r\n", k, size)
		c.Buf = append(append(c.Buf, value...), "\r\n"...)
		if i%setBatch == setBatch-1 || i == len(keys)-1 {
			c.AppendSet("small", []byte("x"))
			if err := c.Flush(time.Now().Add(loadBound)); err != nil {
				return fmt.Errorf("store values: %w", err)
			}
			if err := c.ReadStored(); err != nil {
				return fmt.Errorf("store values: %w", err)
			}
		}
	}
	return nil
}

// otherClient gets "small" through the proxy at addr, one get at a time a
// millisecond apart, until ctx ends, and returns each get's latency. A get
// that fails or has no answer within otherGetBound ends the run and counts
// as otherGetBound.
func otherClient(ctx context.Context, addr string) ([]time.Duration, error) {
	c, err := textclient.Dial(addr, dialBound)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	keys := [][]byte{[]byte("small")}
	var lat []time.Duration
	for ctx.Err() == nil {
		start := time.Now()
		c.AppendCommand("get", "small")
		err := c.Flush(start.Add(otherGetBound))
		if err == nil {
			_, err = c.ReadGet(keys, false)
		}
		if err != nil {
			return append(lat, otherGetBound), nil
		}
		lat = append(lat, time.Since(start))
		time.Sleep(time.Millisecond)
	}
	return lat, nil
}

// slowRead sends cmd on c and reads its reply at about rate bytes/s until
// END, and returns the bytes read. A read error or slowReadBound ends it:
// the reply is then incomplete, which the result shows.
func slowRead(c net.Conn, cmd string, rate int) (int, error) {
	_ = c.SetDeadline(time.Now().Add(slowReadBound))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return 0, fmt.Errorf("slow reader: send: %w", err)
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
			return total, nil // short of END, the reply is incomplete: Complete says so
		}
		if ahead := time.Duration(float64(total)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
}
