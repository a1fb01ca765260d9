package soak

import (
	"context"
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
	if s.RSSKiB, err = p.StatusKiB("VmRSS"); err != nil {
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
