package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/textclient"
)

// ioBufferSize is the read and write buffer of a connection.
const ioBufferSize = 64 << 10

// Spec is the shape of the load of a Worker.
type Spec struct {
	// Keys is the key space: keys are KeyPrefix followed by 0..Keys-1.
	Keys      int
	KeyPrefix string
	// ValueSize is the size in bytes of every value set.
	ValueSize int
	// GetWeight:SetWeight is the mix of random commands, e.g. 9:1.
	GetWeight, SetWeight int
	// MultiGet is the number of keys each random get asks for.
	MultiGet int
	// Timeout bounds a connect and a batch (its write and its replies).
	Timeout time.Duration
	// Seed seeds the per-worker random generators: the same seed gives the
	// same key sequence.
	Seed uint64
	// Versions, when not nil, numbers the sets (each takes the next
	// version) and makes gets read the version of every value they find.
	// When nil, every set writes version 0 and gets only check that each
	// value begins with its key, without keeping it.
	Versions *atomic.Uint64
	// TLS, when not nil, makes every connection TLS with this config; the
	// handshake is part of the connect.
	TLS *tls.Config
}

// Outcome is what a command got.
type Outcome uint8

const (
	// OK: STORED for a set; a well-formed reply for a get (Reply.Hits of
	// its keys found).
	OK Outcome = iota
	// ErrorReply: SERVER_ERROR, CLIENT_ERROR or ERROR in place of the
	// reply (Reply.Err is the textclient sentinel, Reply.Line the line). The
	// connection stays in step.
	ErrorReply
	// BadValue: a get found a value not written for its key (with
	// Versions only). The connection stays in step.
	BadValue
	// Protocol: a malformed reply, or one not for this command; the
	// connection is closed.
	Protocol
	// Timeout: the batch ran past Spec.Timeout; the connection is closed.
	Timeout
	// ConnError: the connection failed (reset, closed, refused); it is
	// closed.
	ConnError
)

// Reply is what one command of a batch got, handed to the caller's
// function; it is valid only during the call.
type Reply struct {
	Set bool
	// Key is the index of the command's first key, NKeys the number of
	// keys it asked for.
	Key, NKeys int
	// Hits counts the keys a get found.
	Hits int
	// Version is the version a set wrote, or the one a get of one key read
	// (with Spec.Versions).
	Version uint64
	Outcome Outcome
	// Err is the error behind every Outcome but OK and BadValue.
	Err error
	// Line is the error line of an ErrorReply.
	Line []byte
	// Start is when the batch was begun: its latency is from here to the
	// call.
	Start time.Time
}

// op is one command of a batch.
type op struct {
	set     bool
	keys    int // index of its first key in Worker.keys
	nkeys   int
	key     int // index of the first key in the key space
	version uint64
}

// Worker drives one connection. It is owned by one goroutine. Everything it
// needs per command is allocated once, so the steady state does not
// allocate.
type Worker struct {
	spec     *Spec
	addr     string
	addrErr  error // why addr is refused, if it is not a loopback address
	rng      *rand.Rand
	conn     net.Conn
	w        *bufio.Writer
	rr       *textclient.Reader
	ops      []op
	keyBuf   []byte   // the bytes of every key of the current batch
	keys     [][]byte // slices of keyBuf
	valBuf   []byte   // the value being written
	lenBuf   []byte   // " 0 0 <ValueSize>\r\n" of a set line
	val      textclient.Value
	reply    Reply // handed to the caller's function; a field, so it does not escape per batch
	t0       time.Time
	backoff  time.Duration
	dialer   net.Dialer
	getTotal int
}

// NewWorker returns a worker number id of the load spec against addr,
// which must be a loopback address (textclient.ResolveLoopback; Connect refuses
// any other). depth is the largest batch it will be asked for. It does not
// connect yet.
func NewWorker(spec *Spec, addr string, id, depth int) *Worker {
	keyLen := len(spec.KeyPrefix) + 20
	keysPerOp := max(spec.MultiGet, 1)
	dial, addrErr := textclient.ResolveLoopback(addr)
	return &Worker{
		spec:     spec,
		addr:     dial,
		addrErr:  addrErr,
		rng:      rand.New(rand.NewPCG(spec.Seed, uint64(id))),
		ops:      make([]op, 0, depth),
		keyBuf:   make([]byte, 0, depth*keysPerOp*keyLen),
		keys:     make([][]byte, 0, depth*keysPerOp),
		valBuf:   make([]byte, 0, spec.ValueSize+keyLen+22),
		lenBuf:   []byte(" 0 0 " + strconv.Itoa(spec.ValueSize) + "\r\n"),
		dialer:   net.Dialer{Timeout: spec.Timeout},
		getTotal: spec.GetWeight + spec.SetWeight,
	}
}

// Connected reports whether the worker has an open connection.
func (w *Worker) Connected() bool { return w.conn != nil }

// Close closes the connection, if open.
func (w *Worker) Close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// Connect opens the connection if it is closed. After a failure it waits a
// growing backoff (10 ms doubling to 250 ms), never past until, so a
// refusing target does not turn the load into a busy loop.
func (w *Worker) Connect(ctx context.Context, until time.Time) error {
	if w.conn != nil {
		return nil
	}
	if w.addrErr != nil {
		return w.addrErr
	}
	conn, err := w.dialer.DialContext(ctx, "tcp", w.addr)
	if err != nil {
		w.backoff = min(max(2*w.backoff, 10*time.Millisecond), 250*time.Millisecond)
		if sleep := min(w.backoff, time.Until(until)); sleep > 0 {
			t := time.NewTimer(sleep)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		return fmt.Errorf("dial %s: %w", w.addr, err)
	}
	if w.spec.TLS != nil {
		tc := tls.Client(conn, w.spec.TLS)
		hctx, cancel := context.WithTimeout(ctx, w.spec.Timeout)
		err = tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return fmt.Errorf("TLS handshake with %s: %w", w.addr, err)
		}
		conn = tc
	}
	w.backoff = 0
	w.conn = conn
	if w.w == nil {
		w.w = bufio.NewWriterSize(conn, ioBufferSize)
		w.rr = textclient.NewReader(conn, ioBufferSize)
	} else {
		w.w.Reset(conn)
		w.rr.Reset(conn)
	}
	return nil
}

// Begin starts a new, empty batch on the open connection. Its deadline is
// set now: a batch larger than the write buffer starts going out while it
// is built.
func (w *Worker) Begin() {
	w.t0 = time.Now()
	_ = w.conn.SetDeadline(w.t0.Add(w.spec.Timeout))
	w.ops = w.ops[:0]
	w.keyBuf = w.keyBuf[:0]
	w.keys = w.keys[:0]
}

// Len returns the number of commands in the batch.
func (w *Worker) Len() int { return len(w.ops) }

// addKey appends key number k to the batch's keys.
func (w *Worker) addKey(k int) []byte {
	start := len(w.keyBuf)
	w.keyBuf = append(w.keyBuf, w.spec.KeyPrefix...)
	w.keyBuf = strconv.AppendUint(w.keyBuf, uint64(k), 10)
	key := w.keyBuf[start:len(w.keyBuf):len(w.keyBuf)]
	w.keys = append(w.keys, key)
	return key
}

// AddSet appends "set <key> 0 0 <n>" of key number k and its value.
func (w *Worker) AddSet(k int) {
	o := op{set: true, keys: len(w.keys), nkeys: 1, key: k}
	if w.spec.Versions != nil {
		o.version = w.spec.Versions.Add(1)
	}
	w.ops = append(w.ops, o)
	key := w.addKey(k)
	w.valBuf = AppendValue(w.valBuf[:0], key, o.version, w.spec.ValueSize)
	w.w.WriteString("set ")
	w.w.Write(key)
	w.w.Write(w.lenBuf)
	w.w.Write(w.valBuf)
	w.w.WriteString("\r\n")
}

// AddGet appends "get <key>..." of MultiGet random keys.
func (w *Worker) AddGet() {
	o := op{keys: len(w.keys), nkeys: w.spec.MultiGet}
	w.w.WriteString("get")
	for i := 0; i < w.spec.MultiGet; i++ {
		k := w.rng.IntN(w.spec.Keys)
		if i == 0 {
			o.key = k
		}
		w.w.WriteByte(' ')
		w.w.Write(w.addKey(k))
	}
	w.w.WriteString("\r\n")
	w.ops = append(w.ops, o)
}

// AddRandom appends n commands, each a get or a set of a random key by the
// Spec's weights.
func (w *Worker) AddRandom(n int) {
	for i := 0; i < n; i++ {
		if w.rng.IntN(w.getTotal) < w.spec.GetWeight {
			w.AddGet()
		} else {
			w.AddSet(w.rng.IntN(w.spec.Keys))
		}
	}
}

// Exchange sends the batch and reads its replies, calling fn with each
// command's outcome in order. After an error that leaves the connection out
// of step it closes the connection; the commands not answered get the
// error's outcome.
func (w *Worker) Exchange(fn func(*Reply)) {
	r := &w.reply
	if err := w.w.Flush(); err != nil {
		w.fail(err, 0, r, fn)
		return
	}
	for i := range w.ops {
		o := &w.ops[i]
		*r = Reply{Set: o.set, Key: o.key, NKeys: o.nkeys, Version: o.version, Start: w.t0}
		var err error
		if o.set {
			err = w.rr.ReadStored()
		} else {
			err = w.readGet(o, r)
		}
		switch {
		case err == nil:
		case textclient.IsErrorReply(err):
			r.Outcome, r.Err, r.Line = ErrorReply, err, w.rr.LastError()
		default:
			w.fail(err, i, r, fn)
			return
		}
		fn(r)
	}
}

// readGet reads the reply to a get into r.
func (w *Worker) readGet(o *op, r *Reply) (err error) {
	keys := w.keys[o.keys : o.keys+o.nkeys]
	if w.spec.Versions == nil {
		r.Hits, err = w.rr.ReadGet(keys, true)
		return err
	}
	next := 0 // memcached answers the keys it holds in request order
	for {
		end, err := w.rr.ReadValue(&w.val)
		if err != nil {
			if textclient.IsErrorReply(err) && r.Hits > 0 {
				return fmt.Errorf("%w: %q inside a get reply", textclient.ErrProtocol, w.rr.LastError())
			}
			return err
		}
		if end {
			return nil
		}
		j := next
		for j < len(keys) && string(keys[j]) != string(w.val.Key) {
			j++
		}
		if j == len(keys) {
			return fmt.Errorf("%w: VALUE for key %q not requested (or out of order)", textclient.ErrProtocol, w.val.Key)
		}
		next = j + 1
		r.Hits++
		v, ok := ParseValue(keys[j], w.val.Data)
		if !ok {
			r.Outcome = BadValue
		}
		r.Version = v
	}
}

// fail closes the connection after err and hands the commands from index i
// on to fn with err's outcome.
func (w *Worker) fail(err error, i int, r *Reply, fn func(*Reply)) {
	w.Close()
	out := ConnError
	switch {
	case errors.Is(err, textclient.ErrProtocol):
		out = Protocol
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		out = Timeout
	}
	for ; i < len(w.ops); i++ {
		o := &w.ops[i]
		*r = Reply{Set: o.set, Key: o.key, NKeys: o.nkeys, Version: o.version, Outcome: out, Err: err, Start: w.t0}
		fn(r)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Version sends "version" on the open connection and reads the reply,
// within the spec's timeout: the first round trip of a client that has just
// connected. On any failure it closes the connection.
func (w *Worker) Version() error {
	if w.conn == nil {
		return errors.New("version: not connected")
	}
	_ = w.conn.SetDeadline(time.Now().Add(w.spec.Timeout))
	_, _ = w.w.WriteString("version\r\n")
	if err := w.w.Flush(); err != nil {
		w.Close()
		return fmt.Errorf("version: %w", err)
	}
	l, err := w.rr.ReadStatus()
	if err == nil && !bytes.HasPrefix(l, []byte("VERSION ")) {
		err = fmt.Errorf("%w: %q in reply to version", textclient.ErrProtocol, l)
	}
	if err != nil {
		w.Close()
		return fmt.Errorf("version: %w", err)
	}
	return nil
}
