package bench

import (
	"bufio"
	"fmt"
	"sort"
	"strings"
)

// mcproxyConfigs are the mcproxy configurations scripts/compare.sh runs side
// by side in each placement, by target name, as a reader would set them.
var mcproxyConfigs = []struct{ target, config string }{
	{"mcproxy", "defaults"},
	{"mcproxy-1loop", "`event_loops: 1`"},
}

// choiceTie is how close two configurations' CPU per key must be to call
// neither the efficient one: medians of rounds of the same binary differ by
// a few percent on a shared 2-core machine.
const choiceTie = 0.05

// efficientConfig says which of the mcproxy configurations in wl spends the
// least CPU per key, and by how much, or that they are within choiceTie of
// each other, or that they run the same number of event loops (the defaults
// run one loop when pinned to one CPU): the same configuration in effect,
// whose difference is noise. It returns "" when wl has fewer than two of
// them with CPU figures.
func efficientConfig(wl WorkloadMedians) string {
	type cand struct {
		config string
		cpu    float64
		loops  int
	}
	var cs []cand
	for _, c := range mcproxyConfigs {
		if t, ok := wl.Target(c.target); ok && t.HasProc && t.CPUUSPerKey > 0 {
			cs = append(cs, cand{c.config, t.CPUUSPerKey, t.EventLoops})
		}
	}
	if len(cs) < 2 {
		return ""
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].cpu < cs[j].cpu })
	best, second := cs[0], cs[1]
	if best.loops > 0 && best.loops == second.loops {
		return fmt.Sprintf("either: both run %s here", plural(best.loops, "event loop"))
	}
	if best.cpu >= second.cpu*(1-choiceTie) {
		return fmt.Sprintf("either: CPU per key within %.0f%%", choiceTie*100)
	}
	return fmt.Sprintf("**%s** (CPU per key ×%.2f of %s)", best.config, best.cpu/second.cpu, second.config)
}

// writeChoices writes the page's verdict: per workload and placement, each
// mcproxy configuration against twemproxy, and the efficient one. Nothing is
// written when no workload ran two configurations beside twemproxy.
func writeChoices(bw *bufio.Writer, ws []WorkloadMedians) {
	var rows []string
	for _, name := range distinct(ws, func(wl WorkloadMedians) string { return wl.Workload }) {
		for _, place := range placements(ws) {
			for _, wl := range ws {
				if wl.Workload != name || wl.Placement != place {
					continue
				}
				tw, ok := wl.Target("twemproxy")
				choice := efficientConfig(wl)
				if !ok || choice == "" {
					continue
				}
				row := fmt.Sprintf("| %s | %s |", wl.Workload, place)
				for _, c := range mcproxyConfigs {
					cell := "–"
					if t, ok := wl.Target(c.target); ok {
						cell = fmt.Sprintf("×%.2f, ×%.2f, ×%.2f", ratio(t.CPUUSPerKey, tw.CPUUSPerKey),
							ratio(t.KeysPerSec, tw.KeysPerSec), ratio(t.P99US, tw.P99US))
					}
					row += " " + cell + " |"
				}
				rows = append(rows, row+" "+choice+" |")
			}
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(bw, "\n## Which configuration is efficient on this machine")
	fmt.Fprintln(bw)
	fmt.Fprintf(bw, "The efficient choice is the mcproxy configuration that spends the least CPU per key in that "+
		"placement (medians below); within %.0f%% of each other is a tie. Each cell is CPU per key, keys/s "+
		"and p99 relative to twemproxy in the same placement.\n\n", choiceTie*100)
	head, rule := "| workload | placement |", "| --- | --- |"
	for _, c := range mcproxyConfigs {
		head += fmt.Sprintf(" %s / twemproxy |", c.config)
		rule += " --- |"
	}
	fmt.Fprintln(bw, head+" efficient choice |")
	fmt.Fprintln(bw, rule+" --- |")
	fmt.Fprintln(bw, strings.Join(rows, "\n"))
}

// plural spells n things.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
