package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mcproxy/mcproxy/internal/proxyproc"
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
func sampleProxy(ctx context.Context, p *proxyproc.Proxy, at int64) (ProcSample, error) {
	s := ProcSample{At: at}
	var err error
	if s.RSSKiB, err = readRSS(p.PID()); err != nil {
		return s, err
	}
	if s.Goroutines, err = scrapeGauge(ctx, "http://"+p.AdminAddr+"/metrics", "go_goroutines"); err != nil {
		return s, err
	}
	return s, nil
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

// scrapeClient fetches /metrics without keeping connections (and their
// goroutines) around between samples, and never through an HTTP proxy.
var scrapeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// scrapeGauge fetches a Prometheus text page and returns the value of the
// unlabelled sample name.
func scrapeGauge(ctx context.Context, url, name string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	prefix := []byte(name + " ")
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(string(rest)), 64)
			if err != nil {
				return 0, fmt.Errorf("scrape %s: %s: %w", url, name, err)
			}
			return int64(f), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	return 0, fmt.Errorf("scrape %s: no %s sample", url, name)
}
