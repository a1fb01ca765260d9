package proxy

import (
	"bufio"
	"bytes"
	"strconv"
	"time"

	"github.com/mcproxy/mcproxy/protocol"
)

var timeNow = time.Now

var (
	endLine = []byte("END\r\n")
	okLine  = []byte("OK\r\n")
	// statsCommand asks a backend for its general stats, which plain
	// "stats" adds up.
	statsCommand = []byte("stats\r\n")
)

// render writes the reply the client is owed for r, exactly as memcached
// would have written it, and counts the outcome.
func (s *session) render(w *bufio.Writer, r *request) {
	if len(r.local) > 0 {
		_, _ = w.Write(r.local)
		return
	}
	switch {
	case r.op.IsRetrieval():
		s.renderRetrieval(w, r)
	case r.op == protocol.OpFlushAll:
		s.renderFlushAll(w, r)
	case r.op == protocol.OpStats:
		s.p.stats.countResult(r.op, resOK, 1)
		_, _ = w.Write(s.p.appendStatsReply(w.AvailableBuffer(), r))
	case r.op.IsMeta():
		s.renderMeta(w, r) // meta_render.go
	case r.op == protocol.OpQuit || r.op == protocol.OpNone:
	default:
		s.p.stats.countReply(r)
		if r.noreply {
			return
		}
		if r.err != nil {
			writeServerError(w, r.err)
			return
		}
		_, _ = w.Write(r.reply.Raw)
	}
}

func writeServerError(w *bufio.Writer, err error) {
	_, _ = w.WriteString("SERVER_ERROR ")
	_, _ = w.WriteString(err.Error())
	_, _ = w.WriteString("\r\n")
}

// renderRetrieval writes the hits and END. A backend that failed
// contributes misses: a miss is safe, the application falls back to its
// database. A reply that got here answers its command: the backend reader
// (protocol.ReadReplyTo) refused any VALUE for a key not asked for, out of
// the order asked, or repeated, so a single command's reply goes out as it
// came and the merge below can take each sub's values in order.
func (s *session) renderRetrieval(w *bufio.Writer, r *request) {
	hits, failed := 0, 0
	if len(r.subs) == 0 {
		if r.ok() {
			raw := r.reply.Raw
			if r.more { // a piece of a longer multi-get: END comes with the last
				raw = raw[:len(raw)-len(endLine)]
			}
			_, _ = w.Write(raw)
			hits = len(r.reply.Values)
		} else {
			if !r.more {
				_, _ = w.Write(endLine)
			}
			failed = r.nkeys
		}
		s.p.stats.countRetrieval(r.op, hits, r.nkeys-hits-failed, failed)
		return
	}
	cur := s.cursors[:0]
	for range r.subs {
		cur = append(cur, 0)
	}
	s.cursors = cur
	for i, key := range r.keys {
		j := r.owner[i]
		sub := r.subs[j]
		if !sub.ok() {
			failed++
			continue
		}
		// A backend answers the hits among its keys in the order asked,
		// so each key's value, if any, is the next one from its backend.
		if c := cur[j]; c < len(sub.reply.Values) && bytes.Equal(sub.reply.Key(c), key) {
			_, _ = w.Write(sub.reply.Block(c))
			cur[j]++
			hits++
		}
	}
	if !r.more {
		_, _ = w.Write(endLine)
	}
	s.p.stats.countRetrieval(r.op, hits, r.nkeys-hits-failed, failed)
}

// renderFlushAll answers OK only when every backend flushed.
func (s *session) renderFlushAll(w *bufio.Writer, r *request) {
	if r.err != nil {
		s.p.stats.countResult(r.op, resError, 1)
		if !r.noreply {
			writeServerError(w, r.err)
		}
		return
	}
	failed := 0
	for _, sub := range r.subs {
		if sub.err != nil || !bytes.Equal(sub.reply.Raw, okLine) {
			failed++
		}
	}
	if failed == 0 {
		s.p.stats.countResult(r.op, resOK, 1)
		if !r.noreply {
			_, _ = w.Write(okLine)
		}
		return
	}
	s.p.stats.countResult(r.op, resError, 1)
	if r.noreply {
		return
	}
	_, _ = w.WriteString("SERVER_ERROR flush_all failed on ")
	_, _ = w.WriteString(strconv.Itoa(failed))
	_, _ = w.WriteString(" of ")
	_, _ = w.WriteString(strconv.Itoa(len(r.subs)))
	_, _ = w.WriteString(" backends\r\n")
}
