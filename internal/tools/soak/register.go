package soak

import (
	"fmt"
	"sync"
)

// write is one write of a register as the checker saw it.
type write struct {
	ack    int64
	writer int32
	kind   WriteKind
	out    Outcome
	result string // the reply line, for findings (a constant, see replyText)
}

// foldClass is what a folded (old, decided) version means if it is read.
type foldClass uint8

const (
	foldFine    foldClass = iota // its write failed: possibly written, fine to see
	foldStale                    // applied, then superseded by a settled witness
	foldRefused                  // rejected: never written
	foldDelete                   // a delete: not a value
)

// witnessAt is a witness and the time it was recorded.
type witnessAt struct {
	at int64
	w  witness
}

// register is the checker's record of one key written by set, cas and
// delete. Versions are dense from 1. Versions 1..folded are folded into
// two bits each in fold; writes[i] is version folded+1+i. Guarded by mu.
type register struct {
	mu      sync.Mutex
	key     string
	folded  uint64
	fold    []byte // 4 versions per byte
	writes  []write
	last    witness     // the witness: latest sent among applied writes
	recent  []witnessAt // witnesses recorded since the settled one, oldest first
	settled witness     // the latest witness every read still to be judged has seen
}

// RegisterSnap is what a read of a register must not contradict: the key's
// witness when the read was sent.
type RegisterSnap struct{ last witness }

// BeginWrite assigns the next version of register k to a write of kind by
// writer, about to be sent. Call it before taking the sent time.
func (c *Checker) BeginWrite(k int, kind WriteKind, writer int) uint64 {
	r := &c.registers[k]
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, write{writer: int32(writer), kind: kind, out: InFlight})
	return r.folded + uint64(len(r.writes))
}

// EndWrite records what the client was told about version ver of register
// k: out, with the reply line result, sent at sent and answered at ack.
func (c *Checker) EndWrite(k int, ver uint64, sent, ack int64, out Outcome, result string) {
	r := &c.registers[k]
	r.mu.Lock()
	defer r.mu.Unlock()
	w := &r.writes[ver-r.folded-1] // in flight until now, so not folded
	w.ack, w.out, w.result = ack, out, result
	if out == Applied && r.last.later(sent) {
		r.last = witness{valid: true, kind: w.kind, ver: ver, writer: int(w.writer), sent: sent, ack: ack, result: result}
		if c.maxReadAge > 0 {
			r.recent = append(r.recent, witnessAt{at: ack, w: r.last})
		}
	}
	if by, ok := c.settledBy(ack); ok {
		r.foldOld(by)
	}
}

// foldOld settles the witnesses recorded before by and folds the decided
// versions at the front: failed, refused and delete versions always, an
// applied one once a settled witness supersedes it. It stops at the first
// version still undecided (in flight, or applied and not yet superseded).
func (r *register) foldOld(by int64) {
	n := 0
	for n < len(r.recent) && r.recent[n].at <= by {
		r.settled = r.recent[n].w
		n++
	}
	r.recent = r.recent[:copy(r.recent, r.recent[n:])]
	i := 0
	for ; i < len(r.writes); i++ {
		fc, ok := r.decided(&r.writes[i])
		if !ok {
			break
		}
		v := r.folded // 0-based index of the version being folded
		if v%4 == 0 {
			r.fold = append(r.fold, 0)
		}
		r.fold[v/4] |= byte(fc) << (2 * (v % 4))
		r.folded++
	}
	r.writes = r.writes[i:] // append copies the live part when it grows, freeing the rest
}

// decided returns the class of w if no read still to be judged can change
// it.
func (r *register) decided(w *write) (foldClass, bool) {
	switch {
	case w.out == InFlight:
		return 0, false
	case w.out == Failed:
		return foldFine, true
	case w.out == Rejected:
		return foldRefused, true
	case w.kind == KindDelete:
		return foldDelete, true
	case r.settled.valid && w.ack < r.settled.sent:
		return foldStale, true
	}
	return 0, false
}

// foldedClass returns the class of a folded version.
func (r *register) foldedClass(ver uint64) foldClass {
	v := ver - 1
	return foldClass(r.fold[v/4]>>(2*(v%4))) & 3
}

// BeginRead takes the snapshot a read of register k, about to be sent, is
// judged by. Call it before taking the sent time.
func (c *Checker) BeginRead(k int) RegisterSnap {
	r := &c.registers[k]
	r.mu.Lock()
	defer r.mu.Unlock()
	return RegisterSnap{last: r.last}
}

// EndRead classifies a read of register k by op ("get" or "gets") that was
// sent at sent with snapshot snap and answered at recv: a miss if !found,
// else the value with its flags.
func (c *Checker) EndRead(k int, op string, snap RegisterSnap, sent, recv int64, found bool, flags uint32, data []byte) Verdict {
	if !found {
		return c.note(VerdictMiss, "", 0, nil)
	}
	r := &c.registers[k]
	writer, ver, ok := parseRegisterValue(r.key, data, c.valueSize)
	// bad notes a stale or bogus read; the text is built only for the
	// findings kept.
	bad := func(v Verdict, reason string, why func() string) Verdict {
		return c.note(v, reason, recv, func() Finding {
			read := fmt.Sprintf("version %d by conn %d", ver, writer)
			if !ok {
				read = fmt.Sprintf("%.60q (flags %d)", data, flags)
			}
			return Finding{Key: r.key, Op: op, Sent: sent, Recv: recv, Reason: reason, Read: read, Why: why()}
		})
	}
	text := func(s string) func() string { return func() string { return s } }
	if !ok {
		return bad(VerdictBogus, "not a value of this key", text("not a value written for this key at this size"))
	}
	if uint32(writer) != flags {
		return bad(VerdictBogus, "wrong flags", func() string {
			return fmt.Sprintf("flags %d, but the writer sets its id %d as flags", flags, writer)
		})
	}
	r.mu.Lock()
	var w write
	known := ver <= r.folded+uint64(len(r.writes))
	folded := ver <= r.folded
	var fc foldClass
	switch {
	case folded:
		fc = r.foldedClass(ver)
	case known:
		w = r.writes[ver-r.folded-1]
	}
	settled := r.settled
	r.mu.Unlock()
	if folded {
		switch fc {
		case foldStale:
			reason := "older value"
			if settled.kind == KindDelete {
				reason = "resurrection"
			}
			return bad(VerdictStale, reason, func() string {
				return fmt.Sprintf("its write was acknowledged (time folded) before the %s, which was acknowledged more than %s before this read was sent",
					settled, fmtDur(c.maxReadAge))
			})
		case foldRefused:
			return bad(VerdictBogus, "refused write", text("its write was refused (details folded)"))
		case foldDelete:
			return bad(VerdictBogus, "a delete's version", text("that version is a delete, not a value"))
		}
		return c.note(VerdictOK, "", 0, nil) // its write failed: possibly written
	}
	switch {
	case !known:
		return bad(VerdictBogus, "version never sent", text("that version was never sent"))
	case int(w.writer) != writer:
		return bad(VerdictBogus, "wrong writer", func() string { return fmt.Sprintf("version %d was sent by conn %d", ver, w.writer) })
	case w.kind == KindDelete:
		return bad(VerdictBogus, "a delete's version", text("that version is a delete, not a value"))
	case w.out == Rejected:
		return bad(VerdictBogus, "refused write", func() string {
			return fmt.Sprintf("its %s was refused (%s %s)", w.kind, w.result, fmtNanos(w.ack))
		})
	case w.out == Applied && snap.last.valid && w.ack < snap.last.sent:
		reason := "older value"
		if snap.last.kind == KindDelete {
			reason = "resurrection"
		}
		return bad(VerdictStale, reason, func() string {
			return fmt.Sprintf("its %s was acknowledged %s %s; then the %s: sent after that ack, acknowledged before this read was sent",
				w.kind, w.result, fmtNanos(w.ack), snap.last)
		})
	}
	// In flight when read, failed (possibly written), or applied and not
	// superseded by anything acknowledged before the read was sent.
	return c.note(VerdictOK, "", 0, nil)
}
