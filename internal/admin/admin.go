// Package admin is mcproxy's HTTP admin endpoint: Prometheus metrics,
// liveness and readiness probes, and optionally pprof.
//
//	/metrics       Prometheus text format
//	/healthz       200 while the process serves HTTP at all (liveness)
//	/readyz        200 when ready() says so, else 503 with the reason
//	/debug/pprof/  Go profiles, only when enabled
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns the admin HTTP handler. ready reports whether the proxy
// can serve traffic and, if not, why.
func Handler(g prometheus.Gatherer, ready func() (bool, string), withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		// A collector failing must not hide every other metric.
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ok, reason := ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = fmt.Fprintln(w, reason)
	})
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// Server is a running admin endpoint.
type Server struct {
	srv  *http.Server
	addr net.Addr
	done chan error
}

// Start listens on addr and serves h until Shutdown, with at most
// MaxConnections connections open at once.
func Start(addr string, h http.Handler) (*Server, error) {
	nl, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listen %s: %w", addr, err)
	}
	return Serve(nl, h), nil
}

// Serve is Start on a listener the caller opened (with SO_REUSEPORT, say).
func Serve(nl net.Listener, h http.Handler) *Server {
	l := newLimitListener(nl, MaxConnections)
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			// pprof's profile and trace take up to their seconds parameter.
			WriteTimeout: 2 * time.Minute,
			IdleTimeout:  2 * time.Minute,
		},
		addr: l.Addr(),
		done: make(chan error, 1),
	}
	go func() { s.done <- s.srv.Serve(l) }()
	return s
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// Shutdown stops the server, letting requests in progress finish until ctx
// ends, then closing what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	if serr := <-s.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
