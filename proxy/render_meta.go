package proxy

import (
	"github.com/mcproxy/mcproxy/protocol"
)

// renderMeta appends the client's reply to a meta command, as memcached
// would have written it, and counts its outcome.
//
//   - A backend that failed: an mg answers EN (with the O and k flags echoed
//     as memcached echoes them), a miss being safe as for a get, and left
//     out in quiet mode as memcached leaves out a quiet miss. With no
//     backend in the ring at all, and for every other command, the answer
//     is SERVER_ERROR <reason>, never hidden.
//   - An error line from the backend goes out as it came.
//   - A reply memcached hides in quiet mode is dropped: one the code says
//     memcached hides (protocol.MetaQuietHides), the backend having been
//     asked without q so that it answers in step; or, for a fenced request,
//     the MN that says the backend itself hid it (metaState.hidden).
//   - Otherwise the backend's reply, its O flag turned back into the
//     client's opaque (or taken out) when the proxy put its own there.
func (s *session) renderMeta(dst []byte, r *request) []byte {
	m := &r.meta
	if r.err != nil {
		s.p.stats.countMetaFailure(r)
		if r.op == protocol.OpMetaGet && r.err != errNoBackends {
			if !m.quiet {
				dst = append(dst, m.miss()...)
			}
			return dst
		}
		return appendServerError(dst, r.err)
	}
	rep := &r.reply
	s.p.stats.countMetaReply(r)
	if m.hidden(r.op, rep) {
		return dst
	}
	if m.proxyOpaque == 0 || rep.IsError {
		return append(dst, rep.Raw...)
	}
	dst = protocol.AppendMetaReplyHeader(dst, rep, m.hasOpaque, m.opaque())
	return append(dst, rep.MetaBlock()...)
}
