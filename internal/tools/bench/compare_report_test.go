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

func TestMediansAndReport(t *testing.T) {
	var lines []string
	add := func(wl, target string, round int, keys, cpu, p99 float64) {
		b, err := json.Marshal(CompareRun{Workload: wl, Target: target, Round: round,
			Run: Summary{KeysPerSec: keys, CPUUSPerKey: cpu, P99US: p99, CPUSeconds: 1, WatchedSyscalls: 10, SyscallsPerOp: 0.5}})
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	// Three rounds; the middle value is the median, whatever the order.
	for r, k := range []float64{100, 300, 200} {
		add("single get", "memcached", r+1, 4*k, 1, 50)
		add("single get", "twemproxy", r+1, k, 10, 100)
		add("single get", "mcproxy", r+1, 1.5*k, 7, 90)
	}
	path := filepath.Join(t.TempDir(), "results.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runs, err := LoadCompareRuns(path)
	if err != nil {
		t.Fatal(err)
	}
	ws := Medians(runs)
	if len(ws) != 1 || len(ws[0].Targets) != 3 {
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
	for _, want := range []string{"| mcproxy | 300 |", "mcproxy / twemproxy: keys/s ×1.50, CPU per key ×0.70, p99 ×0.90",
		"latency mcproxy adds over memcached: p50 +0.0 µs, p99 +40.0 µs"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var svg bytes.Buffer
	if err := WriteCompareSVG(&svg, ws); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML, with a bar per proxy per panel.
	d := xml.NewDecoder(&svg)
	rects := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	// background + 2 panels x 2 proxies + 2 legend swatches
	if rects != 1+4+2 {
		t.Errorf("chart has %d rects, want 7", rects)
	}
}
