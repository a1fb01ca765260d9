package admin

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	c.CloseIdleConnections()
	return resp.StatusCode, string(b)
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	cnt := prometheus.NewCounter(prometheus.CounterOpts{Name: "mcproxy_test_total", Help: "test"})
	reg.MustRegister(cnt)
	cnt.Add(3)
	var ready atomic.Bool
	for _, pp := range []bool{false, true} {
		s, err := Start("127.0.0.1:0", Handler(reg, func() (bool, string) {
			if ready.Load() {
				return true, "ok"
			}
			return false, "no live backend"
		}, pp))
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + s.Addr().String()
		if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "mcproxy_test_total 3") {
			t.Errorf("/metrics: %d %q", code, body)
		}
		if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
			t.Errorf("/healthz: %d %q", code, body)
		}
		ready.Store(false)
		if code, body := get(t, base+"/readyz"); code != 503 || body != "no live backend\n" {
			t.Errorf("/readyz not ready: %d %q", code, body)
		}
		ready.Store(true)
		if code, _ := get(t, base+"/readyz"); code != 200 {
			t.Errorf("/readyz ready: %d", code)
		}
		code, _ := get(t, base+"/debug/pprof/")
		if pp && code != 200 || !pp && code != 404 {
			t.Errorf("pprof %v: /debug/pprof/ answered %d", pp, code)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		cancel()
	}
}

func TestStartBadAddress(t *testing.T) {
	if _, err := Start("127.0.0.1:99999", http.NotFoundHandler()); err == nil || !strings.Contains(err.Error(), "admin listen") {
		t.Fatalf("got %v", err)
	}
}
