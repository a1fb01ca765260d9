package mcproxyproc

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/textclient"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeClient fetches /metrics without keeping connections (and their
// goroutines) around between scrapes, and never through an HTTP proxy.
var scrapeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// maxMetricsPage bounds the page Scrape reads.
const maxMetricsPage = 16 << 20

// Scrape fetches and parses the Prometheus page of the proxy whose admin
// listener is admin (a loopback address); timeout bounds the request.
func Scrape(ctx context.Context, admin string, timeout time.Duration) (map[string]*dto.MetricFamily, error) {
	addr, err := textclient.ResolveLoopback(admin)
	if err != nil {
		return nil, err
	}
	url := "http://" + addr + "/metrics"
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, maxMetricsPage))
	if err != nil {
		return nil, fmt.Errorf("scrape %s: parse: %w", url, err)
	}
	return families, nil
}

// Gauge returns the value of the unlabelled gauge name in families.
func Gauge(families map[string]*dto.MetricFamily, name string) (float64, error) {
	mf, ok := families[name]
	if !ok || len(mf.GetMetric()) != 1 || mf.GetMetric()[0].GetGauge() == nil {
		return 0, fmt.Errorf("no single gauge %s in the metrics", name)
	}
	return mf.GetMetric()[0].GetGauge().GetValue(), nil
}
