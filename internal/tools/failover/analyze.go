package failover

import (
	"math"
	"sort"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/bench"
)

// timelineStep is the width of a bucket of Report.Timeline.
const timelineStep = 500 * time.Millisecond

// moments are the instants of a run, in ns since its base time.
type moments struct {
	prefillEnd int64
	loadStart  int64
	fail       int64
	recover    int64
	loadEnd    int64
	eject      int64 // valid if ejected
	readd      int64 // valid if readded
	ejected    bool
	readded    bool
}

// rel returns t in seconds relative to the failure.
func (m *moments) rel(t int64) float64 { return float64(t-m.fail) / 1e9 }

// analysis turns the samples of a run into the figures of a Report.
type analysis struct {
	cfg     *Config
	ks      *keySpace
	m       moments
	samples []sample
	stale   []bool // stale[i]: samples[i] is a stale hit
	// unacked[i]: samples[i] is a hit on a value whose set did not get
	// STORED (it failed or timed out, yet was applied).
	unacked []bool
	// firstSet is, per key, the start of the first set of the load, or
	// math.MaxInt64 when the load never set it.
	firstSet []int64
}

func newAnalysis(cfg *Config, ks *keySpace, m moments, samples []sample) *analysis {
	sort.Slice(samples, func(i, j int) bool { return samples[i].start < samples[j].start })
	a := &analysis{cfg: cfg, ks: ks, m: m, samples: samples}
	a.stale, a.unacked = a.findStale()
	a.firstSet = make([]int64, len(ks.names))
	for i := range a.firstSet {
		a.firstSet[i] = math.MaxInt64
	}
	for i := range samples {
		if s := &samples[i]; s.op == opSet && s.start < a.firstSet[s.key] {
			a.firstSet[s.key] = s.start
		}
	}
	return a
}

// untouched reports whether the key of get s still had only its prefilled
// value to give: no set of the load had been sent for it before s.
func (a *analysis) untouched(s *sample) bool { return a.firstSet[s.key] >= s.start }

// setRec is one set of a key, from the prefill or the load.
type setRec struct {
	version    uint64
	start, end int64
	stored     bool
}

// findStale marks every hit that returned a value older than a confirmed
// write the client could already have seen: some set w of the same key
// returned STORED before the get was sent, and w was sent after the set
// of the returned value had ended. Concurrent sets are never counted. It
// also marks the hits that returned the value of a set that failed.
func (a *analysis) findStale() (stale, unacked []bool) {
	sets := map[int32][]setRec{}
	for i := range a.samples {
		s := &a.samples[i]
		if s.op == opSet && (s.out == outStored || s.out == outServerError || s.out == outClientError) {
			sets[s.key] = append(sets[s.key], setRec{version: s.version, start: s.start, end: s.end(), stored: s.out == outStored})
		}
	}
	stale = make([]bool, len(a.samples))
	unacked = make([]bool, len(a.samples))
	for i := range a.samples {
		s := &a.samples[i]
		if s.op != opGet || s.out != outHit {
			continue
		}
		recs := sets[s.key]
		if len(recs) == 0 {
			continue
		}
		// The end of the set that wrote the value read; the prefill (version
		// 0) ended before the load began.
		var written int64
		found := s.version == 0
		if found {
			written = a.m.prefillEnd
		}
		for _, r := range recs {
			if r.version == s.version {
				written, found = r.end, true
				unacked[i] = !r.stored
				break
			}
		}
		if !found {
			continue // written outside the load (e.g. by a check)
		}
		for _, r := range recs {
			if r.stored && r.start > written && r.end < s.start {
				stale[i] = true
				break
			}
		}
	}
	return stale, unacked
}

// owner returns which backend held key k after the prefill.
func (a *analysis) owner(k int32) string {
	switch o := a.ks.owner[k]; {
	case o == 0:
		return "victim"
	case o > 0:
		return "survivor"
	case o == ownerMany:
		return "several"
	default:
		return "unsampled"
	}
}

// window summarises the samples that started in [from, to).
func (a *analysis) window(name string, from, to int64) Window {
	w := Window{Name: name, FromS: a.m.rel(from), ToS: a.m.rel(to)}
	lo := sort.Search(len(a.samples), func(i int) bool { return a.samples[i].start >= from })
	var h bench.Histogram
	timeout := a.cfg.BackendTimeout.Nanoseconds()
	for i := lo; i < len(a.samples) && a.samples[i].start < to; i++ {
		s := &a.samples[i]
		w.Requests++
		h.Record(time.Duration(s.latency))
		if s.latency > timeout {
			w.OverTimeout++
		}
		if s.op == opGet {
			w.Gets++
		} else {
			w.Sets++
		}
		switch s.out {
		case outHit:
			w.Hits++
		case outMiss:
			w.Misses++
		case outStored:
			w.Stored++
		case outServerError:
			w.ServerErrors++
		case outClientError:
			w.ClientErrors++
		default:
			w.BadReplies++
		}
		if a.stale[i] {
			w.Stale++
		}
		if a.unacked[i] {
			w.UnackedReads++
		}
		if s.op == opGet && (s.out == outHit || s.out == outMiss) && a.untouched(s) {
			hit := 0
			if s.out == outHit {
				hit = 1
			}
			w.UntouchedGets++
			w.UntouchedHits += hit
			switch o := a.ks.owner[s.key]; {
			case o == 0:
				w.VictimGets++
				w.VictimHits += hit
			case o > 0:
				w.SurvivorGets++
				w.SurvivorHits += hit
			}
		}
	}
	if d := to - from; d > 0 {
		w.OpsPerSec = float64(w.Requests) / (float64(d) / 1e9)
	}
	w.P50MS = ms(h.Quantile(0.50))
	w.P99MS = ms(h.Quantile(0.99))
	w.P999MS = ms(h.Quantile(0.999))
	w.MaxMS = ms(h.Max())
	w.HitRatioVictim = ratio(w.VictimHits, w.VictimGets)
	w.HitRatioSurvivors = ratio(w.SurvivorHits, w.SurvivorGets)
	w.HitRatio = ratio(w.Hits, w.Hits+w.Misses)
	w.HitRatioUntouched = ratio(w.UntouchedHits, w.UntouchedGets)
	return w
}

func ratio(n, d int) *float64 {
	if d == 0 {
		return nil
	}
	r := float64(n) / float64(d)
	return &r
}

// windows cuts the load at the failure, the ejection, the recovery and the
// re-adding, in the order they happened.
func (a *analysis) windows() []Window {
	m := &a.m
	type cut struct {
		name string
		at   int64
	}
	failName, recName := "fail->eject", "recover->readd"
	if !m.ejected {
		failName = "failed, in ring"
	}
	if !m.readded {
		recName = "recovered"
	}
	cuts := []cut{{"steady", m.loadStart}, {failName, m.fail}, {recName, m.recover}}
	if m.ejected {
		cuts = append(cuts, cut{"ejected", m.eject})
	}
	if m.readded {
		cuts = append(cuts, cut{"readded", m.readd})
	}
	sort.SliceStable(cuts, func(i, j int) bool { return cuts[i].at < cuts[j].at })
	var ws []Window
	for i, c := range cuts {
		end := m.loadEnd
		if i+1 < len(cuts) {
			end = cuts[i+1].at
		}
		if end > c.at {
			ws = append(ws, a.window(c.name, c.at, end))
		}
	}
	return ws
}

// slowest returns the slowest request that started at or after from.
func (a *analysis) slowest(from int64) *Request {
	best := -1
	for i := range a.samples {
		s := &a.samples[i]
		if s.start >= from && (best < 0 || s.latency > a.samples[best].latency) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	s := &a.samples[best]
	return &Request{
		LatencyMS: ms(time.Duration(s.latency)),
		AtS:       a.m.rel(s.start),
		Op:        s.op.String(),
		Key:       a.ks.names[s.key],
		Owner:     a.owner(s.key),
		Outcome:   s.out.String(),
	}
}

// timeline counts requests and errors per timelineStep, aligned on the
// failure; only whole steps inside the load are kept.
func (a *analysis) timeline() []Bucket {
	step := timelineStep.Nanoseconds()
	first := a.m.fail - ((a.m.fail-a.m.loadStart)/step)*step
	n := int((a.m.loadEnd - first) / step)
	if n <= 0 || n > 100000 {
		return nil
	}
	bs := make([]Bucket, n)
	for i := range bs {
		bs[i].AtS = a.m.rel(first + int64(i)*step)
	}
	for i := range a.samples {
		s := &a.samples[i]
		if s.start < first {
			continue
		}
		j := int((s.start - first) / step)
		if j >= n {
			continue
		}
		bs[j].Requests++
		if s.out == outServerError || s.out == outClientError || s.out == outBadReply {
			bs[j].Errors++
		}
	}
	return bs
}
