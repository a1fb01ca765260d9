package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// chartColors gives each target a fixed colour in the chart.
var chartColors = []string{"#8c8c8c", "#e6a23c", "#2f7ed8", "#7cb342", "#ab47bc"}

// WriteCompareSVG draws, per placement, two panels of grouped bars, one group
// per workload: keys/s and proxy CPU per key, each relative to twemproxy in
// the same placement (twemproxy = 1). A reader sees at a glance where each
// mcproxy configuration stands against the proxy users know. Workloads
// without twemproxy are left out.
func WriteCompareSVG(w io.Writer, ws []WorkloadMedians) error {
	var targets []string // every drawn target, so each keeps its colour in every panel
	seen := map[string]bool{}
	type panel struct {
		title string
		value func(TargetMedians, TargetMedians) float64
		shown []WorkloadMedians
	}
	var panels []panel
	for _, place := range placements(ws) {
		var shown []WorkloadMedians
		for _, wl := range ws {
			if _, ok := wl.Target("twemproxy"); !ok || wl.Placement != place {
				continue
			}
			shown = append(shown, wl)
			for _, t := range wl.Targets {
				// TLS targets are not drawn: twemproxy, the scale, has no TLS.
				if t.Target != "memcached" && directOf(t.Target) == "memcached" && !seen[t.Target] {
					seen[t.Target] = true
					targets = append(targets, t.Target)
				}
			}
		}
		if len(shown) == 0 {
			continue
		}
		prefix := ""
		if place != "" {
			prefix = place + ": "
		}
		panels = append(panels,
			panel{prefix + "keys/s relative to twemproxy (higher is better)",
				func(t, tw TargetMedians) float64 { return ratio(t.KeysPerSec, tw.KeysPerSec) }, shown},
			panel{prefix + "proxy CPU per key relative to twemproxy (lower is better)",
				func(t, tw TargetMedians) float64 { return ratio(t.CPUUSPerKey, tw.CPUUSPerKey) }, shown})
	}
	const (
		panelW, panelH = 760, 200
		left, top      = 60, 40
		barW, gap      = 30, 28
		panelStep      = panelH + top + 60
	)
	height := len(panels)*panelStep + 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", panelW+left+20, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for pi, p := range panels {
		y0 := 20 + pi*panelStep
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>`+"\n", left, y0+16, escapeXML(p.title))
		// Scale: 0 .. the largest value, at least 1.5.
		maxV := 1.5
		for _, wl := range p.shown {
			tw, _ := wl.Target("twemproxy")
			for _, t := range wl.Targets {
				if t.Target == "memcached" || directOf(t.Target) != "memcached" {
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
		for gi, wl := range p.shown {
			tw, _ := wl.Target("twemproxy")
			x := left + 20 + gi*max(groupW, panelW/max(len(p.shown), 1))
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
					bx, yOf(v), barW-2, float64(baseY)-yOf(v), chartColors[ti%len(chartColors)], escapeXML(wl.Workload), escapeXML(name), v)
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
