package soak

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/mcproxyproc"
)

// scrapeTimeout bounds one scrape of the admin /metrics.
const scrapeTimeout = 5 * time.Second

// ProcSample is the proxy's footprint at one moment.
type ProcSample struct {
	At         int64 // checker time
	RSSKiB     int64 // VmRSS from /proc/<pid>/status
	Goroutines int64 // go_goroutines from the admin /metrics
}

// sampleProxy reads the proxy's RSS and goroutine count.
func sampleProxy(ctx context.Context, p *mcproxyproc.Proxy, at int64) (ProcSample, error) {
	s := ProcSample{At: at}
	var err error
	if s.RSSKiB, err = readRSS(p.PID()); err != nil {
		return s, err
	}
	families, err := mcproxyproc.Scrape(ctx, p.AdminAddr, scrapeTimeout)
	if err != nil {
		return s, err
	}
	g, err := mcproxyproc.Gauge(families, "go_goroutines")
	s.Goroutines = int64(g)
	return s, err
}

// readRSS returns the VmRSS of pid in KiB.
func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS of pid %d: %w", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("read RSS of pid %d: no VmRSS line in kB", pid)
}
