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
	Workload string  `json:"workload"`
	Target   string  `json:"target"` // memcached, twemproxy, mcproxy, ...
	Round    int     `json:"round"`
	Run      Summary `json:"run"`
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
	HasProc                        bool
	KeysPerSecMin, KeysPerSecMax   float64
	CPUUSPerKeyMin, CPUUSPerKeyMax float64
}

// WorkloadMedians is every target's medians for one workload, in the order
// the targets first appear in the results.
type WorkloadMedians struct {
	Workload string
	Targets  []TargetMedians
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

// Medians groups runs by workload and target and takes the median of each
// figure over the rounds. Medians of several alternating rounds are what the
// comparison reports: one noisy round moves a median little.
func Medians(runs []CompareRun) []WorkloadMedians {
	var out []WorkloadMedians
	index := map[string]int{}
	byKey := map[[2]string][]Summary{}
	var order [][2]string
	for _, r := range runs {
		if _, ok := index[r.Workload]; !ok {
			index[r.Workload] = len(out)
			out = append(out, WorkloadMedians{Workload: r.Workload})
		}
		k := [2]string{r.Workload, r.Target}
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], r.Run)
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
		t := TargetMedians{Target: k[1], Rounds: len(ss), HasProc: ss[0].CPUSeconds > 0 || ss[0].WatchedSyscalls > 0}
		t.KeysPerSec, t.KeysPerSecMin, t.KeysPerSecMax = pick(func(s Summary) float64 { return s.KeysPerSec })
		t.P50US, _, _ = pick(func(s Summary) float64 { return s.P50US })
		t.P99US, _, _ = pick(func(s Summary) float64 { return s.P99US })
		t.P999US, _, _ = pick(func(s Summary) float64 { return s.P999US })
		t.CPUUSPerKey, t.CPUUSPerKeyMin, t.CPUUSPerKeyMax = pick(func(s Summary) float64 { return s.CPUUSPerKey })
		t.SyscallsPerOp, _, _ = pick(func(s Summary) float64 { return s.SyscallsPerOp })
		for _, s := range ss {
			t.Errors += s.Errors
		}
		w := &out[index[k[0]]]
		w.Targets = append(w.Targets, t)
	}
	return out
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

// WriteCompareMarkdown writes the tables of a comparison: per workload, each
// target's medians, then mcproxy's ratios against twemproxy and memcached,
// and the latency each proxy adds over direct memcached.
func WriteCompareMarkdown(w io.Writer, ws []WorkloadMedians) error {
	bw := bufio.NewWriter(w)
	for _, wl := range ws {
		fmt.Fprintf(bw, "\n#### %s\n\n", wl.Workload)
		fmt.Fprintln(bw, "| target | keys/s | p50 µs | p99 µs | p99.9 µs | CPU µs/key | syscalls/req | errors |")
		fmt.Fprintln(bw, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		for _, t := range wl.Targets {
			cpu, sys := "–", "–"
			if t.HasProc {
				cpu, sys = fmt.Sprintf("%.2f", t.CPUUSPerKey), fmt.Sprintf("%.2f", t.SyscallsPerOp)
			}
			fmt.Fprintf(bw, "| %s | %.0f | %.1f | %.1f | %.1f | %s | %s | %d |\n",
				t.Target, t.KeysPerSec, t.P50US, t.P99US, t.P999US, cpu, sys, t.Errors)
		}
		direct, hasDirect := wl.Target("memcached")
		tw, hasTw := wl.Target("twemproxy")
		fmt.Fprintln(bw)
		for _, t := range wl.Targets {
			if t.Target == "memcached" || t.Target == "twemproxy" {
				continue
			}
			if hasTw {
				fmt.Fprintf(bw, "- %s / twemproxy: keys/s ×%.2f, CPU per key ×%.2f, p99 ×%.2f\n", t.Target,
					ratio(t.KeysPerSec, tw.KeysPerSec), ratio(t.CPUUSPerKey, tw.CPUUSPerKey), ratio(t.P99US, tw.P99US))
			}
			if hasDirect {
				fmt.Fprintf(bw, "- %s / memcached: keys/s ×%.2f\n", t.Target, ratio(t.KeysPerSec, direct.KeysPerSec))
			}
		}
		if hasDirect {
			for _, t := range wl.Targets {
				if t.Target == "memcached" {
					continue
				}
				fmt.Fprintf(bw, "- latency %s adds over memcached: p50 %+.1f µs, p99 %+.1f µs\n",
					t.Target, t.P50US-direct.P50US, t.P99US-direct.P99US)
			}
		}
	}
	return bw.Flush()
}

// chartColors gives each target a fixed colour in the chart.
var chartColors = []string{"#8c8c8c", "#e6a23c", "#2f7ed8", "#7cb342", "#ab47bc"}

// WriteCompareSVG draws two panels of grouped bars, one group per workload:
// keys/s and proxy CPU per key, each relative to twemproxy (twemproxy = 1).
// A reader sees at a glance where mcproxy stands against the proxy users
// know. Workloads without twemproxy are left out.
func WriteCompareSVG(w io.Writer, ws []WorkloadMedians) error {
	var shown []WorkloadMedians
	var targets []string
	seen := map[string]bool{}
	for _, wl := range ws {
		if _, ok := wl.Target("twemproxy"); !ok {
			continue
		}
		shown = append(shown, wl)
		for _, t := range wl.Targets {
			if t.Target != "memcached" && !seen[t.Target] {
				seen[t.Target] = true
				targets = append(targets, t.Target)
			}
		}
	}
	const (
		panelW, panelH = 760, 260
		left, top      = 60, 40
		barW, gap      = 30, 28
	)
	type panel struct {
		title string
		value func(TargetMedians, TargetMedians) float64
	}
	panels := []panel{
		{"keys/s relative to twemproxy (higher is better)", func(t, tw TargetMedians) float64 { return ratio(t.KeysPerSec, tw.KeysPerSec) }},
		{"proxy CPU per key relative to twemproxy (lower is better)", func(t, tw TargetMedians) float64 { return ratio(t.CPUUSPerKey, tw.CPUUSPerKey) }},
	}
	height := len(panels)*(panelH+top+60) + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", panelW+left+20, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for pi, p := range panels {
		y0 := 20 + pi*(panelH+top+60)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", left, y0+16, p.title)
		// Scale: 0 .. the largest value, at least 1.5.
		maxV := 1.5
		for _, wl := range shown {
			tw, _ := wl.Target("twemproxy")
			for _, t := range wl.Targets {
				if t.Target == "memcached" {
					continue // not drawn
				}
				if v := p.value(t, tw); !math.IsNaN(v) && v > maxV {
					maxV = v
				}
			}
		}
		maxV = math.Ceil(maxV*4) / 4
		baseY := y0 + top + panelH
		yOf := func(v float64) float64 { return float64(baseY) - v/maxV*float64(panelH) }
		for v := 0.0; v <= maxV+1e-9; v += 0.25 {
			y := yOf(v)
			stroke := "#e0e0e0"
			if v == 1 {
				stroke = "#555"
			}
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", left, y, left+panelW, y, stroke)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.2f</text>`+"\n", left-6, y+4, v)
		}
		groupW := len(targets)*barW + gap
		for gi, wl := range shown {
			tw, _ := wl.Target("twemproxy")
			x := left + 20 + gi*max(groupW, panelW/max(len(shown), 1))
			for ti, name := range targets {
				t, ok := wl.Target(name)
				if !ok {
					continue
				}
				v := p.value(t, tw)
				if math.IsNaN(v) {
					continue
				}
				bx := x + ti*barW
				fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s %s: %.2f</title></rect>`+"\n",
					bx, yOf(v), barW-2, float64(baseY)-yOf(v), chartColors[ti%len(chartColors)], wl.Workload, name, v)
				fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="middle" font-size="9">%.2f</text>`+"\n", bx+barW/2-1, yOf(v)-3, v)
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="start" font-size="10">%s</text>`+"\n", x, baseY+14, escapeXML(shortWorkload(wl.Workload)))
		}
	}
	ly := height - 18
	for ti, name := range targets {
		x := left + ti*130
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, ly-10, chartColors[ti%len(chartColors)], x+16, ly, escapeXML(name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// shortWorkload keeps a workload's label within its bar group.
func shortWorkload(s string) string {
	if len(s) > 28 {
		return s[:27] + "…"
	}
	return s
}

func escapeXML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
