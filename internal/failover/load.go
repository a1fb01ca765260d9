package failover

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mcproxy/mcproxy/internal/mctext"
)

// opKind is the command of a request.
type opKind uint8

const (
	opGet opKind = iota
	opSet
)

func (o opKind) String() string {
	if o == opSet {
		return "set"
	}
	return "get"
}

// outcome is what a request got back.
type outcome uint8

const (
	outHit         outcome = iota // get: the value, written for this key
	outMiss                       // get: END alone
	outStored                     // set: STORED
	outServerError                // SERVER_ERROR in place of the reply
	outClientError                // client side: connect, write or read failed, or timed out
	outBadReply                   // any other reply: wrong value, NOT_STORED, ERROR, a malformed reply
)

func (o outcome) String() string {
	switch o {
	case outHit:
		return "hit"
	case outMiss:
		return "miss"
	case outStored:
		return "stored"
	case outServerError:
		return "SERVER_ERROR"
	case outClientError:
		return "client error"
	default:
		return "bad reply"
	}
}

// sample is one request of the load.
type sample struct {
	start   int64  // ns since the run's base time
	latency int64  // ns, from write (or reconnect) to the end of the reply
	version uint64 // version set, or version read on a hit
	key     int32
	op      opKind
	out     outcome
}

func (s *sample) end() int64 { return s.start + s.latency }

// maxSamples bounds the memory of a run: about 32 bytes a sample.
const maxSamples = 8 << 20

// maxErrorTexts bounds the distinct error texts counted per worker.
const maxErrorTexts = 32

// reconnectPause is the pause after a failed connect, so a refusing proxy
// does not turn the load into a busy loop.
const reconnectPause = 10 * time.Millisecond

// load is the closed-loop client load: Conns connections, each a goroutine
// that writes one command, reads its whole reply, records it, and repeats.
type load struct {
	addr    string
	cfg     *Config
	ks      *keySpace
	base    time.Time
	version *atomic.Uint64 // last version handed to a set
	workers []*loadWorker
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// loadWorker is what one connection recorded.
type loadWorker struct {
	samples    []sample
	dropped    int // samples not kept because of maxSamples
	reconnects int
	serverErrs map[string]int // SERVER_ERROR lines
	clientErrs map[string]int // kinds of client-side errors
	badReplies map[string]int
}

func countText(m map[string]int, s string) {
	if _, ok := m[s]; !ok && len(m) >= maxErrorTexts {
		s = "(other)"
	}
	m[s]++
}

// startLoad dials every connection and starts the load; it runs until stop.
// Sets take their versions from version, which must be shared with anything
// else that sets keys during the run.
func startLoad(ctx context.Context, addr string, cfg *Config, ks *keySpace, base time.Time, version *atomic.Uint64) (*load, error) {
	l := &load{addr: addr, cfg: cfg, ks: ks, base: base, version: version}
	conns := make([]*mctext.Conn, cfg.Conns)
	for i := range conns {
		t, err := mctext.Dial(addr, ioTimeout)
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return nil, err
		}
		conns[i] = t
	}
	ctx, l.cancel = context.WithCancel(ctx)
	perWorker := max(maxSamples/cfg.Conns, 1)
	for i := range conns {
		w := &loadWorker{
			samples:    make([]sample, 0, min(perWorker, 1<<16)),
			serverErrs: map[string]int{},
			clientErrs: map[string]int{},
			badReplies: map[string]int{},
		}
		l.workers = append(l.workers, w)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.run(ctx, w, conns[i], uint64(i), perWorker)
		}()
	}
	return l, nil
}

// stop ends the load and waits for every connection; a request in flight
// finishes or times out first (at most RequestTimeout).
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *load) run(ctx context.Context, w *loadWorker, t *mctext.Conn, id uint64, capSamples int) {
	defer func() {
		if t != nil {
			t.Close()
		}
	}()
	rng := rand.New(rand.NewPCG(l.cfg.Seed, id))
	nkeys := len(l.ks.names)
	var val []byte
	var v mctext.Value
	for ctx.Err() == nil {
		k := rng.IntN(nkeys)
		s := sample{key: int32(k), op: opGet}
		if rng.IntN(100) < l.cfg.SetPercent {
			s.op = opSet
		}
		key := l.ks.names[k]
		start := time.Now()
		s.start = start.Sub(l.base).Nanoseconds()

		var err error
		dialFailed := false
		if t == nil {
			if t, err = mctext.Dial(l.addr, l.cfg.RequestTimeout); err != nil {
				t, dialFailed = nil, true
				s.out = outClientError
				countText(w.clientErrs, "connect: "+errorKind(err))
			} else {
				w.reconnects++
			}
		}
		if t != nil {
			if s.op == opSet {
				s.version = l.version.Add(1)
				val = appendValue(val[:0], key, s.version, l.cfg.ValueSize)
				t.AppendSet(key, val)
			} else {
				t.AppendCommand("get", key)
			}
			if err = t.Flush(start.Add(l.cfg.RequestTimeout)); err == nil {
				if s.op == opSet {
					err = readSet(t, w, &s)
				} else {
					err = readGet(t, w, &s, key, &v)
				}
			}
			if err != nil {
				if errors.Is(err, mctext.ErrProtocol) {
					s.out = outBadReply
					countText(w.badReplies, err.Error())
				} else {
					s.out = outClientError
					countText(w.clientErrs, errorKind(err))
				}
				t.Close()
				t = nil
			}
		}
		s.latency = time.Since(start).Nanoseconds()
		if len(w.samples) < capSamples {
			w.samples = append(w.samples, s)
		} else {
			w.dropped++
		}
		if dialFailed {
			pause(ctx, reconnectPause)
		}
	}
}

// readSet reads the reply to a set into s.
func readSet(t *mctext.Conn, w *loadWorker, s *sample) error {
	line, err := t.ReadStatus()
	switch {
	case err == nil && string(line) == "STORED":
		s.out = outStored
	case err == nil:
		s.out = outBadReply
		countText(w.badReplies, "reply to set: "+string(line))
	default:
		return errorReply(err, t, w, s, "set")
	}
	return nil
}

// readGet reads the reply to a get of key into s.
func readGet(t *mctext.Conn, w *loadWorker, s *sample, key string, v *mctext.Value) error {
	found, err := t.ReadOne([]byte(key), v)
	switch {
	case err != nil:
		return errorReply(err, t, w, s, "get")
	case !found:
		s.out = outMiss
	default:
		version, ok := parseValue([]byte(key), v.Data)
		if !ok {
			s.out = outBadReply
			countText(w.badReplies, "get returned a value not written for its key")
			return nil
		}
		s.out, s.version = outHit, version
	}
	return nil
}

// errorReply records an error line in place of the reply to cmd into s: a
// SERVER_ERROR is the proxy's answer for a failed backend, any other is a
// bad reply. Other errors are returned: the connection is out of step.
func errorReply(err error, t *mctext.Conn, w *loadWorker, s *sample, cmd string) error {
	switch {
	case err == mctext.ErrServerError:
		s.out = outServerError
		countText(w.serverErrs, string(t.LastError()))
	case mctext.IsErrorReply(err):
		s.out = outBadReply
		countText(w.badReplies, "reply to "+cmd+": "+string(t.LastError()))
	default:
		return err
	}
	return nil
}

// errorKind names a client-side error without the addresses in its text,
// so that errors of one kind count together.
func errorKind(err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection closed by the proxy (EOF)"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	default:
		return err.Error()
	}
}

// pause sleeps for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// samples returns every worker's samples in one slice, sorted by nothing in
// particular, and the number dropped.
func (l *load) samples() ([]sample, int) {
	n, dropped := 0, 0
	for _, w := range l.workers {
		n += len(w.samples)
		dropped += w.dropped
	}
	all := make([]sample, 0, n)
	for _, w := range l.workers {
		all = append(all, w.samples...)
	}
	return all, dropped
}
