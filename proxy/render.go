package proxy

import (
	"bytes"
	"strconv"

	"github.com/mcproxy/mcproxy/protocol"
)

var (
	endLine = []byte("END\r\n")
	okLine  = []byte("OK\r\n")
)

// render appends the reply the client is owed for r to dst, exactly as
// memcached would have written it, and counts the outcome.
func (s *session) render(dst []byte, r *request) []byte {
	if len(r.local) > 0 {
		return append(dst, r.local...)
	}
	switch {
	case r.op.IsRetrieval():
		return s.renderRetrieval(dst, r)
	case r.op == protocol.OpFlushAll:
		return s.renderFlushAll(dst, r)
	case r.op == protocol.OpStats:
		s.p.stats.countResult(r.op, resOK, 1)
		return s.p.appendStatsReply(dst, r)
	case r.op.IsMeta():
		return s.renderMeta(dst, r) // render_meta.go
	case r.op == protocol.OpQuit || r.op == protocol.OpNone:
		return dst
	}
	s.p.stats.countReply(r)
	if r.noreply {
		return dst
	}
	if r.err != nil {
		return appendServerError(dst, r.err)
	}
	return append(dst, r.reply.Raw...)
}

func appendServerError(dst []byte, err error) []byte {
	dst = append(dst, "SERVER_ERROR "...)
	dst = append(dst, err.Error()...)
	return append(dst, "\r\n"...)
}

// renderRetrieval appends the hits and END. A backend that failed
// contributes misses: a miss is safe, the application falls back to its
// database. A reply that got here answers its command: the backend reader
// (protocol.ReadReplyTo) refused any VALUE for a key not asked for, out of
// the order asked, or repeated, so a single command's reply goes out as it
// came and the merge below can take each sub's values in order.
func (s *session) renderRetrieval(dst []byte, r *request) []byte {
	hits, failed := 0, 0
	if len(r.subs) == 0 {
		if r.ok() {
			raw := r.reply.Raw
			if r.more { // a piece of a longer multi-get: END comes with the last
				raw = raw[:len(raw)-len(endLine)]
			}
			dst = append(dst, raw...)
			hits = len(r.reply.Values)
		} else {
			if !r.more {
				dst = append(dst, endLine...)
			}
			failed = r.nkeys
		}
		s.p.stats.countRetrieval(r.op, hits, r.nkeys-hits-failed, failed)
		return dst
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
			if r.warm != nil && r.warm.owner != nil && r.warm.isCopy(i) {
				var hit bool
				if dst, hit = s.renderWarmHit(dst, r, i, cur); hit {
					hits++
					continue
				}
			}
			failed++
			continue
		}
		// A backend answers the hits among its keys in the order asked,
		// so each key's value, if any, is the next one from its backend.
		if c := cur[j]; c < len(sub.reply.Values) && bytes.Equal(sub.reply.Key(c), key) {
			dst = append(dst, sub.reply.Block(c)...)
			cur[j]++
			hits++
		} else if r.warm != nil && r.warm.owner != nil {
			var hit bool
			if dst, hit = s.renderWarmHit(dst, r, i, cur); hit {
				hits++
			}
		}
	}
	if !r.more {
		dst = append(dst, endLine...)
	}
	s.p.stats.countRetrieval(r.op, hits, r.nkeys-hits-failed, failed)
	return dst
}

// renderFlushAll answers OK only when every backend flushed.
func (s *session) renderFlushAll(dst []byte, r *request) []byte {
	if r.err != nil {
		s.p.stats.countResult(r.op, resError, 1)
		if !r.noreply {
			dst = appendServerError(dst, r.err)
		}
		return dst
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
			dst = append(dst, okLine...)
		}
		return dst
	}
	s.p.stats.countResult(r.op, resError, 1)
	if r.noreply {
		return dst
	}
	dst = append(dst, "SERVER_ERROR flush_all failed on "...)
	dst = strconv.AppendInt(dst, int64(failed), 10)
	dst = append(dst, " of "...)
	dst = strconv.AppendInt(dst, int64(len(r.subs)), 10)
	return append(dst, " backends\r\n"...)
}
