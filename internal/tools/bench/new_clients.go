package bench

import (
	"context"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/loadgen"
)

// The new-client probe: while the load runs, a client connects every
// Config.NewClientEvery, asks "version" and leaves, and the time from its
// dial to the reply is recorded. A proxy that accepts on a goroutine which
// its busy event loop keeps off the CPU makes new clients wait although
// every connected one is served quickly; the load's own latency, measured
// on connections opened before it, cannot show that.

// newClientProbe is the probe's state, owned by its goroutine until done
// closes.
type newClientProbe struct {
	latency Histogram
	errors  uint64
	done    chan struct{}
}

// startNewClients starts the probe over the measured phase of p, or returns
// nil when cfg asks for none.
func startNewClients(ctx context.Context, cfg *Config, spec *loadgen.Spec, addr string, p *phase) *newClientProbe {
	if cfg.NewClientEvery <= 0 {
		return nil
	}
	pr := &newClientProbe{done: make(chan struct{})}
	go func() {
		defer close(pr.done)
		// One worker, connected afresh each time; its id is past the
		// load's, so it draws no key sequence of theirs (it sends none).
		w := loadgen.NewWorker(spec, addr, cfg.Conns, 1)
		defer w.Close()
		next := p.measureStart
		for {
			if wait := time.Until(next); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			if !time.Now().Before(p.end) || ctx.Err() != nil {
				return
			}
			start := time.Now()
			if err := w.Connect(ctx, p.end); err != nil || w.Version() != nil {
				pr.errors++
			} else {
				pr.latency.Record(time.Since(start))
			}
			w.Close()
			next = next.Add(cfg.NewClientEvery)
		}
	}()
	return pr
}

// finish waits for the probe to end and adds what it measured to res.
func (pr *newClientProbe) finish(res *Result) {
	if pr == nil {
		return
	}
	<-pr.done
	res.NewClients = &pr.latency
	res.NewClientErrors = pr.errors
}
