package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Summary is the flat, machine-readable form of a Result: one JSON object
// per run (mcbench -json). Latencies are in microseconds.
type Summary struct {
	Target         string  `json:"target"`
	Conns          int     `json:"conns"`
	Pipeline       int     `json:"pipeline"`
	Ratio          string  `json:"ratio"`
	MultiGet       int     `json:"multiget"`
	Keys           int     `json:"keys"`
	ValueSize      int     `json:"value_size"`
	Seconds        float64 `json:"seconds"`
	Ops            uint64  `json:"ops"`
	OpsPerSec      float64 `json:"ops_per_sec"`
	Gets           uint64  `json:"gets"`
	Sets           uint64  `json:"sets"`
	Hits           uint64  `json:"hits"`
	Misses         uint64  `json:"misses"`
	HitRatio       float64 `json:"hit_ratio"`
	Errors         uint64  `json:"errors"`
	ErrorReplies   uint64  `json:"error_replies"`
	ProtocolErrors uint64  `json:"protocol_errors"`
	Timeouts       uint64  `json:"timeouts"`
	ConnErrors     uint64  `json:"conn_errors"`
	Reconnects     uint64  `json:"reconnects"`
	FirstError     string  `json:"first_error,omitempty"`
	Prefilled      uint64  `json:"prefilled"`
	PrefillErrors  uint64  `json:"prefill_errors"`
	MinUS          float64 `json:"min_us"`
	MeanUS         float64 `json:"mean_us"`
	P50US          float64 `json:"p50_us"`
	P90US          float64 `json:"p90_us"`
	P99US          float64 `json:"p99_us"`
	P999US         float64 `json:"p999_us"`
	MaxUS          float64 `json:"max_us"`
	// KeysPerSec counts keys (of gets) and sets per second.
	KeysPerSec float64 `json:"keys_per_sec"`
	// The watched process's cost over the measured phase, per command
	// and per key; absent when no process was watched.
	CPUUSPerOp      float64 `json:"cpu_us_per_op,omitempty"`
	CPUUSPerKey     float64 `json:"cpu_us_per_key,omitempty"`
	SyscallsPerOp   float64 `json:"syscalls_per_op,omitempty"`
	CPUSeconds      float64 `json:"cpu_seconds,omitempty"`
	WatchedSyscalls uint64  `json:"syscalls,omitempty"`
	// The new-client probe (new_clients.go): clients that got their
	// reply, those that failed, and the time from dial to the reply.
	NewClients      uint64  `json:"new_clients,omitempty"`
	NewClientErrors uint64  `json:"new_client_errors,omitempty"`
	NewClientP50US  float64 `json:"new_client_p50_us,omitempty"`
	NewClientP99US  float64 `json:"new_client_p99_us,omitempty"`
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// Summary returns the flat form of r.
func (r *Result) Summary() Summary {
	c := r.Config
	h := r.Latency
	if h == nil {
		h = new(Histogram)
	}
	sum := Summary{
		Target:         c.Addr,
		Conns:          c.Conns,
		Pipeline:       c.Pipeline,
		Ratio:          strconv.Itoa(c.GetWeight) + ":" + strconv.Itoa(c.SetWeight),
		MultiGet:       c.MultiGet,
		Keys:           c.Keys,
		ValueSize:      c.ValueSize,
		Seconds:        r.Elapsed.Seconds(),
		Ops:            r.Counts[Ops],
		OpsPerSec:      r.OpsPerSec(),
		Gets:           r.Counts[Gets],
		Sets:           r.Counts[Sets],
		Hits:           r.Counts[Hits],
		Misses:         r.Counts[Misses],
		HitRatio:       r.HitRatio(),
		Errors:         r.Errors,
		ErrorReplies:   r.Counts[ErrorReplies],
		ProtocolErrors: r.Counts[ProtocolErrors],
		Timeouts:       r.Counts[Timeouts],
		ConnErrors:     r.Counts[ConnErrors],
		Reconnects:     r.Counts[Reconnects],
		FirstError:     r.FirstError,
		Prefilled:      r.Counts[Prefilled],
		PrefillErrors:  r.Counts[PrefillErrors],
		MinUS:          micros(h.Min()),
		MeanUS:         micros(h.Mean()),
		P50US:          micros(h.Quantile(0.50)),
		P90US:          micros(h.Quantile(0.90)),
		P99US:          micros(h.Quantile(0.99)),
		P999US:         micros(h.Quantile(0.999)),
		MaxUS:          micros(h.Max()),
	}
	if r.Elapsed > 0 {
		sum.KeysPerSec = float64(r.Keys()) / r.Elapsed.Seconds()
	}
	if p := r.Proc; p != nil && r.Counts[Ops] > 0 {
		sum.CPUSeconds, sum.WatchedSyscalls = p.CPUSeconds, p.Syscalls
		sum.CPUUSPerOp = p.CPUSeconds * 1e6 / float64(r.Counts[Ops])
		sum.SyscallsPerOp = float64(p.Syscalls) / float64(r.Counts[Ops])
		if k := r.Keys(); k > 0 {
			sum.CPUUSPerKey = p.CPUSeconds * 1e6 / float64(k)
		}
	}
	if nc := r.NewClients; nc != nil {
		sum.NewClients, sum.NewClientErrors = nc.Count(), r.NewClientErrors
		sum.NewClientP50US, sum.NewClientP99US = micros(nc.Quantile(0.50)), micros(nc.Quantile(0.99))
	}
	return sum
}

// WriteJSON writes r as one line of JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r.Summary())
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes r as a short report for people.
func (r *Result) WriteText(w io.Writer) error {
	s := r.Summary()
	us := func(v float64) string {
		if v >= 1000 {
			return strconv.FormatFloat(v/1000, 'f', 2, 64) + "ms"
		}
		return strconv.FormatFloat(v, 'f', 1, 64) + "us"
	}
	_, err := fmt.Fprintf(w, `target     %s  conns=%d pipeline=%d ratio=%s multiget=%d keys=%d value=%dB
ops        %d in %.2fs = %.0f ops/s  (gets %d, sets %d)
hits       %d  misses %d  hit ratio %.3f
errors     %d  (error replies %d, protocol %d, timeouts %d, connection %d; reconnects %d)
latency    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (min %s, mean %s)
`,
		s.Target, s.Conns, s.Pipeline, s.Ratio, s.MultiGet, s.Keys, s.ValueSize,
		s.Ops, s.Seconds, s.OpsPerSec, s.Gets, s.Sets,
		s.Hits, s.Misses, s.HitRatio,
		s.Errors, s.ErrorReplies, s.ProtocolErrors, s.Timeouts, s.ConnErrors, s.Reconnects,
		us(s.P50US), us(s.P90US), us(s.P99US), us(s.P999US), us(s.MaxUS), us(s.MinUS), us(s.MeanUS))
	if err != nil {
		return err
	}
	if r.Config.Prefill {
		if _, err := fmt.Fprintf(w, "prefill    %d keys stored, %d failed\n", s.Prefilled, s.PrefillErrors); err != nil {
			return err
		}
	}
	if r.Proc != nil {
		if _, err := fmt.Fprintf(w, "target pid %d: %.3fs CPU = %.2fus per command, %.2fus per key; %.2f syscalls per command\n",
			r.Config.WatchPID, s.CPUSeconds, s.CPUUSPerOp, s.CPUUSPerKey, s.SyscallsPerOp); err != nil {
			return err
		}
	}
	if s.FirstError != "" {
		_, err = fmt.Fprintf(w, "first err  %s\n", s.FirstError)
	}
	return err
}
