package proxy

import (
	"bytes"
	"sort"
	"strconv"
	"strings"

	"github.com/mcproxy/mcproxy/protocol"
)

// The memcached stats groups that describe stored data, answered by adding
// up what every live backend reports, so that tools written for one
// memcached (memcached-tool's display, exporters' slab and item metrics) work
// through the proxy:
//
//	stats items   items:<class>:<field>: summed per slab class, except the
//	              ages (age, age_hot, age_warm: the oldest, i.e. the max) and
//	              evicted_time (the most recent eviction: the smallest
//	              non-zero value)
//	stats slabs   <class>:<field>: summed per class, except chunk_size and
//	              chunks_per_page (the class's geometry, the same on backends
//	              started alike: the max); active_slabs counts the classes
//	              active on any backend; total_malloced is summed
//	stats sizes   summed per size; sizes_status as the backends report it
//
// A value that is not a number is kept when every backend reports the same
// one and left out otherwise. Backends that fail or time out are left out of
// the sums. Slab classes line up across backends only when they run with the
// same -n/-f/-I growth settings, as a fleet normally does.
var backendStatsGroups = map[string]bool{"items": true, "slabs": true, "sizes": true}

// dispatchBackendStats sends "stats <group>" to every live backend; the
// parent's out holds the command, which tells render to merge the replies.
func (s *session) dispatchBackendStats(group string) {
	parent := newRequest(s, protocol.OpStats)
	parent.out = append(append(append(parent.out, "stats "...), group...), "\r\n"...)
	s.sendToEveryBackend(parent, parent.out, nil)
}

// appendStatsReply renders a finished stats request: the proxy's own
// "stats", or the merge of a backend stats group.
func (p *Proxy) appendStatsReply(dst []byte, r *request) []byte {
	group, ok := strings.CutPrefix(strings.TrimSuffix(string(r.out), "\r\n"), "stats ")
	if !ok {
		return p.appendStats(dst, r)
	}
	var replies [][]byte
	for _, sub := range r.subs {
		if sub.ok() {
			replies = append(replies, sub.reply.Raw)
		}
	}
	return appendMergedStats(dst, group, replies)
}

// statValue is one merged field.
type statValue struct {
	n       uint64
	text    string // the value when it is not a number
	numeric bool
	differs bool // a text value that not every backend agrees on
	seen    int  // backends that reported it
}

// appendMergedStats merges the STAT lines of the replies to "stats <group>"
// by the rules above and renders them, ordered as memcached orders them: by
// slab class (or size), each class's fields in the order reported.
func appendMergedStats(dst []byte, group string, replies [][]byte) []byte {
	vals := map[string]*statValue{}
	var order []string
	for _, raw := range replies {
		for _, line := range bytes.Split(raw, []byte("\r\n")) {
			f := strings.SplitN(string(line), " ", 3)
			if len(f) != 3 || f[0] != "STAT" {
				continue
			}
			name, v := f[1], f[2]
			sv := vals[name]
			if sv == nil {
				sv = &statValue{}
				vals[name] = sv
				order = append(order, name)
			}
			mergeStat(sv, group, field(name), v)
		}
	}
	if group == "slabs" {
		classes := map[string]bool{}
		for _, name := range order {
			if c, _, ok := strings.Cut(name, ":"); ok && isDigits(c) {
				classes[c] = true
			}
		}
		for _, name := range []string{"active_slabs", "total_malloced"} {
			if vals[name] == nil {
				vals[name] = &statValue{numeric: true}
				order = append(order, name)
			}
		}
		vals["active_slabs"].n = uint64(len(classes))
	}
	sort.SliceStable(order, func(i, j int) bool { return statOrder(order[i]) < statOrder(order[j]) })
	w := statWriter{b: dst}
	for _, name := range order {
		sv := vals[name]
		switch {
		case sv.numeric:
			w.uint64(name, sv.n)
		case !sv.differs && sv.seen == len(replies):
			w.str(name, sv.text)
		}
	}
	w.b = append(w.b, "END\r\n"...)
	return w.b
}

// mergeStat folds one backend's value of a field into sv.
func mergeStat(sv *statValue, group, fieldName, v string) {
	sv.seen++
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || (!sv.numeric && sv.seen > 1) {
		// Text (or a number where another backend had text): keep only
		// what everybody agrees on.
		if sv.seen > 1 && (sv.numeric || sv.text != v) {
			sv.differs = true
		}
		sv.numeric, sv.text = false, v
		return
	}
	if sv.seen == 1 {
		sv.numeric, sv.n = true, n
		return
	}
	switch {
	case group == "items" && (fieldName == "age" || fieldName == "age_hot" || fieldName == "age_warm"),
		group == "slabs" && (fieldName == "chunk_size" || fieldName == "chunks_per_page"):
		sv.n = max(sv.n, n)
	case group == "items" && fieldName == "evicted_time":
		if sv.n == 0 || n != 0 && n < sv.n {
			sv.n = n
		}
	default:
		sv.n += n
	}
}

// field is the last ':'-separated part of a stat name: "age" of
// "items:5:age".
func field(name string) string {
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// statOrder sorts names by their slab class or size; names without one
// (sizes_status before the sizes, active_slabs after the classes) keep
// their place relative to each other.
func statOrder(name string) int64 {
	s := strings.TrimPrefix(name, "items:")
	if c, _, _ := strings.Cut(s, ":"); isDigits(c) {
		n, _ := strconv.ParseInt(c, 10, 64)
		return n
	}
	if name == "sizes_status" {
		return -1
	}
	return 1 << 62
}

func isDigits(s string) bool {
	if s == "" || len(s) > 18 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// yesNo spells a setting as memcached's "stats settings" does.
func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
