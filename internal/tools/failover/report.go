package failover

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Report is what one scenario measured. Times named ...S are seconds
// relative to the failure of the victim (negative before it), except in
// Readd, where they are relative to its recovery. Latencies are in
// milliseconds. Ratios are null when there was nothing to divide.
type Report struct {
	Scenario string `json:"scenario"`
	// Command reproduces the run; the caller fills it in.
	Command   string   `json:"command,omitempty"`
	Settings  Settings `json:"settings"`
	Victim    string   `json:"victim"`
	Survivors []string `json:"survivors"`
	// Dir is the kept temp dir with the config and mcproxy's log (kept for
	// people: the figures never come from the log).
	Dir string `json:"dir,omitempty"`

	Prefill Prefill `json:"prefill"`
	Owners  Owners  `json:"owners"`

	LoadStartS float64 `json:"load_start_s"`
	RecoverS   float64 `json:"recover_s"`
	LoadEndS   float64 `json:"load_end_s"`

	Ejection Transition `json:"ejection"`
	Readd    Transition `json:"readd"`

	// Windows cut the load at failure, ejection, recovery and re-adding; a
	// request belongs to the window in which it started.
	Windows []Window `json:"windows"`
	// AfterEjection is every request from the ejection to the end of the
	// load (the ejected, recover and readded windows together); nil when
	// there was no ejection.
	AfterEjection *Window `json:"after_ejection,omitempty"`
	// Total is every request of the load.
	Total Window `json:"total"`
	// Slowest is the slowest request of the run; SlowestAfterFailure the
	// slowest that started at or after the failure.
	Slowest             *Request `json:"slowest,omitempty"`
	SlowestAfterFailure *Request `json:"slowest_after_failure,omitempty"`
	// Timeline is the load in buckets of TimelineStepS seconds.
	TimelineStepS float64  `json:"timeline_step_s"`
	Timeline      []Bucket `json:"timeline"`

	ReaddCheck *ReaddCheck `json:"readd_check,omitempty"`

	// ServerErrors, ClientErrors and BadReplies count each distinct error
	// text the load saw, as "text xN".
	ServerErrors []string `json:"server_errors,omitempty"`
	ClientErrors []string `json:"client_errors,omitempty"`
	BadReplies   []string `json:"bad_replies,omitempty"`
	// VictimStats is the victim's part of the last "stats backends".
	VictimStats map[string]string `json:"victim_stats,omitempty"`

	Reconnects     int     `json:"reconnects"`
	SamplesDropped int     `json:"samples_dropped,omitempty"`
	Polls          int     `json:"polls"`
	PollErrors     int     `json:"poll_errors"`
	MaxPollMS      float64 `json:"max_poll_ms"`
	ProxyStopS     float64 `json:"proxy_stop_s"`
	ProxyStopClean bool    `json:"proxy_stop_clean"`
	// Problems lists what went wrong with the run itself (not with
	// mcproxy's figures), e.g. a run cut off by MaxRun.
	Problems []string `json:"problems,omitempty"`
}

// Settings echoes the parameters of the run.
type Settings struct {
	Conns            int     `json:"conns"`
	Keys             int     `json:"keys"`
	ValueSize        int     `json:"value_size"`
	SetPercent       int     `json:"set_percent"`
	BackendTimeoutMS float64 `json:"backend_timeout_ms"`
	HealthIntervalMS float64 `json:"health_interval_ms"`
	HealthTimeoutMS  float64 `json:"health_timeout_ms"`
	FailureLimit     int     `json:"failure_limit"`
	SuccessLimit     int     `json:"success_limit"`
	DownForS         float64 `json:"down_for_s"`
	Seed             uint64  `json:"seed"`
}

// Prefill counts the keys stored before the load.
type Prefill struct {
	Stored int `json:"stored"`
	Failed int `json:"failed"`
}

// Owners counts the sampled keys by the backend that held them after the
// prefill.
type Owners struct {
	Sampled   int `json:"sampled"`
	Victim    int `json:"victim"`
	Survivors int `json:"survivors"`
	Unknown   int `json:"unknown"`
}

// Transition is a move of the victim out of the ring (the ejection, times
// relative to its failure) or back into it (the re-adding, times relative
// to its recovery), as the proxy published it in "stats backends" (polled
// every PollInterval, so each time is late by up to one interval).
type Transition struct {
	// Seen tells whether the polls showed the victim's in_ring change.
	Seen bool `json:"seen"`
	// StateS and RingS: the first poll that showed the new state (down, or
	// up), and the new in_ring (false, or true).
	StateS *float64 `json:"state_s"`
	RingS  *float64 `json:"ring_s"`
	// Count is how much the victim's counter of such moves (ejections, or
	// readds) grew over the run.
	Count uint64 `json:"count"`
	// Reason is the victim's last_error in the poll that first showed it
	// down; the ejection only (a re-added backend still shows its last
	// error).
	Reason string `json:"reason,omitempty"`
	// WaitLimitS bounded the wait for the re-adding after the recovery; the
	// re-adding only.
	WaitLimitS float64 `json:"wait_limit_s,omitempty"`
}

// Window is the load in one span of the run.
type Window struct {
	Name         string  `json:"name"`
	FromS        float64 `json:"from_s"`
	ToS          float64 `json:"to_s"`
	Requests     int     `json:"requests"`
	OpsPerSec    float64 `json:"ops_per_sec"`
	Gets         int     `json:"gets"`
	Sets         int     `json:"sets"`
	Hits         int     `json:"hits"`
	Misses       int     `json:"misses"`
	Stored       int     `json:"stored"`
	ServerErrors int     `json:"server_errors"`
	ClientErrors int     `json:"client_errors"`
	BadReplies   int     `json:"bad_replies"`
	// Stale counts hits that returned a value older than one whose set was
	// confirmed (STORED) before the get was sent, by a set that itself
	// began after the returned value's set had ended.
	Stale int `json:"stale"`
	// UnackedReads counts hits that returned the value of a set whose
	// client got an error (SERVER_ERROR or a timeout): the write was
	// applied although it was reported as failed.
	UnackedReads int `json:"unacked_reads"`
	// OverTimeout counts requests slower than backend.timeout.
	OverTimeout int     `json:"over_timeout"`
	P50MS       float64 `json:"p50_ms"`
	P99MS       float64 `json:"p99_ms"`
	P999MS      float64 `json:"p999_ms"`
	MaxMS       float64 `json:"max_ms"`
	// HitRatio is hits/(hits+misses) over every get of the window.
	// The other ratios count only gets of untouched keys, keys the load had
	// not sent a set for before the get, so that they show what became of
	// the prefilled data: all such keys (UntouchedGets, HitRatioUntouched),
	// and those of them sampled for their owner after the prefill, split
	// into the victim's and the survivors'. Errors are not gets here.
	UntouchedGets     int      `json:"untouched_gets"`
	UntouchedHits     int      `json:"untouched_hits"`
	VictimGets        int      `json:"victim_gets"`
	VictimHits        int      `json:"victim_hits"`
	SurvivorGets      int      `json:"survivor_gets"`
	SurvivorHits      int      `json:"survivor_hits"`
	HitRatioVictim    *float64 `json:"hit_ratio_victim"`
	HitRatioSurvivors *float64 `json:"hit_ratio_survivors"`
	HitRatioUntouched *float64 `json:"hit_ratio_untouched"`
	HitRatio          *float64 `json:"hit_ratio"`
}

// Request describes one request of the load.
type Request struct {
	LatencyMS float64 `json:"latency_ms"`
	AtS       float64 `json:"at_s"`
	Op        string  `json:"op"`
	Key       string  `json:"key"`
	Owner     string  `json:"owner"`
	Outcome   string  `json:"outcome"`
}

// Bucket is the load of one step of the timeline, by start time.
type Bucket struct {
	AtS      float64 `json:"at_s"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
}

// ReaddCheck is the check after re-adding: victim keys set through the
// proxy, then looked up directly on each memcached.
type ReaddCheck struct {
	Keys        int `json:"keys"`
	Stored      int `json:"stored"`
	OnVictim    int `json:"on_victim"`
	OnSurvivors int `json:"on_survivors"`
}

// WriteJSON writes r as one line of JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes r as a compact table for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	s := r.Settings
	fmt.Fprintf(&b, "== scenario %s: victim %s (survivors %s)\n", r.Scenario, r.Victim, strings.Join(r.Survivors, ", "))
	fmt.Fprintf(&b, "settings   conns=%d keys=%d value=%dB sets=%d%% backend.timeout=%s health: interval=%s timeout=%s failure_limit=%d success_limit=%d; down for %s\n",
		s.Conns, s.Keys, s.ValueSize, s.SetPercent, msStr(s.BackendTimeoutMS), msStr(s.HealthIntervalMS), msStr(s.HealthTimeoutMS),
		s.FailureLimit, s.SuccessLimit, secStr(s.DownForS))
	fmt.Fprintf(&b, "prefill    %d stored, %d failed; owners of %d sampled keys: victim %d, survivors %d, unknown %d\n",
		r.Prefill.Stored, r.Prefill.Failed, r.Owners.Sampled, r.Owners.Victim, r.Owners.Survivors, r.Owners.Unknown)
	fmt.Fprintf(&b, "timeline   load from %+.2fs, failure at 0, recovery at %+.2fs, load end %+.2fs (seconds relative to the failure)\n",
		r.LoadStartS, r.RecoverS, r.LoadEndS)
	e := r.Ejection
	if e.Seen {
		fmt.Fprintf(&b, "ejection   out of ring %s after the failure (stats backends: state down %s; ejections +%d)\n",
			optSec(e.RingS), optSec(e.StateS), e.Count)
	} else {
		fmt.Fprintf(&b, "ejection   none seen (stats backends: state down %s; ejections +%d)\n", optSec(e.StateS), e.Count)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, "           reason: %s\n", e.Reason)
	}
	a := r.Readd
	if a.Seen {
		fmt.Fprintf(&b, "re-add     back in ring %s after the recovery (stats backends: state up %s; readds +%d)\n",
			optSec(a.RingS), optSec(a.StateS), a.Count)
	} else {
		fmt.Fprintf(&b, "re-add     none seen within %s of the recovery (stats backends: state up %s; readds +%d)\n",
			secStr(a.WaitLimitS), optSec(a.StateS), a.Count)
	}
	if c := r.ReaddCheck; c != nil {
		fmt.Fprintf(&b, "re-add chk %d victim keys set through the proxy after re-adding: %d stored, %d found on the victim, %d on a survivor\n",
			c.Keys, c.Stored, c.OnVictim, c.OnSurvivors)
	}
	fmt.Fprintf(&b, "%-15s %15s %7s %7s %7s %7s %4s %5s %8s %8s %8s %8s %5s %6s %6s %6s %6s\n",
		"window", "span (s)", "reqs", "ops/s", "srv_err", "cli_err", "bad", "stale",
		"p50", "p99", "p99.9", "max", ">tmo", "hit:v", "hit:s", "hit:u", "hit")
	rows := append([]Window(nil), r.Windows...)
	if r.AfterEjection != nil {
		rows = append(rows, *r.AfterEjection)
	}
	for _, win := range append(rows, r.Total) {
		fmt.Fprintf(&b, "%-15s %15s %7d %7.0f %7d %7d %4d %5d %8s %8s %8s %8s %5d %6s %6s %6s %6s\n",
			win.Name, fmt.Sprintf("%+.2f..%+.2f", win.FromS, win.ToS), win.Requests, win.OpsPerSec,
			win.ServerErrors, win.ClientErrors, win.BadReplies, win.Stale,
			msStr(win.P50MS), msStr(win.P99MS), msStr(win.P999MS), msStr(win.MaxMS), win.OverTimeout,
			ratioStr(win.HitRatioVictim), ratioStr(win.HitRatioSurvivors), ratioStr(win.HitRatioUntouched), ratioStr(win.HitRatio))
	}
	b.WriteString("           (>tmo: slower than backend.timeout; hit:v, hit:s, hit:u: hit ratio of gets of keys not yet set by the load, owned by\n" +
		"            the victim, by a survivor, by any; hit: of all gets; stale: hits older than a write confirmed before the get)\n")
	for _, win := range r.Windows {
		if win.UnackedReads > 0 {
			fmt.Fprintf(&b, "unacked    %s: %d hits returned the value of a set that had been answered with an error\n", win.Name, win.UnackedReads)
		}
	}
	if q := r.Slowest; q != nil {
		fmt.Fprintf(&b, "slowest    %s\n", q)
	}
	if q := r.SlowestAfterFailure; q != nil {
		fmt.Fprintf(&b, "slowest    after failure: %s\n", q)
	}
	if len(r.Timeline) > 0 {
		fmt.Fprintf(&b, "ops/s      per %.2fs from %+.2fs:", r.TimelineStepS, r.Timeline[0].AtS)
		for _, bk := range r.Timeline {
			fmt.Fprintf(&b, " %s", kStr(float64(bk.Requests)/r.TimelineStepS))
			if bk.Errors > 0 {
				fmt.Fprintf(&b, "(%de)", bk.Errors)
			}
		}
		b.WriteString("\n")
	}
	list := func(name string, l []string) {
		if len(l) > 0 {
			fmt.Fprintf(&b, "%-10s %s\n", name, strings.Join(l, "; "))
		}
	}
	list("srv errs", r.ServerErrors)
	list("cli errs", r.ClientErrors)
	list("bad", r.BadReplies)
	if len(r.VictimStats) > 0 {
		keys := []string{"requests", "errors", "errors_timeout", "errors_connection", "errors_down", "ejections", "readds"}
		var parts []string
		for _, k := range keys {
			if v, ok := r.VictimStats[k]; ok {
				parts = append(parts, k+"="+v)
			}
		}
		fmt.Fprintf(&b, "victim     stats backends at the end: %s\n", strings.Join(parts, " "))
	}
	fmt.Fprintf(&b, "run        %d reconnects, %d polls (%d failed, slowest %s), mcproxy stopped in %s after SIGTERM (clean: %t)",
		r.Reconnects, r.Polls, r.PollErrors, msStr(r.MaxPollMS), secStr(r.ProxyStopS), r.ProxyStopClean)
	if r.SamplesDropped > 0 {
		fmt.Fprintf(&b, ", %d samples not kept", r.SamplesDropped)
	}
	b.WriteString("\n")
	list("problems", r.Problems)
	if r.Dir != "" {
		fmt.Fprintf(&b, "files      %s\n", r.Dir)
	}
	if r.Command != "" {
		fmt.Fprintf(&b, "reproduce  %s\n", r.Command)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// countList formats a count map as "text xN" lines, most frequent first.
func countList(m map[string]int) []string {
	type kv struct {
		k string
		n int
	}
	var l []kv
	for k, n := range m {
		l = append(l, kv{k, n})
	}
	sort.Slice(l, func(i, j int) bool {
		if l[i].n != l[j].n {
			return l[i].n > l[j].n
		}
		return l[i].k < l[j].k
	})
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = fmt.Sprintf("%s x%d", strings.TrimSpace(e.k), e.n)
	}
	return out
}

func (q *Request) String() string {
	return fmt.Sprintf("%s: %s of %s (%s key) at %+.3fs -> %s", msStr(q.LatencyMS), q.Op, q.Key, q.Owner, q.AtS, q.Outcome)
}

// msStr formats milliseconds for the table.
func msStr(ms float64) string {
	switch {
	case ms >= 1000:
		return strconv.FormatFloat(ms/1000, 'f', 3, 64) + "s"
	case ms >= 10:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	default:
		return strconv.FormatFloat(ms*1000, 'f', 0, 64) + "us"
	}
}

func secStr(s float64) string { return strconv.FormatFloat(s, 'f', 3, 64) + "s" }

func optSec(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%+.3fs", *p)
}

func ratioStr(p *float64) string {
	if p == nil {
		return "-"
	}
	return strconv.FormatFloat(*p, 'f', 3, 64)
}

func kStr(v float64) string {
	if v >= 1000 {
		return strconv.FormatFloat(v/1000, 'f', 1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
