package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeRuns writes runs as scripts/compare.sh does, one JSON line each, and
// reads them back.
func writeRuns(t *testing.T, runs []CompareRun) []CompareRun {
	t.Helper()
	var lines []string
	for _, r := range runs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	path := filepath.Join(t.TempDir(), "results.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCompareRuns(path)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func run(place, wl, target string, round int, keys, cpu, p99 float64) CompareRun {
	return CompareRun{Placement: place, Workload: wl, Target: target, Round: round,
		Run: Summary{KeysPerSec: keys, CPUUSPerKey: cpu, P99US: p99, CPUSeconds: 1, WatchedSyscalls: 10, SyscallsPerOp: 0.5}}
}

func loops(r CompareRun, n int) CompareRun {
	r.EventLoops = n
	return r
}

// The efficient configuration is the one with the least CPU per key, unless
// the two are within choiceTie or run the same loops.
func TestEfficientConfig(t *testing.T) {
	wl := func(cpuDefault, cpu1 float64, loopsDefault int) WorkloadMedians {
		return WorkloadMedians{Targets: []TargetMedians{
			{Target: "twemproxy", CPUUSPerKey: 10, HasProc: true},
			{Target: "mcproxy", CPUUSPerKey: cpuDefault, HasProc: true, EventLoops: loopsDefault},
			{Target: "mcproxy-1loop", CPUUSPerKey: cpu1, HasProc: true, EventLoops: 1},
		}}
	}
	for _, c := range []struct {
		w    WorkloadMedians
		want string
	}{
		{wl(8, 6, 2), "**`event_loops: 1`** (CPU per key ×0.75 of defaults)"},
		{wl(6, 8, 2), "**defaults** (CPU per key ×0.75 of `event_loops: 1`)"},
		{wl(8, 7.7, 2), "either: CPU per key within 5%"},
		{wl(8, 6, 1), "either: both run 1 event loop here"},
		{wl(8, 6, 0), "**`event_loops: 1`** (CPU per key ×0.75 of defaults)"},
		{WorkloadMedians{Targets: wl(8, 6, 2).Targets[:2]}, ""},
	} {
		if got := efficientConfig(c.w); got != c.want {
			t.Errorf("efficientConfig(%+v) = %q, want %q", c.w.Targets, got, c.want)
		}
	}
}

// countRects checks that svg is well-formed XML and counts its rect elements.
func countRects(t *testing.T, svg []byte) int {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	rects := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return rects
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
}

func TestMediansAndReport(t *testing.T) {
	var runs []CompareRun
	// Three rounds; the middle value is the median, whatever the order.
	// Pinned, both configurations run one loop; unpinned, the defaults run
	// two and one loop spends less CPU per key.
	for r, k := range []float64{100, 300, 200} {
		for _, place := range []string{"pinned", "unpinned"} {
			runs = append(runs,
				run(place, "single get", "memcached", r+1, 4*k, 1, 50),
				run(place, "single get", "twemproxy", r+1, k, 10, 100),
				loops(run(place, "single get", "mcproxy", r+1, 1.5*k, 7, 90), map[string]int{"pinned": 1, "unpinned": 2}[place]))
		}
		runs = append(runs,
			loops(run("pinned", "single get", "mcproxy-1loop", r+1, 1.5*k, 6.5, 90), 1),
			loops(run("unpinned", "single get", "mcproxy-1loop", r+1, 1.2*k, 5, 80), 1))
	}
	ws := Medians(writeRuns(t, runs))
	if len(ws) != 2 || ws[0].Placement != "pinned" || ws[1].Placement != "unpinned" || len(ws[0].Targets) != 4 {
		t.Fatalf("medians: %+v", ws)
	}
	mp, _ := ws[0].Target("mcproxy")
	if mp.KeysPerSec != 300 || mp.Rounds != 3 || mp.KeysPerSecMin != 150 || mp.KeysPerSecMax != 450 {
		t.Errorf("mcproxy medians: %+v", mp)
	}
	var md bytes.Buffer
	if err := WriteCompareMarkdown(&md, ws); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	for _, want := range []string{
		"| single get | pinned | ×0.70, ×1.50, ×0.90 | ×0.65, ×1.50, ×0.90 | either: both run 1 event loop here |",
		"| single get | unpinned | ×0.70, ×1.50, ×0.90 | ×0.50, ×1.20, ×0.80 | **`event_loops: 1`** (CPU per key ×0.71 of defaults) |",
		"## Pinned", "## Unpinned",
		"| mcproxy (2 loops) | 300 |", "| mcproxy-1loop (1 loop) | 240 |", "mcproxy / twemproxy: keys/s ×1.50, CPU per key ×0.70, p99 ×0.90",
		"mcproxy-1loop / twemproxy: keys/s ×1.20, CPU per key ×0.50, p99 ×0.80",
		"latency mcproxy adds over memcached: p50 +0.0 µs, p99 +40.0 µs",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	// The verdict comes before the sections, pinned before unpinned.
	if v, p, u := strings.Index(out, "efficient on this machine"), strings.Index(out, "## Pinned"), strings.Index(out, "## Unpinned"); !(v < p && p < u) {
		t.Errorf("sections out of order (verdict %d, pinned %d, unpinned %d):\n%s", v, p, u, out)
	}
	var svg bytes.Buffer
	if err := WriteCompareSVG(&svg, ws); err != nil {
		t.Fatal(err)
	}
	// background + 2 placements x 2 panels x 3 drawn targets + 3 legend swatches
	if n := countRects(t, svg.Bytes()); n != 1+12+3 {
		t.Errorf("chart has %d rects, want 16", n)
	}
	for _, want := range []string{"pinned: keys/s", "unpinned: proxy CPU per key"} {
		if !strings.Contains(svg.String(), want) {
			t.Errorf("chart lacks panel %q", want)
		}
	}
}

// A results file from before placements (no "placement" field, one mcproxy)
// still reports: one section without a placement heading and no verdict.
func TestReportWithoutPlacements(t *testing.T) {
	var runs []CompareRun
	for r := 1; r <= 3; r++ {
		runs = append(runs,
			run("", "single get", "memcached", r, 400, 1, 50),
			run("", "single get", "twemproxy", r, 100, 10, 100),
			run("", "single get", "mcproxy", r, 150, 7, 90))
	}
	ws := Medians(writeRuns(t, runs))
	var md bytes.Buffer
	if err := WriteCompareMarkdown(&md, ws); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	if !strings.Contains(out, "mcproxy / twemproxy: keys/s ×1.50, CPU per key ×0.70, p99 ×0.90") {
		t.Errorf("markdown lacks the ratios:\n%s", out)
	}
	if strings.Contains(out, "\n## ") || strings.Contains(out, "efficient choice") {
		t.Errorf("markdown has a placement section or a verdict:\n%s", out)
	}
	var svg bytes.Buffer
	if err := WriteCompareSVG(&svg, ws); err != nil {
		t.Fatal(err)
	}
	// background + 2 panels x 2 proxies + 2 legend swatches
	if n := countRects(t, svg.Bytes()); n != 1+4+2 {
		t.Errorf("chart has %d rects, want 7", n)
	}
}

// The round-by-round spread against twemproxy pairs each round with
// twemproxy's same round, not medians with medians, and shows the middle
// half of the ratios; with fewer than four rounds it is left out.
func TestRoundRatiosAgainstTwemproxy(t *testing.T) {
	var runs []CompareRun
	// twemproxy's keys/s swings from round to round; mcproxy's ratio to it
	// in the same round is 1.0, 1.1, 1.2, 1.3, 1.4 (rounds listed out of order).
	for i, r := range []int{3, 1, 5, 2, 4} {
		tw := float64(100 * (i + 1))
		f := 0.9 + 0.1*float64(r)
		runs = append(runs,
			run("unpinned", "single get", "twemproxy", r, tw, 10, 100),
			run("unpinned", "single get", "mcproxy", r, tw*f, 10/f, 100*f))
	}
	ws := Medians(writeRuns(t, runs))
	mp, _ := ws[0].Target("mcproxy")
	got := mp.VsTwemproxy
	if got.Rounds != 5 || !near(got.KeysPerSec[0], 1.1) || !near(got.KeysPerSec[1], 1.3) ||
		!near(got.CPU[0], 1/1.3) || !near(got.CPU[1], 1/1.1) || !near(got.P99[0], 1.1) || !near(got.P99[1], 1.3) {
		t.Errorf("round ratios: %+v", got)
	}
	if tw, _ := ws[0].Target("twemproxy"); tw.VsTwemproxy.Rounds != 0 {
		t.Errorf("twemproxy compared with itself: %+v", tw.VsTwemproxy)
	}
	var md bytes.Buffer
	if err := WriteCompareMarkdown(&md, ws); err != nil {
		t.Fatal(err)
	}
	if want := "round by round, middle half of 5: keys/s ×1.10–×1.30, CPU per key ×0.77–×0.91, p99 ×1.10–×1.30"; !strings.Contains(md.String(), want) {
		t.Errorf("markdown lacks %q:\n%s", want, md.String())
	}

	// Three rounds: no middle half worth the name, no note.
	ws = Medians(writeRuns(t, runs[:6]))
	md.Reset()
	if err := WriteCompareMarkdown(&md, ws); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(md.String(), "round by round") {
		t.Errorf("a spread over 3 rounds:\n%s", md.String())
	}
}

func near(a, b float64) bool { return a > b-1e-9 && a < b+1e-9 }

// Runs with the new-client probe get its medians in two more columns, and
// its failures among the errors; a target without it gets dashes.
func TestReportNewClients(t *testing.T) {
	var runs []CompareRun
	for r, p50 := range []float64{900, 1100, 1000} {
		tw := run("unpinned", "single get", "twemproxy", r+1, 100, 10, 100)
		tw.Run.NewClients, tw.Run.NewClientP50US, tw.Run.NewClientP99US = 50, p50, 3*p50
		mp := run("unpinned", "single get", "mcproxy", r+1, 100, 10, 100)
		mp.Run.NewClients, mp.Run.NewClientP50US, mp.Run.NewClientP99US, mp.Run.NewClientErrors = 49, p50/10, p50/5, 1
		runs = append(runs, tw, mp, run("unpinned", "single get", "memcached", r+1, 100, 10, 100))
	}
	var md bytes.Buffer
	if err := WriteCompareMarkdown(&md, Medians(writeRuns(t, runs))); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| errors | new client p50 µs | new client p99 µs |",
		"| twemproxy | 100 | 0.0 | 100.0 | 0.0 | 10.00 | 0.50 | 0 | 1000 | 3000 |",
		"| mcproxy | 100 | 0.0 | 100.0 | 0.0 | 10.00 | 0.50 | 3 | 100 | 200 |",
		"| memcached | 100 | 0.0 | 100.0 | 0.0 | 10.00 | 0.50 | 0 | – | – |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}
