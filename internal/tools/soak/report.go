package soak

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/mcproxy/mcproxy/internal/tools/backendwatch"
)

// maxSecondsShown bounds the per-second breakdown of stale and bogus reads.
const maxSecondsShown = 60

// Report is what one run found.
type Report struct {
	Config   Config
	Backends []string
	ProxyPID int
	Dir      string // the kept temp dir, if any
	LoadEnd  int64  // checker time the load stopped

	Sent      map[string]int64 // commands by kind
	KeysRead  int64            // keys asked for by get and gets
	Replies   map[string]int64 // answers by kind, errors aside
	Errors    map[string]int64 // errors by kind
	ErrorText map[string][]string
	LostReads int64 // keys of gets with no answer, so no verdict
	LostIncrs int64 // incrs with no answer: possibly applied, no verdict
	Unknown   int64 // writes with no answer: possibly applied

	Verdicts map[string]int64
	Reasons  map[string]int64 // stale and bogus reads by "verdict: reason"
	PerSec   map[int64]int64  // stale and bogus reads by second of the run
	Stale    []Finding
	Bogus    []Finding

	Timeline  []Event
	Proxy     ProxyView
	AllInRing bool // at the end sample

	Start, End ProcSample
	SampleErr  string
	ProxyExit  string
}

// StaleCount and BogusCount are the failures of the run.
func (r *Report) StaleCount() int64 { return r.Verdicts[VerdictStale.String()] }
func (r *Report) BogusCount() int64 { return r.Verdicts[VerdictBogus.String()] }

// Failed reports whether any read was stale or bogus.
func (r *Report) Failed() bool { return r.StaleCount() > 0 || r.BogusCount() > 0 }

// TotalSent is the number of commands sent.
func (r *Report) TotalSent() int64 {
	var n int64
	for _, v := range r.Sent {
		n += v
	}
	return n
}

// Count returns how many timeline events of source mention what.
func (r *Report) Count(source, what string) int {
	n := 0
	for _, e := range r.Timeline {
		if e.Source == source && strings.Contains(e.What, what) {
			n++
		}
	}
	return n
}

func (r *Report) fill(chk *Checker, cn *counts, mon *backendwatch.Watcher, chaos []Event) {
	r.Sent, r.Replies, r.Errors, r.ErrorText, r.Verdicts = map[string]int64{}, map[string]int64{}, map[string]int64{}, map[string][]string{}, map[string]int64{}
	for k, name := range cmdNames {
		r.Sent[name] = cn.sent[k].Load()
	}
	for k, name := range replyNames {
		r.Replies[name] = cn.replies[k].Load()
	}
	cn.mu.Lock()
	for k, name := range errNames {
		r.Errors[name] = cn.errs[k].Load()
		if len(cn.examples[k]) > 0 {
			r.ErrorText[name] = append([]string(nil), cn.examples[k]...)
		}
	}
	cn.mu.Unlock()
	r.KeysRead, r.LostReads, r.LostIncrs, r.Unknown = cn.keysRead.Load(), cn.lostReads.Load(), cn.lostIncrs.Load(), cn.failedW.Load()
	v := chk.Verdicts()
	for k := Verdict(0); k < numVerdicts; k++ {
		r.Verdicts[k.String()] = v[k]
	}
	r.Stale, r.Bogus = chk.Findings(VerdictStale), chk.Findings(VerdictBogus)
	r.Reasons, r.PerSec = chk.Reasons(), chk.PerSecond()
	events, pv := proxyTimeline(mon)
	r.Proxy = pv
	r.Timeline = append(events, chaos...)
	sort.SliceStable(r.Timeline, func(i, j int) bool { return r.Timeline[i].At < r.Timeline[j].At })
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	c := &r.Config
	fmt.Fprintf(&b, "mcsoak: %d memcached, mcproxy pid %d, %d connections x pipeline %d, %d register + %d counter keys, load %s\n",
		len(r.Backends), r.ProxyPID, c.Workload.Conns, c.Workload.Pipeline, c.Workload.RegisterKeys, c.Workload.CounterKeys,
		fmtNanos(r.LoadEnd))
	if r.Dir != "" {
		fmt.Fprintf(&b, "config and proxy log kept in %s\n", r.Dir)
	}

	b.WriteString("\ncommands sent\n")
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', tabwriter.AlignRight)
	writeCounts(tw, r.Sent, cmdNames[:])
	fmt.Fprintf(tw, "keys read by get/gets\t%d\t\n", r.KeysRead)
	fmt.Fprintf(tw, "total\t%d\t\n", r.TotalSent())
	tw.Flush()

	b.WriteString("\nanswers\n")
	tw = tabwriter.NewWriter(&b, 0, 8, 2, ' ', tabwriter.AlignRight)
	writeCounts(tw, r.Replies, replyNames[:])
	tw.Flush()

	b.WriteString("\nerrors\n")
	tw = tabwriter.NewWriter(&b, 0, 8, 2, ' ', tabwriter.AlignRight)
	writeCounts(tw, r.Errors, errNames[:])
	fmt.Fprintf(tw, "keys read with no answer (no verdict)\t%d\t\n", r.LostReads)
	fmt.Fprintf(tw, "incrs with no answer (possibly applied)\t%d\t\n", r.LostIncrs)
	fmt.Fprintf(tw, "writes with no answer (possibly applied)\t%d\t\n", r.Unknown)
	tw.Flush()
	for _, name := range errNames {
		for _, t := range r.ErrorText[name] {
			fmt.Fprintf(&b, "  %s: %s\n", name, t)
		}
	}

	b.WriteString("\nreads classified\n")
	tw = tabwriter.NewWriter(&b, 0, 8, 2, ' ', tabwriter.AlignRight)
	for k := Verdict(0); k < numVerdicts; k++ {
		fmt.Fprintf(tw, "%s\t%d\t\n", k, r.Verdicts[k.String()])
	}
	tw.Flush()
	reasons := make([]string, 0, len(r.Reasons))
	for k := range r.Reasons {
		reasons = append(reasons, k)
	}
	sort.Strings(reasons)
	for _, k := range reasons {
		fmt.Fprintf(&b, "  %s: %d\n", k, r.Reasons[k])
	}
	if len(r.PerSec) > 0 {
		secs := make([]int64, 0, len(r.PerSec))
		for s := range r.PerSec {
			secs = append(secs, s)
		}
		sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
		b.WriteString("  stale+bogus by second of the run:")
		for i, s := range secs {
			if i == maxSecondsShown {
				fmt.Fprintf(&b, " ... (%d more seconds)", len(secs)-i)
				break
			}
			if i%10 == 0 {
				b.WriteString("\n   ")
			}
			fmt.Fprintf(&b, " %ds:%d", s, r.PerSec[s])
		}
		b.WriteString("\n")
	}
	for _, fs := range [][]Finding{r.Stale, r.Bogus} {
		for i, f := range fs {
			fmt.Fprintf(&b, "  %d. %s\n", i+1, f)
		}
	}

	b.WriteString("\nbackend timeline (chaos: what mcsoak did; proxy: changes seen in stats backends)\n")
	for _, e := range r.Timeline {
		fmt.Fprintf(&b, "  %s  %-5s  %s  %s\n", fmtNanos(e.At), e.Source, e.Backend, e.What)
	}
	fmt.Fprintf(&b, "stats backends: %d polls, %d failed", r.Proxy.Polls, r.Proxy.PollErrors)
	if r.Proxy.FirstPollError != "" {
		fmt.Fprintf(&b, " (first: %s)", r.Proxy.FirstPollError)
	}
	b.WriteString("\n")
	for _, a := range r.Backends {
		fmt.Fprintf(&b, "  %s: ejections %d, readds %d, in ring at the end %v\n", a, r.Proxy.Ejections[a], r.Proxy.Readds[a], r.Proxy.InRing[a])
	}
	if !r.AllInRing {
		b.WriteString("  not every backend was back in the ring at the end sample\n")
	}

	b.WriteString("\nmcproxy footprint\n")
	fmt.Fprintf(&b, "  start %s: RSS %d KiB, %d goroutines\n", fmtNanos(r.Start.At), r.Start.RSSKiB, r.Start.Goroutines)
	if r.SampleErr != "" {
		fmt.Fprintf(&b, "  end: %s\n", r.SampleErr)
	} else {
		fmt.Fprintf(&b, "  end   %s: RSS %d KiB, %d goroutines\n", fmtNanos(r.End.At), r.End.RSSKiB, r.End.Goroutines)
	}
	fmt.Fprintf(&b, "  %s\n", r.ProxyExit)

	if r.Failed() {
		fmt.Fprintf(&b, "\nFAIL: %d stale and %d bogus reads\n", r.StaleCount(), r.BogusCount())
	} else {
		b.WriteString("\nPASS: no stale or bogus read\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeCounts(w io.Writer, m map[string]int64, order []string) {
	for _, name := range order {
		fmt.Fprintf(w, "%s\t%d\t\n", name, m[name])
	}
}
