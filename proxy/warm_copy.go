package proxy

import (
	"strconv"

	"github.com/mcproxy/mcproxy/protocol"
)

// warmCopy copies one key's value from its old pool into its new pool
// after a warm-up read found it only in the old one (warm.go). It runs on
// the loop of the session whose read found it, as a chain of internal
// requests on that session's backend connections, each started by the
// reply to the one before:
//
//  1. read the old copy with its flags, remaining time and CAS
//     (mg <key> v f t c);
//  2. add it to the new pool, only if the key is absent there
//     (ms <key> <len> T<ttl> F<flags> ME c), learning the copy's CAS;
//  3. read the old copy's CAS again (mg <key> c);
//  4. if the old copy is gone or changed, delete the copy, only if it is
//     still the copy (md <key> C<cas>).
//
// Nobody waits for it: the client was answered from the old pool's reply.
// It stays on the loop and connections it started on (l, conn) even if the
// session moves to another loop meanwhile (loop_move.go): its replies come
// back on them.
type warmCopy struct {
	l        *eventLoop
	conn     int // the session's connIndex when the copy started
	key      []byte
	old, new *backend
	counters *poolCounters
	exptime  int32 // the copy's expiry; -1: the old copy's remaining time
	step     int
	cas      []byte // the old copy's CAS, as read in step 1
	copyCas  []byte // the copy's CAS, from step 2
}

// Steps of a warmCopy.
const (
	warmReadOld = iota
	warmAddNew
	warmRecheckOld
	warmUndo
)

// startWarmCopy starts copying key from old to new.
func (s *session) startWarmCopy(key []byte, old, new *backend, exptime int32, counters *poolCounters) {
	if exptime < 0 && exptime != -1 {
		return // the client asked for the item to expire at once
	}
	c := &warmCopy{l: s.l, conn: s.connIndex, key: append([]byte(nil), key...), old: old, new: new, counters: counters, exptime: exptime}
	c.send(warmReadOld, c.old, func(dst []byte) []byte { return append(dst, " v f t c"...) }, nil)
}

// send sends one step's command to b: the verb of the step, the key, the
// flags flagsOf appends, then data, if any, as a data block.
func (c *warmCopy) send(step int, b *backend, flagsOf func([]byte) []byte, data []byte) {
	c.step = step
	op, verb := protocol.OpMetaGet, "mg "
	switch step {
	case warmAddNew:
		op, verb = protocol.OpMetaSet, "ms "
	case warmUndo:
		op, verb = protocol.OpMetaDelete, "md "
	}
	r := newRequest(nil, op)
	r.hook = c
	out, binary := protocol.AppendMetaKey(append(r.out, verb...), c.key)
	if data != nil {
		out = strconv.AppendInt(append(out, ' '), int64(len(data)), 10)
	}
	if binary {
		out = append(out, " b"...)
	}
	out = append(flagsOf(out), "\r\n"...)
	if data != nil {
		out = append(append(out, data...), "\r\n"...)
	}
	r.out = out
	r.backend = b
	r.deadline = requestDeadline(c.l.now, b.p.opts.Timeout)
	b.connOn(c.l, c.conn).send(r)
}

// afterReply implements requestHook: it takes the step's reply and sends
// the next step, or ends the copy.
func (c *warmCopy) afterReply(r *request) bool {
	defer r.release()
	if !r.ok() {
		c.counters.warmCopyErrors.Add(1)
		return true
	}
	code := r.reply.Meta.Code
	switch c.step {
	case warmReadOld:
		if code == protocol.MetaVA {
			c.add(r)
		}
	case warmAddNew:
		if code == protocol.MetaHD {
			cas, _ := r.reply.Meta.Flags.Token('c')
			c.copyCas = append([]byte(nil), cas...)
			c.send(warmRecheckOld, c.old, func(dst []byte) []byte { return append(dst, " c"...) }, nil)
		}
		// NS: the new pool has the key already, written since the read:
		// it is newer than the old copy, and stays.
	case warmRecheckOld:
		cas, _ := r.reply.Meta.Flags.Token('c')
		if code == protocol.MetaHD && string(cas) == string(c.cas) {
			c.counters.warmCopies.Add(1)
			return true
		}
		c.counters.warmCopyErrors.Add(1)
		c.send(warmUndo, c.new, func(dst []byte) []byte { return append(append(dst, " C"...), c.copyCas...) }, nil)
	}
	return true
}

// add sends step 2 with what step 1 read: the value, its client flags and
// its remaining time (or the gat's exptime).
func (c *warmCopy) add(r *request) {
	flags, _ := r.reply.Meta.Flags.Token('f')
	ttl, _ := r.reply.Meta.Flags.Token('t')
	cas, _ := r.reply.Meta.Flags.Token('c')
	c.cas = append([]byte(nil), cas...)
	exptime := []byte("0") // t-1: no expiry
	switch {
	case c.exptime >= 0:
		exptime = strconv.AppendInt(nil, int64(c.exptime), 10)
	case string(ttl) == "0":
		return // expiring this second: not worth a copy
	case string(ttl) != "-1":
		exptime = ttl
	}
	value := append([]byte(nil), r.reply.MetaValue()...)
	c.send(warmAddNew, c.new, func(dst []byte) []byte {
		dst = append(append(dst, " T"...), exptime...)
		dst = append(append(dst, " F"...), flags...)
		return append(dst, " ME c"...)
	}, value)
}
