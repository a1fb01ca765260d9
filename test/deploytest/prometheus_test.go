package deploytest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
	"github.com/mcproxy/mcproxy/internal/tools/childproc"
)

// alertWait is how soon the issue asks the critical alert to be pending
// once Prometheus runs: "every backend is dead" must not wait for
// warnings that come after minutes.
const alertWait = 30 * time.Second

// TestPrometheusAlertsWhenEveryBackendIsDead runs Debian's real Prometheus
// server with the shipped rules (deploy/prometheus/alerts.yaml), scraping
// a real mcproxy whose three backends have nothing listening. With the
// default health.max_ejected (50%) two of them stay in the ring, capped, so
// mcproxy_ring_members stays 2; the critical McproxyNoLiveBackend must be
// pending (or firing) within alertWait all the same, McproxyBackendEjectionCapped
// must fire, and the dashboard's "Live backends" panel must read 0 for this
// proxy.
func TestPrometheusAlertsWhenEveryBackendIsDead(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not on PATH (Debian package prometheus; .ci/install-deps installs it): alerts not checked against a real server")
	}
	dir := t.TempDir()
	listen, admin := memcachedtest.FreeAddr(t), memcachedtest.FreeAddr(t)
	var backends []string
	for range 3 {
		backends = append(backends, memcachedtest.FreeAddr(t)) // nothing listens there
	}
	cfgFile := filepath.Join(dir, "mcproxy.yaml")
	writeFile(t, cfgFile, fmt.Sprintf("listen: %s\nadmin: %s\nbackends: [%s]\n", listen, admin, strings.Join(backends, ", ")))
	startMcproxy(t, listen, "-config", cfgFile)

	rules, err := filepath.Abs(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	promCfg := filepath.Join(dir, "prometheus.yml")
	writeFile(t, promCfg, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: mcproxy
    static_configs:
      - targets: [%q]
`, rules, admin))
	web := memcachedtest.FreeAddr(t)
	prom := startPrometheus(t, promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	api := "http://" + web

	memcachedtest.WaitFor(t, "Prometheus ready", func() bool {
		if prom.Exited() {
			t.Fatalf("prometheus exited: %v\n%s", prom.Err(), prom.out.String())
		}
		resp, err := httpClient.Get(api + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// Bounded by alertWait from the moment Prometheus serves.
	serving := time.Now()
	deadline := serving.Add(alertWait)
	var last []promAlert
	for {
		last = activeAlerts(t, api)
		if alertIn(last, "McproxyNoLiveBackend", "critical", "pending", "firing") &&
			alertIn(last, "McproxyBackendEjectionCapped", "critical", "firing") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no critical McproxyNoLiveBackend pending and McproxyBackendEjectionCapped firing %v after Prometheus started; alerts: %+v\nprometheus:\n%s",
				alertWait, last, prom.out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%v after Prometheus served, alerts with every backend dead: %+v", time.Since(serving).Round(100*time.Millisecond), last)

	// The dashboard, as Grafana would query it with every instance chosen.
	panel := dashboardPanel(t, "Live backends")
	for ref, want := range map[string]string{"A": "0", "B": "2"} {
		expr := strings.ReplaceAll(panel[ref], "$instance", ".*")
		if got := queryValue(t, api, expr); got != want {
			t.Errorf("dashboard Live backends %s (%s) = %s, want %s", ref, expr, got, want)
		}
	}
	if got := queryValue(t, api, "mcproxy_ring_members"); got != "2" {
		t.Errorf("mcproxy_ring_members = %s, want 2: the case is two dead backends held in the ring by the cap", got)
	}
}

// httpClient talks to Prometheus on loopback: no keep-alive goroutines left
// behind, never through an HTTP proxy, every request bounded.
var httpClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	Timeout:   5 * time.Second,
}

type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func alertIn(alerts []promAlert, name, severity string, states ...string) bool {
	for _, a := range alerts {
		if a.Labels["alertname"] == name && a.Labels["severity"] == severity {
			for _, s := range states {
				if a.State == s {
					return true
				}
			}
		}
	}
	return false
}

// activeAlerts returns Prometheus's pending and firing alerts
// (/api/v1/alerts).
func activeAlerts(t *testing.T, api string) []promAlert {
	t.Helper()
	var body struct {
		Data struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	promGet(t, api+"/api/v1/alerts", &body)
	return body.Data.Alerts
}

// queryValue evaluates an instant query that must give one sample and
// returns its value as Prometheus writes it.
func queryValue(t *testing.T, api, expr string) string {
	t.Helper()
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	promGet(t, api+"/api/v1/query?query="+url.QueryEscape(expr), &body)
	if len(body.Data.Result) != 1 {
		t.Fatalf("query %s: %d samples, want 1: %+v", expr, len(body.Data.Result), body.Data.Result)
	}
	return fmt.Sprint(body.Data.Result[0].Value[1])
}

func promGet(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := httpClient.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", u, resp.Status, err, data)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", u, err, data)
	}
}

// dashboardPanel returns the PromQL of a dashboard panel's targets by refId.
func dashboardPanel(t *testing.T, title string) map[string]string {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	decodeFile(t, dashboardPath, json.Unmarshal, &d)
	for _, p := range d.Panels {
		if p.Title == title {
			out := map[string]string{}
			for _, tg := range p.Targets {
				out[tg.RefID] = tg.Expr
			}
			return out
		}
	}
	t.Fatalf("deploy/grafana/mcproxy.json: no panel %q", title)
	return nil
}

// promProcess is a Prometheus server a test started, with its output.
type promProcess struct {
	*childproc.Process
	out outputFile
}

// startPrometheus starts the prometheus binary with args; at cleanup it is
// stopped by its PID (SIGTERM, then SIGKILL after a bound).
func startPrometheus(t *testing.T, bin string, args ...string) promProcess {
	t.Helper()
	p := promProcess{out: newOutputFile(t, "prometheus.log")}
	var err error
	if p.Process, err = childproc.Start(bin, args, p.out.File); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(memcachedtest.WaitBound); err != nil {
			t.Errorf("prometheus: %v", err)
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", p.out.String())
		}
	})
	return p
}

// outputFile is a file in the test's temp dir that a child writes its
// output to (an *os.File needs no copying goroutine); String reads what it
// holds so far.
type outputFile struct{ *os.File }

func newOutputFile(t *testing.T, name string) outputFile {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return outputFile{f}
}

func (o outputFile) String() string {
	data, err := os.ReadFile(o.Name())
	if err != nil {
		return err.Error()
	}
	return string(data)
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
