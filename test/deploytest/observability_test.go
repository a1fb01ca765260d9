package deploytest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/testkit/tlstest"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"
)

const (
	dashboardPath  = "../../deploy/grafana/mcproxy.json"
	alertsPath     = "../../deploy/prometheus/alerts.yaml"
	alertsTestPath = "../../deploy/prometheus/alerts_test.yaml"
)

// dashboardExprs returns every PromQL expression of the dashboard: panel
// targets, template variable queries and annotations.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	var d any
	decodeFile(t, dashboardPath, json.Unmarshal, &d)
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(d)
	if len(exprs) < 10 {
		t.Fatalf("deploy/grafana/mcproxy.json: only %d expressions found", len(exprs))
	}
	return exprs
}

type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func alertExprs(t *testing.T) map[string]string {
	t.Helper()
	var rf ruleFile
	decodeFile(t, alertsPath, yaml.Unmarshal, &rf)
	out := map[string]string{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Expr
		}
	}
	return out
}

// selector matches a metric name and its label matchers, if any.
var selector = regexp.MustCompile(`\b((?:mcproxy|go|process)_[a-zA-Z0-9_]+)(\{[^}]*\})?`)
var matcherKey = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)

// scrapeProxy starts a real mcproxy in front of a real memcached, with a TLS
// listener (for the certificate metrics), sends the commands whose metrics
// the dashboard shows, and returns /metrics.
func scrapeProxy(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	mc := memcachedtest.Start(t)
	listen, admin := memcachedtest.FreeAddr(t), memcachedtest.FreeAddr(t)
	file := t.TempDir() + "/mcproxy.yaml"
	cert := tlstest.NewPKI(t, "deploytest CA").Leaf(t, "mcproxy")
	cfg := fmt.Sprintf("listen: %s\nadmin: %s\nbackends: [%s]\ntls: {listen: %s, cert_file: %s, key_file: %s}\n",
		listen, admin, mc.Addr, memcachedtest.FreeAddr(t), cert.Cert, cert.Key)
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	startMcproxy(t, listen, "-config", file)
	memcachedtest.Send(t, listen, "set a 0 0 1\r\nx\r\nget a\r\nget b\r\n", "END\r\n", 2)
	memcachedtest.Send(t, listen, "version\r\n", "\r\n", 1)
	return childproxy.ScrapeT(t, admin)
}

// TestDashboardAndAlertsUseRealMetrics: every metric name (and every label
// a selector matches on) in the Grafana dashboard and the alert rules is in
// mcproxy's /metrics, so neither shows "No data" because of a typo or a
// rename.
func TestDashboardAndAlertsUseRealMetrics(t *testing.T) {
	families := scrapeProxy(t)
	labels := func(name string) (map[string]bool, bool) {
		mf, ok := families[name]
		if !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if base, cut := strings.CutSuffix(name, suffix); cut {
					if h, ok := families[base]; ok && h.GetType() == dto.MetricType_HISTOGRAM {
						mf = h
						break
					}
				}
			}
		}
		if mf == nil {
			return nil, false
		}
		ls := map[string]bool{"instance": true, "job": true, "le": true} // added by Prometheus / the histogram
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				ls[lp.GetName()] = true
			}
		}
		return ls, true
	}
	check := func(where, expr string) {
		found := false
		for _, m := range selector.FindAllStringSubmatch(expr, -1) {
			found = true
			ls, ok := labels(m[1])
			if !ok {
				t.Errorf("%s: metric %s is not in mcproxy's /metrics", where, m[1])
				continue
			}
			for _, k := range matcherKey.FindAllStringSubmatch(m[2], -1) {
				if !ls[k[1]] {
					t.Errorf("%s: %s has no label %q", where, m[1], k[1])
				}
			}
		}
		if !found {
			t.Errorf("%s: expression %q uses no mcproxy metric", where, expr)
		}
	}
	for _, e := range dashboardExprs(t) {
		check("deploy/grafana/mcproxy.json", e)
	}
	alerts := alertExprs(t)
	for name, e := range alerts {
		check("deploy/prometheus/alerts.yaml "+name, e)
	}
	var names []string
	for n := range alerts {
		names = append(names, n)
	}
	sort.Strings(names)
	// Each alert the issue asks for is there.
	for _, want := range []string{"McproxyBackendDown", "McproxyBackendEjected", "McproxyRingShortOfMembers",
		"McproxyErrorRatioHigh", "McproxyLatencyHigh", "McproxyConfigReloadFailed", "McproxyConnectionsNearLimit"} {
		if _, ok := alerts[want]; !ok {
			t.Errorf("deploy/prometheus/alerts.yaml: no alert %s (have %v)", want, names)
		}
	}
}

// TestAlertRulesWithPromtool runs promtool's checks and the unit tests in
// alerts_test.yaml, and checks that every alert has a unit test.
func TestAlertRulesWithPromtool(t *testing.T) {
	data, err := os.ReadFile(alertsTestPath)
	if err != nil {
		t.Fatalf("read alerts_test.yaml: %v", err)
	}
	for name := range alertExprs(t) {
		if !strings.Contains(string(data), "alertname: "+name+"\n") {
			t.Errorf("deploy/prometheus/alerts_test.yaml has no test of %s", name)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not on PATH (Debian package prometheus; .ci/install-deps installs it): rules not checked by promtool")
	}
	for _, args := range [][]string{{"check", "rules", alertsPath}, {"test", "rules", alertsTestPath}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
