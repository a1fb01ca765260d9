package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mcproxy/mcproxy/internal/testkit/childproxy"
	"github.com/mcproxy/mcproxy/internal/testkit/memcachedtest"
)

// scrape reads /metrics and returns every sample as "name{labels}" -> value.
func scrape(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for name, mf := range childproxy.ScrapeT(t, admin) {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			key := name
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func httpStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: memcachedtest.WaitBound}
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsAndStatsCount runs a known sequence of commands and checks the
// counts in /metrics and in stats, then the health endpoints.
func TestMetricsAndStatsCount(t *testing.T) {
	a, b := memcachedtest.Start(t), memcachedtest.Start(t)
	adminAddr := memcachedtest.FreeAddr(t)
	in := startInstance(t, memcachedtest.FreeAddr(t), adminAddr, a.Addr, b.Addr)

	memcachedtest.Send(t, in.listen, "set k1 0 0 1\r\nx\r\nset k2 0 0 1\r\ny\r\nadd k1 0 0 1\r\nz\r\n", "NOT_STORED\r\n", 1)
	memcachedtest.Send(t, in.listen, "get k1 k2 k3\r\nget k4\r\ngets k1\r\n", "END\r\n", 3)
	memcachedtest.Send(t, in.listen, "delete k2\r\ndelete k2\r\nincr k1 1\r\ntouch k1 10\r\nversion\r\n", "\r\n", 5)
	// A bad data chunk: memcached reads the rest of the line as a command.
	memcachedtest.Send(t, in.listen, "bogus\r\nset k 0 0 1\r\nxx\r\n", "\r\n", 3)

	m := scrape(t, adminAddr)
	want := map[string]float64{
		`mcproxy_commands_total{command="set",result="stored"}`:       2,
		`mcproxy_commands_total{command="add",result="not_stored"}`:   1,
		`mcproxy_commands_total{command="get",result="hit"}`:          2,
		`mcproxy_commands_total{command="get",result="miss"}`:         2,
		`mcproxy_commands_total{command="gets",result="hit"}`:         1,
		`mcproxy_commands_total{command="delete",result="deleted"}`:   1,
		`mcproxy_commands_total{command="delete",result="not_found"}`: 1,
		`mcproxy_commands_total{command="incr",result="error"}`:       1, // "x" is not a number
		`mcproxy_commands_total{command="touch",result="touched"}`:    1,
		`mcproxy_commands_total{command="version",result="ok"}`:       1,
		`mcproxy_client_errors_total`:                                 3,
		`mcproxy_client_connections_total`:                            5, // and startInstance's probe
		`mcproxy_command_duration_seconds{command="get"}_count`:       2,
		`mcproxy_command_duration_seconds{command="set"}_count`:       2,
		`mcproxy_ring_members`:                                        2,
		`mcproxy_backends`:                                            2,
		`mcproxy_config_generation`:                                   1,
		`mcproxy_config_reload_failures_total`:                        0,
		fmt.Sprintf(`mcproxy_backend_up{backend=%q}`, a.Addr):         1,
		fmt.Sprintf(`mcproxy_backend_in_ring{backend=%q}`, b.Addr):    1,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	var requests float64
	for _, addr := range []string{a.Addr, b.Addr} {
		requests += m[fmt.Sprintf(`mcproxy_backend_requests_total{backend=%q}`, addr)]
	}
	// 3 sets/adds + 2 gets split at most in two + gets + 2 deletes, incr,
	// touch; version and the bad input never reach a backend.
	if requests < 9 || requests > 11 {
		t.Errorf("backend requests %v, want 9..11", requests)
	}
	if m["mcproxy_client_read_bytes_total"] == 0 || m["mcproxy_client_written_bytes_total"] == 0 {
		t.Error("byte counters are zero")
	}

	st := memcachedtest.Stats(t, in.listen, "")
	for k, v := range map[string]string{"cmd_get": "5", "get_hits": "3", "get_misses": "2", "cmd_set": "3",
		"delete_hits": "1", "delete_misses": "1", "touch_hits": "1", "client_errors": "3"} {
		if st[k] != v {
			t.Errorf("stats %s = %q, want %q", k, st[k], v)
		}
	}
	// stats reset zeroes stats but never a Prometheus counter.
	memcachedtest.Send(t, in.listen, "stats reset\r\n", "RESET\r\n", 1)
	if got := memcachedtest.Stats(t, in.listen, "")["cmd_get"]; got != "0" {
		t.Errorf("cmd_get after stats reset: %s", got)
	}
	if got := scrape(t, adminAddr)[`mcproxy_commands_total{command="get",result="hit"}`]; got != 2 {
		t.Errorf("get hits in /metrics after stats reset: %v", got)
	}

	if code, _ := httpStatus(t, "http://"+adminAddr+"/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, body := httpStatus(t, "http://"+adminAddr+"/readyz"); code != 200 {
		t.Errorf("/readyz %d %q", code, body)
	}
	if code, _ := httpStatus(t, "http://"+adminAddr+"/debug/pprof/"); code != 404 {
		t.Errorf("pprof served though not enabled: %d", code)
	}
	a.Kill()
	b.Kill()
	memcachedtest.WaitFor(t, `/readyz to answer 503 "no live backend" with every backend dead`, func() bool {
		code, body := httpStatus(t, "http://"+adminAddr+"/readyz")
		return code == 503 && body == "no live backend\n"
	})
	m = scrape(t, adminAddr)
	// health.max_ejected (half the pool by default) ejects one of the two;
	// the other stays in the ring, capped, its keys failing fast.
	capped := m[fmt.Sprintf(`mcproxy_backend_ejection_capped{backend=%q}`, a.Addr)] +
		m[fmt.Sprintf(`mcproxy_backend_ejection_capped{backend=%q}`, b.Addr)]
	if capped != 1 {
		t.Errorf("after both backends died, %v of them capped, want 1", capped)
	}
	if m["mcproxy_ring_members"] != 1 || m[fmt.Sprintf(`mcproxy_backend_up{backend=%q}`, a.Addr)] != 0 ||
		m[fmt.Sprintf(`mcproxy_backend_ejections_total{backend=%q}`, a.Addr)] != 1 {
		t.Errorf("after both backends died: members %v up %v ejections %v", m["mcproxy_ring_members"],
			m[fmt.Sprintf(`mcproxy_backend_up{backend=%q}`, a.Addr)], m[fmt.Sprintf(`mcproxy_backend_ejections_total{backend=%q}`, a.Addr)])
	}
}
