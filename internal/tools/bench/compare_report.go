package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
)

// CompareRun is one line of a side-by-side comparison's results file: one
// mcbench run of one target in one round of one workload. scripts/compare.sh
// writes them; LoadCompareRuns reads them back.
type CompareRun struct {
	// Placement is how the processes shared the CPUs: "pinned" (mcbench on
	// CPU 0, servers on the others) or "unpinned"; "" in files from before
	// the script measured both.
	Placement string `json:"placement,omitempty"`
	Workload  string `json:"workload"`
	Target    string `json:"target"` // memcached, twemproxy, mcproxy, mcproxy-1loop, ...
	Round     int    `json:"round"`
	// EventLoops is the number of event loops an mcproxy target runs, as the
	// script resolved its config in this placement; 0 for other targets.
	EventLoops int     `json:"event_loops,omitempty"`
	Run        Summary `json:"run"`
}

// LoadCompareRuns reads a results file of one JSON CompareRun per line.
func LoadCompareRuns(path string) ([]CompareRun, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read results: %w", err)
	}
	defer f.Close()
	var runs []CompareRun
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r CompareRun
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("read results %s line %d: %w", path, line, err)
		}
		runs = append(runs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read results %s: %w", path, err)
	}
	return runs, nil
}

// TargetMedians is one target's medians over the rounds of one workload.
type TargetMedians struct {
	Target                         string
	Rounds                         int
	KeysPerSec                     float64
	P50US, P99US, P999US           float64
	CPUUSPerKey, SyscallsPerOp     float64
	Errors                         uint64 // summed over rounds
	EventLoops                     int    // mcproxy's loops, 0 when not known
	HasProc                        bool
	KeysPerSecMin, KeysPerSecMax   float64
	CPUUSPerKeyMin, CPUUSPerKeyMax float64
	// NewClientP50US and NewClientP99US are the medians of the new-client
	// probe's quantiles (new_clients.go); NewClients is false when the
	// runs had no probe.
	NewClients                     bool
	NewClientP50US, NewClientP99US float64
	// VsTwemproxy is how this target's figures compare with twemproxy's
	// round by round; Rounds is 0 when twemproxy did not run beside it.
	VsTwemproxy RoundRatios
}

// RoundRatios is how one target's figures compare with another's round by
// round: for each figure, the middle half of the per-round ratios (first to
// third quartile). A ratio of medians hides how far one round falls from
// the next on a shared machine; this shows whether a bound a median misses
// or meets is beyond that spread.
type RoundRatios struct {
	Rounds               int        // rounds both targets ran
	KeysPerSec, CPU, P99 [2]float64 // low and high of the middle half
}

// WorkloadMedians is every target's medians for one workload in one
// placement, in the order the targets first appear in the results.
type WorkloadMedians struct {
	Placement string
	Workload  string
	Targets   []TargetMedians
}

// Target returns the medians of name, or false.
func (w WorkloadMedians) Target(name string) (TargetMedians, bool) {
	for _, t := range w.Targets {
		if t.Target == name {
			return t, true
		}
	}
	return TargetMedians{}, false
}

// Medians groups runs by placement, workload and target and takes the median
// of each figure over the rounds. Medians of several alternating rounds are
// what the comparison reports: one noisy round moves a median little.
func Medians(runs []CompareRun) []WorkloadMedians {
	var out []WorkloadMedians
	index := map[[2]string]int{}
	byKey := map[[3]string][]Summary{}
	byRound := map[[3]string]map[int]Summary{}
	loops := map[[3]string]int{}
	var order [][3]string
	for _, r := range runs {
		wk := [2]string{r.Placement, r.Workload}
		if _, ok := index[wk]; !ok {
			index[wk] = len(out)
			out = append(out, WorkloadMedians{Placement: r.Placement, Workload: r.Workload})
		}
		k := [3]string{r.Placement, r.Workload, r.Target}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], r.Run)
		if byRound[k] == nil {
			byRound[k] = map[int]Summary{}
		}
		byRound[k][r.Round] = r.Run
		loops[k] = r.EventLoops
	}
	for _, k := range order {
		ss := byKey[k]
		pick := func(f func(Summary) float64) (med, lo, hi float64) {
			v := make([]float64, len(ss))
			for i, s := range ss {
				v[i] = f(s)
			}
			sort.Float64s(v)
			return median(v), v[0], v[len(v)-1]
		}
		t := TargetMedians{Target: k[2], Rounds: len(ss), HasProc: ss[0].CPUSeconds > 0 || ss[0].WatchedSyscalls > 0,
			EventLoops: loops[k]}
		t.KeysPerSec, t.KeysPerSecMin, t.KeysPerSecMax = pick(func(s Summary) float64 { return s.KeysPerSec })
		t.P50US, _, _ = pick(func(s Summary) float64 { return s.P50US })
		t.P99US, _, _ = pick(func(s Summary) float64 { return s.P99US })
		t.P999US, _, _ = pick(func(s Summary) float64 { return s.P999US })
		t.CPUUSPerKey, t.CPUUSPerKeyMin, t.CPUUSPerKeyMax = pick(func(s Summary) float64 { return s.CPUUSPerKey })
		t.SyscallsPerOp, _, _ = pick(func(s Summary) float64 { return s.SyscallsPerOp })
		t.NewClients = ss[0].NewClients > 0
		t.NewClientP50US, _, _ = pick(func(s Summary) float64 { return s.NewClientP50US })
		t.NewClientP99US, _, _ = pick(func(s Summary) float64 { return s.NewClientP99US })
		for _, s := range ss {
			t.Errors += s.Errors + s.NewClientErrors
		}
		if k[2] != "twemproxy" {
			t.VsTwemproxy = roundRatios(byRound[k], byRound[[3]string{k[0], k[1], "twemproxy"}])
		}
		w := &out[index[[2]string{k[0], k[1]}]]
		w.Targets = append(w.Targets, t)
	}
	return out
}

// roundRatios compares a target's rounds with base's, round by round.
func roundRatios(rounds, base map[int]Summary) RoundRatios {
	var keys, cpu, p99 []float64
	for round, s := range rounds {
		b, ok := base[round]
		if !ok {
			continue
		}
		keys = append(keys, ratio(s.KeysPerSec, b.KeysPerSec))
		cpu = append(cpu, ratio(s.CPUUSPerKey, b.CPUUSPerKey))
		p99 = append(p99, ratio(s.P99US, b.P99US))
	}
	return RoundRatios{Rounds: len(keys), KeysPerSec: middleHalf(keys), CPU: middleHalf(cpu), P99: middleHalf(p99)}
}

// middleHalf returns the first and third quartiles of v (sorted in place),
// as the values at a quarter of the way in from each end.
func middleHalf(v []float64) [2]float64 {
	if len(v) == 0 {
		return [2]float64{}
	}
	sort.Float64s(v)
	q := len(v) / 4
	return [2]float64{v[q], v[len(v)-1-q]}
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// ratio returns a/b, or NaN when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// WriteCompareMarkdown writes the tables of a comparison: first which mcproxy
// configuration is the efficient one per workload and placement, then per
// placement and workload each target's medians, each mcproxy's ratios against
// twemproxy and memcached, and the latency each proxy adds over direct
// memcached.
func WriteCompareMarkdown(w io.Writer, ws []WorkloadMedians) error {
	bw := bufio.NewWriter(w)
	writeChoices(bw, ws)
	places := placements(ws)
	for _, place := range places {
		if place != "" {
			fmt.Fprintf(bw, "\n## %s\n", placementTitle(place))
		}
		for _, wl := range ws {
			if wl.Placement == place {
				writeWorkloadMedians(bw, wl)
			}
		}
	}
	return bw.Flush()
}

// writeWorkloadMedians writes one workload's table and ratios.
func writeWorkloadMedians(bw *bufio.Writer, wl WorkloadMedians) {
	fmt.Fprintf(bw, "\n### %s\n\n", wl.Workload)
	probed := false
	for _, t := range wl.Targets {
		probed = probed || t.NewClients
	}
	head, rule := "| target | keys/s | p50 µs | p99 µs | p99.9 µs | CPU µs/key | syscalls/req | errors |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	if probed {
		head, rule = head+" new client p50 µs | new client p99 µs |", rule+" ---: | ---: |"
	}
	fmt.Fprintln(bw, head)
	fmt.Fprintln(bw, rule)
	for _, t := range wl.Targets {
		cpu, sys := "–", "–"
		if t.HasProc {
			cpu, sys = fmt.Sprintf("%.2f", t.CPUUSPerKey), fmt.Sprintf("%.2f", t.SyscallsPerOp)
		}
		fmt.Fprintf(bw, "| %s | %.0f | %.1f | %.1f | %.1f | %s | %s | %d |",
			targetLabel(t), t.KeysPerSec, t.P50US, t.P99US, t.P999US, cpu, sys, t.Errors)
		switch {
		case t.NewClients:
			fmt.Fprintf(bw, " %.0f | %.0f |", t.NewClientP50US, t.NewClientP99US)
		case probed:
			fmt.Fprint(bw, " – | – |")
		}
		fmt.Fprintln(bw)
	}
	tw, hasTw := wl.Target("twemproxy")
	fmt.Fprintln(bw)
	for _, t := range wl.Targets {
		if t.Target == "memcached" || t.Target == directTLS || t.Target == "twemproxy" {
			continue
		}
		dname := directOf(t.Target)
		direct, hasDirect := wl.Target(dname)
		if dname == directTLS {
			// twemproxy has no TLS: a TLS target is measured against
			// memcached's own TLS, CPU per key being the proxy's own.
			if hasDirect {
				fmt.Fprintf(bw, "- %s / %s: keys/s ×%.2f; the proxy's CPU per key %.2f µs beside memcached's %.2f µs\n",
					t.Target, dname, ratio(t.KeysPerSec, direct.KeysPerSec), t.CPUUSPerKey, direct.CPUUSPerKey)
			}
			continue
		}
		if hasTw {
			fmt.Fprintf(bw, "- %s / twemproxy: keys/s ×%.2f, CPU per key ×%.2f, p99 ×%.2f%s\n", t.Target,
				ratio(t.KeysPerSec, tw.KeysPerSec), ratio(t.CPUUSPerKey, tw.CPUUSPerKey), ratio(t.P99US, tw.P99US),
				spreadNote(t.VsTwemproxy))
		}
		if hasDirect {
			fmt.Fprintf(bw, "- %s / memcached: keys/s ×%.2f\n", t.Target, ratio(t.KeysPerSec, direct.KeysPerSec))
		}
	}
	for _, t := range wl.Targets {
		dname := directOf(t.Target)
		if direct, ok := wl.Target(dname); ok && t.Target != dname {
			fmt.Fprintf(bw, "- latency %s adds over %s: p50 %+.1f µs, p99 %+.1f µs\n",
				t.Target, dname, t.P50US-direct.P50US, t.P99US-direct.P99US)
		}
	}
}

// spreadNote says how far the per-round ratios spread, when there are
// enough rounds for a middle half to differ from the extremes.
func spreadNote(r RoundRatios) string {
	if r.Rounds < 4 {
		return ""
	}
	return fmt.Sprintf("; round by round, middle half of %d: keys/s ×%.2f–×%.2f, CPU per key ×%.2f–×%.2f, p99 ×%.2f–×%.2f",
		r.Rounds, r.KeysPerSec[0], r.KeysPerSec[1], r.CPU[0], r.CPU[1], r.P99[0], r.P99[1])
}

// directTLS is the comparison's memcached -Z target, addressed directly.
const directTLS = "memcached-tls"

// directOf names the direct memcached a target is measured against: the
// TLS one for TLS targets (named "...-tls"), else the clear-text one.
func directOf(target string) string {
	if strings.HasSuffix(target, "-tls") {
		return directTLS
	}
	return "memcached"
}

// targetLabel names a target in a table, with its event loops when known.
func targetLabel(t TargetMedians) string {
	if t.EventLoops == 0 {
		return t.Target
	}
	return fmt.Sprintf("%s (%s)", t.Target, plural(t.EventLoops, "loop"))
}

// placements lists the placements of ws in the order they first appear.
func placements(ws []WorkloadMedians) []string {
	return distinct(ws, func(wl WorkloadMedians) string { return wl.Placement })
}

// distinct lists the values of key over ws in the order they first appear.
func distinct(ws []WorkloadMedians, key func(WorkloadMedians) string) []string {
	var out []string
	seen := map[string]bool{}
	for _, wl := range ws {
		if k := key(wl); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// placementTitle names a placement in headings; scripts/compare.sh and the
// page's header say how each places the processes.
func placementTitle(place string) string {
	switch place {
	case "pinned":
		return "Pinned (mcbench on CPU 0, servers on the others)"
	case "unpinned":
		return "Unpinned (as users deploy: no taskset)"
	}
	return place
}
