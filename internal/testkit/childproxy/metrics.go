package childproxy

import (
	"context"
	"testing"

	"github.com/mcproxy/mcproxy/internal/tools/mcproxyproc"
	dto "github.com/prometheus/client_model/go"
)

// ScrapeT is Scrape for tests: it fails the test on error.
func ScrapeT(t testing.TB, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	families, err := mcproxyproc.Scrape(context.Background(), admin, mcproxyproc.StartWait)
	if err != nil {
		t.Fatalf("childproxy: %v", err)
	}
	return families
}
