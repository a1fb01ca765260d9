package soak

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/textclient"
)

// Bounds on the workload's loops: every connection stops at the end time or
// after maxBatches batches, and gives up redialing after maxDials attempts.
const (
	maxBatches = 50_000_000
	maxDials   = 100_000
	redialWait = 50 * time.Millisecond
	maxCasKeep = 32
)

// WorkloadConfig shapes the traffic.
type WorkloadConfig struct {
	Conns        int           // client connections
	Pipeline     int           // commands per write
	MultiGet     int           // most keys in one get or gets
	RegisterKeys int           // keys written by set, cas and delete
	CounterKeys  int           // keys created by add and bumped by incr
	ValueSize    int           // bytes of a register value
	ReplyTimeout time.Duration // bound on one batch's replies
	DialTimeout  time.Duration // bound on one dial of the proxy
}

// RegisterFlags registers mcsoak's flags of the workload on fs: they set
// w's fields and default to their current values.
func (w *WorkloadConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&w.Conns, "conns", w.Conns, "client connections")
	fs.IntVar(&w.Pipeline, "pipeline", w.Pipeline, "commands per write")
	fs.IntVar(&w.MultiGet, "multiget", w.MultiGet, "most keys in one get or gets")
	fs.IntVar(&w.RegisterKeys, "keys", w.RegisterKeys, "keys written by set, cas and delete")
	fs.IntVar(&w.CounterKeys, "counters", w.CounterKeys, "counter keys (add and incr)")
	fs.IntVar(&w.ValueSize, "value-size", w.ValueSize, "bytes per value")
	fs.DurationVar(&w.ReplyTimeout, "reply-timeout", w.ReplyTimeout, "bound on the replies of one batch")
}

// keyspace names the keys.
type keyspace struct {
	registers []string
	counters  []string
}

func newKeyspace(registers, counters int) keyspace {
	ks := keyspace{registers: make([]string, registers), counters: make([]string, counters)}
	for i := range ks.registers {
		ks.registers[i] = "soak:r:" + strconv.Itoa(i)
	}
	for i := range ks.counters {
		ks.counters[i] = "soak:c:" + strconv.Itoa(i)
	}
	return ks
}

// readRef is one key of a get or gets and the snapshot it is judged by.
type readRef struct {
	counter bool
	k       int
	rsnap   RegisterSnap
	csnap   CounterSnap
}

// pending is a command sent in the current batch, awaiting its reply.
type pending struct {
	kind  cmdKind
	k     int    // the key (register or counter index) of a one-key command
	ver   uint64 // the version (set, cas, delete) or epoch (add) it writes
	csnap CounterSnap
	reads []readRef // get and gets
}

// casCand is a register whose cas unique a gets returned.
type casCand struct {
	k   int
	cas uint64
}

// worker is one client connection and the state of its traffic. It is owned
// by the goroutine running it; the checker and the counts it shares are safe
// for concurrent use.
type worker struct {
	id     int
	addr   string
	cfg    *WorkloadConfig
	ks     *keyspace
	chk    *Checker
	counts *counts
	rnd    *rand.Rand

	conn     *textclient.Conn
	pend     []pending
	addQueue []int // counters whose incr answered NOT_FOUND: add them next batch
	casCands []casCand
	valBuf   []byte
	v        textclient.Value
	keys     []string // the keys of the get being built
}

// runWorkload runs cfg.Conns connections against addr until ctx ends or
// end passes, and returns when every connection has stopped.
func runWorkload(ctx context.Context, addr string, cfg *WorkloadConfig, ks *keyspace, chk *Checker, cn *counts, end time.Time, seed int64) {
	var wg sync.WaitGroup
	for i := 0; i < cfg.Conns; i++ {
		w := &worker{id: i + 1, addr: addr, cfg: cfg, ks: ks, chk: chk, counts: cn,
			rnd: rand.New(rand.NewSource(seed + int64(i)))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx, end)
		}()
	}
	wg.Wait()
}

func (w *worker) run(ctx context.Context, end time.Time) {
	defer func() {
		if w.conn != nil {
			w.conn.Close()
		}
	}()
	for b := 0; b < maxBatches; b++ {
		if ctx.Err() != nil || !time.Now().Before(end) {
			return
		}
		if w.conn == nil && !w.connect(ctx, end) {
			return
		}
		w.build()
		w.exchange()
	}
}

// connect dials the proxy until it answers, ctx ends or end passes.
func (w *worker) connect(ctx context.Context, end time.Time) bool {
	for i := 0; i < maxDials; i++ {
		c, err := textclient.Dial(w.addr, w.cfg.DialTimeout)
		if err == nil {
			w.conn = c
			return true
		}
		w.counts.noteErr(errDial, err.Error())
		if !pause(ctx, redialWait) || !time.Now().Before(end) {
			return false
		}
	}
	return false
}

// pause waits d or until ctx ends, and reports whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// next returns a fresh pending command at the end of the batch, reusing the
// slice's storage.
func (w *worker) next(kind cmdKind) *pending {
	if len(w.pend) < cap(w.pend) {
		w.pend = w.pend[:len(w.pend)+1]
	} else {
		w.pend = append(w.pend, pending{})
	}
	p := &w.pend[len(w.pend)-1]
	p.kind, p.k, p.ver, p.csnap, p.reads = kind, 0, 0, CounterSnap{}, p.reads[:0]
	w.counts.sent[kind].Add(1)
	return p
}

// build fills the connection's buffer with one batch: the adds owed for
// counters found missing, then random commands up to the pipeline depth.
// Versions and snapshots are taken here, before the sent time.
func (w *worker) build() {
	w.pend = w.pend[:0]
	for _, k := range w.addQueue {
		if len(w.pend) == w.cfg.Pipeline {
			break
		}
		p := w.next(cmdAdd)
		p.k = k
		p.ver = w.chk.BeginAdd(k, w.id)
		w.conn.AppendStorage("add", w.ks.counters[k], 0, strconv.AppendUint(w.valBuf[:0], counterValue(p.ver), 10), 0, false)
	}
	w.addQueue = w.addQueue[:copy(w.addQueue, w.addQueue[len(w.pend):])]
	for len(w.pend) < w.cfg.Pipeline {
		switch r := w.rnd.Intn(100); {
		case r < 30:
			w.addSet()
		case r < 38:
			p := w.next(cmdDelete)
			p.k = w.rnd.Intn(len(w.ks.registers))
			p.ver = w.chk.BeginWrite(p.k, KindDelete, w.id)
			w.conn.AppendCommand("delete", w.ks.registers[p.k])
		case r < 48 && len(w.casCands) > 0:
			w.addCas()
		case r < 60:
			w.addRead(cmdGets)
		case r < 85:
			w.addRead(cmdGet)
		default:
			if len(w.ks.counters) == 0 {
				w.addSet()
				continue
			}
			p := w.next(cmdIncr)
			p.k = w.rnd.Intn(len(w.ks.counters))
			p.csnap = w.chk.BeginIncr(p.k)
			w.conn.AppendCommand("incr", w.ks.counters[p.k], "1")
		}
	}
}

func (w *worker) addSet() {
	p := w.next(cmdSet)
	p.k = w.rnd.Intn(len(w.ks.registers))
	p.ver = w.chk.BeginWrite(p.k, KindSet, w.id)
	w.valBuf = appendRegisterValue(w.valBuf[:0], w.ks.registers[p.k], w.id, p.ver, w.cfg.ValueSize)
	w.conn.AppendStorage("set", w.ks.registers[p.k], uint32(w.id), w.valBuf, 0, false)
}

func (w *worker) addCas() {
	i := w.rnd.Intn(len(w.casCands))
	cand := w.casCands[i]
	w.casCands[i] = w.casCands[len(w.casCands)-1]
	w.casCands = w.casCands[:len(w.casCands)-1]
	p := w.next(cmdCas)
	p.k = cand.k
	p.ver = w.chk.BeginWrite(p.k, KindCas, w.id)
	w.valBuf = appendRegisterValue(w.valBuf[:0], w.ks.registers[p.k], w.id, p.ver, w.cfg.ValueSize)
	w.conn.AppendStorage("cas", w.ks.registers[p.k], uint32(w.id), w.valBuf, cand.cas, true)
}

// addRead adds a get or gets of 1..MultiGet distinct keys, most of them
// registers, some counters.
func (w *worker) addRead(kind cmdKind) {
	p := w.next(kind)
	n := 1 + w.rnd.Intn(w.cfg.MultiGet)
	w.keys = w.keys[:0]
	for len(p.reads) < n {
		ref := readRef{counter: len(w.ks.counters) > 0 && w.rnd.Intn(100) < 15}
		if ref.counter {
			ref.k = w.rnd.Intn(len(w.ks.counters))
		} else {
			ref.k = w.rnd.Intn(len(w.ks.registers))
		}
		dup := false
		for _, o := range p.reads {
			dup = dup || (o.counter == ref.counter && o.k == ref.k)
		}
		if dup {
			n-- // a small key space can run out of distinct keys; never loop long
			continue
		}
		var key string
		if ref.counter {
			ref.csnap = w.chk.BeginCounterRead(ref.k)
			key = w.ks.counters[ref.k]
		} else {
			ref.rsnap = w.chk.BeginRead(ref.k)
			key = w.ks.registers[ref.k]
		}
		p.reads = append(p.reads, ref)
		w.keys = append(w.keys, key)
	}
	w.conn.AppendCommand(cmdNames[kind], w.keys...)
	w.counts.keysRead.Add(int64(len(p.reads)))
}

func (r *readRef) key(ks *keyspace) string {
	if r.counter {
		return ks.counters[r.k]
	}
	return ks.registers[r.k]
}

// exchange sends the batch and reads its replies in order. On an error that
// leaves the connection out of step, the commands not yet answered end as
// failed (writes possibly applied, reads without a verdict) and the
// connection is closed.
func (w *worker) exchange() {
	sent := w.chk.Now()
	if err := w.conn.Flush(time.Now().Add(w.cfg.ReplyTimeout)); err != nil {
		w.abort(0, sent, err)
		return
	}
	for i := range w.pend {
		if err := w.reply(&w.pend[i], sent); err != nil {
			w.abort(i, sent, err)
			return
		}
	}
}

// abort ends the commands from index i on after err and drops the
// connection.
func (w *worker) abort(i int, sent int64, err error) {
	w.counts.noteErr(classifyErr(err), err.Error())
	now := w.chk.Now()
	for ; i < len(w.pend); i++ {
		w.failed(&w.pend[i], sent, now, "("+errNames[classifyErr(err)]+")")
	}
	w.conn.Close()
	w.conn = nil
}

// failed records a command that got no usable answer.
func (w *worker) failed(p *pending, sent, now int64, why string) {
	switch p.kind {
	case cmdSet, cmdCas, cmdDelete:
		w.chk.EndWrite(p.k, p.ver, sent, now, Failed, why)
		w.counts.failedW.Add(1)
	case cmdAdd:
		w.chk.EndAdd(p.k, p.ver, sent, now, Failed, why)
		w.counts.failedW.Add(1)
	case cmdIncr:
		w.counts.lostIncrs.Add(1) // it may have been applied; it can only raise the count
	case cmdGet, cmdGets:
		w.counts.lostReads.Add(int64(len(p.reads)))
	}
}

// reply reads and records the reply to p. A returned error leaves the
// connection out of step; p has not been recorded then.
func (w *worker) reply(p *pending, sent int64) error {
	switch p.kind {
	case cmdGet, cmdGets:
		return w.readValues(p, sent)
	}
	l, err := w.conn.ReadStatus()
	ack := w.chk.Now()
	if textclient.IsErrorReply(err) {
		errLine := w.conn.LastError()
		w.counts.noteErr(replyErrKind(err), fmt.Sprintf("%s: %s", cmdNames[p.kind], errLine))
		w.failed(p, sent, ack, string(errLine))
		return nil
	}
	if err != nil {
		return err
	}
	result := replyText(l)
	switch p.kind {
	case cmdSet, cmdCas, cmdAdd:
		var out Outcome
		switch result {
		case "STORED":
			out = Applied
			w.counts.replies[replyStored].Add(1)
		case "NOT_STORED":
			out = Rejected
			w.counts.replies[replyNotStored].Add(1)
		case "EXISTS":
			out = Rejected
			w.counts.replies[replyExists].Add(1)
		case "NOT_FOUND":
			if p.kind != cmdCas {
				return fmt.Errorf("%w to %s: %.80q", textclient.ErrProtocol, cmdNames[p.kind], l)
			}
			out = Rejected
			w.counts.replies[replyNotFound].Add(1)
		default:
			return fmt.Errorf("%w to %s: %.80q", textclient.ErrProtocol, cmdNames[p.kind], l)
		}
		if p.kind == cmdAdd {
			w.chk.EndAdd(p.k, p.ver, sent, ack, out, result)
		} else {
			w.chk.EndWrite(p.k, p.ver, sent, ack, out, result)
		}
	case cmdDelete:
		switch result {
		case "DELETED":
			w.counts.replies[replyDeleted].Add(1)
		case "NOT_FOUND":
			w.counts.replies[replyNotFound].Add(1)
		default:
			return fmt.Errorf("%w to delete: %.80q", textclient.ErrProtocol, l)
		}
		// Either way the client was told the key is gone.
		w.chk.EndWrite(p.k, p.ver, sent, ack, Applied, result)
	case cmdIncr:
		if result == "NOT_FOUND" {
			w.counts.replies[replyIncrMiss].Add(1)
			w.chk.EndIncr(p.k, w.id, p.csnap, sent, ack, false, 0)
			if len(w.addQueue) < w.cfg.Pipeline {
				w.addQueue = append(w.addQueue, p.k)
			}
			return nil
		}
		v, ok := parseCounter(l)
		if !ok {
			return fmt.Errorf("%w to incr: %.80q", textclient.ErrProtocol, l)
		}
		w.counts.replies[replyNumber].Add(1)
		w.chk.EndIncr(p.k, w.id, p.csnap, sent, ack, true, v)
	}
	return nil
}

// readValues reads the reply to a get or gets. memcached answers the keys
// it holds in request order, so each VALUE must name one of the requested
// keys after the previous one; the keys skipped over are misses. On an
// error p.reads keeps only the keys not judged yet, for abort to count.
func (w *worker) readValues(p *pending, sent int64) (err error) {
	next := 0
	defer func() {
		if err != nil {
			p.reads = p.reads[next:]
		}
	}()
	for first := true; ; first = false {
		end, err := w.conn.ReadValue(&w.v)
		recv := w.chk.Now()
		if textclient.IsErrorReply(err) {
			errLine := w.conn.LastError()
			if !first {
				return fmt.Errorf("%w: %.80q inside a %s reply", textclient.ErrProtocol, errLine, cmdNames[p.kind])
			}
			w.counts.noteErr(replyErrKind(err), fmt.Sprintf("%s: %s", cmdNames[p.kind], errLine))
			w.counts.lostReads.Add(int64(len(p.reads)))
			return nil
		}
		if err != nil {
			return err
		}
		if end {
			for ; next < len(p.reads); next++ {
				w.judge(p, &p.reads[next], sent, recv, false)
			}
			return nil
		}
		j := next
		for j < len(p.reads) && !bytes.Equal(w.v.Key, []byte(p.reads[j].key(w.ks))) {
			j++
		}
		if j == len(p.reads) {
			w.chk.Bogus(Finding{Key: string(w.v.Key), Op: cmdNames[p.kind], Sent: sent, Recv: recv, Reason: "key not requested",
				Read: fmt.Sprintf("%.60q", w.v.Data), Why: "VALUE for a key not requested, or out of request order"})
			return fmt.Errorf("%w: VALUE for key %q not requested (or out of order)", textclient.ErrProtocol, w.v.Key)
		}
		if p.kind == cmdGets && !w.v.HasCas {
			return fmt.Errorf("%w: VALUE without cas unique in a gets reply", textclient.ErrProtocol)
		}
		for ; next < j; next++ {
			w.judge(p, &p.reads[next], sent, recv, false)
		}
		w.judge(p, &p.reads[j], sent, recv, true)
		next = j + 1
	}
}

// judge hands one key of a get or gets reply to the checker.
func (w *worker) judge(p *pending, r *readRef, sent, recv int64, found bool) {
	op := cmdNames[p.kind]
	if found {
		w.counts.replies[replyHit].Add(1)
	} else {
		w.counts.replies[replyMiss].Add(1)
	}
	if r.counter {
		w.chk.EndCounterRead(r.k, op, r.csnap, sent, recv, found, w.v.Data)
		return
	}
	v := w.chk.EndRead(r.k, op, r.rsnap, sent, recv, found, w.v.Flags, w.v.Data)
	if found && p.kind == cmdGets && v == VerdictOK {
		if len(w.casCands) == maxCasKeep {
			w.casCands = w.casCands[1:]
		}
		w.casCands = append(w.casCands, casCand{k: r.k, cas: w.v.Cas})
	}
}

// replyText returns the status line l as a string, without allocating for
// the answers every write gets (the checker keeps one per write).
func replyText(l []byte) string {
	for _, r := range [...]string{"STORED", "NOT_STORED", "EXISTS", "NOT_FOUND", "DELETED"} {
		if string(l) == r {
			return r
		}
	}
	return string(l)
}
