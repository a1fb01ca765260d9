package failover

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/loadgen"
	"github.com/mcproxy/mcproxy/internal/tools/textclient"
)

// opKind is the command of a request.
type opKind uint8

const (
	opGet opKind = iota
	opSet
)

var opNames = [...]string{opGet: "get", opSet: "set"}

func (o opKind) String() string { return opNames[o] }

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

// outcomeNames name the outcomes in the report.
var outcomeNames = [...]string{
	outHit: "hit", outMiss: "miss", outStored: "stored", outServerError: "SERVER_ERROR",
	outClientError: "client error", outBadReply: "bad reply",
}

func (o outcome) String() string { return outcomeNames[o] }

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

// reconnectPause bounds the pause after a failed connect (loadgen's
// backoff), so a refusing proxy does not turn the load into a busy loop.
const reconnectPause = 10 * time.Millisecond

// load is the closed-loop client load: Conns connections, each a goroutine
// driving a loadgen.Worker that writes one command, reads its whole reply,
// records it, and repeats.
type load struct {
	addr    string
	cfg     *Config
	base    time.Time
	spec    loadgen.Spec
	workers []*loadWorker
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// loadWorker is what one connection recorded.
type loadWorker struct {
	lw         *loadgen.Worker
	base       time.Time
	start      time.Time // of the request being recorded
	capSamples int
	samples    []sample
	dropped    int // samples not kept because of maxSamples
	reconnects int
	serverErrs map[string]int // SERVER_ERROR lines
	clientErrs map[string]int // kinds of client-side errors
	badReplies map[string]int
	record     func(*loadgen.Reply) // w.recordReply, made once
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
	l := &load{addr: addr, cfg: cfg, base: base, spec: loadgen.Spec{
		Keys: len(ks.names), KeyPrefix: keyPrefix, ValueSize: cfg.ValueSize,
		GetWeight: 100 - cfg.SetPercent, SetWeight: cfg.SetPercent, MultiGet: 1,
		Timeout: cfg.RequestTimeout, Seed: cfg.Seed, Versions: version,
	}}
	perWorker := max(maxSamples/cfg.Conns, 1)
	for i := 0; i < cfg.Conns; i++ {
		w := &loadWorker{
			lw:         loadgen.NewWorker(&l.spec, addr, i, 1),
			base:       base,
			capSamples: perWorker,
			samples:    make([]sample, 0, min(perWorker, 1<<16)),
			serverErrs: map[string]int{},
			clientErrs: map[string]int{},
			badReplies: map[string]int{},
		}
		w.record = w.recordReply
		if err := w.lw.Connect(ctx, time.Now()); err != nil {
			for _, o := range l.workers {
				o.lw.Close()
			}
			return nil, err
		}
		l.workers = append(l.workers, w)
	}
	ctx, l.cancel = context.WithCancel(ctx)
	for _, w := range l.workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			w.run(ctx)
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

func (w *loadWorker) run(ctx context.Context) {
	defer w.lw.Close()
	for ctx.Err() == nil {
		// A request's latency counts from before a reconnect, which the
		// client would have waited for too.
		w.start = time.Now()
		if !w.lw.Connected() {
			if err := w.lw.Connect(ctx, w.start.Add(reconnectPause)); err != nil {
				// Recorded as a failed get of key 0: no command was chosen.
				countText(w.clientErrs, "connect: "+errorKind(err))
				w.add(sample{op: opGet, out: outClientError})
				continue
			}
			w.reconnects++
		}
		w.lw.Begin()
		w.lw.AddRandom(1)
		w.lw.Exchange(w.record)
	}
}

// recordReply records the reply to one request.
func (w *loadWorker) recordReply(r *loadgen.Reply) {
	s := sample{key: int32(r.Key), op: opGet, version: r.Version}
	if r.Set {
		s.op = opSet
	}
	switch r.Outcome {
	case loadgen.OK:
		switch {
		case r.Set:
			s.out = outStored
		case r.Hits > 0:
			s.out = outHit
		default:
			s.out = outMiss
		}
	case loadgen.BadValue:
		s.out = outBadReply
		countText(w.badReplies, "get returned a value not written for its key")
	case loadgen.ErrorReply:
		if r.Err == textclient.ErrServerError {
			s.out = outServerError
			countText(w.serverErrs, string(r.Line))
		} else {
			s.out = outBadReply
			countText(w.badReplies, "reply to "+s.op.String()+": "+string(r.Line))
		}
	case loadgen.Protocol:
		s.out = outBadReply
		countText(w.badReplies, r.Err.Error())
	default:
		s.out = outClientError
		countText(w.clientErrs, errorKind(r.Err))
	}
	w.add(s)
}

// add keeps s, stamped with the request's start and latency, unless the
// worker's share of maxSamples is full.
func (w *loadWorker) add(s sample) {
	s.start = w.start.Sub(w.base).Nanoseconds()
	s.latency = time.Since(w.start).Nanoseconds()
	if len(w.samples) < w.capSamples {
		w.samples = append(w.samples, s)
	} else {
		w.dropped++
	}
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
