package failover

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"
)

// logEvent is one line of mcproxy's JSON log that matters to a failover:
// "backend down", "backend up" or "ring rebuilt".
type logEvent struct {
	At           time.Time
	Msg          string
	Backend      string
	Reason       string
	LiveBackends int
}

// proxyLog is what was read from mcproxy's log.
type proxyLog struct {
	events []logEvent
	// warnings counts the messages of warn and error lines (and worse).
	warnings map[string]int
	// unparsed counts lines that were not JSON.
	unparsed int
}

// readProxyLog reads mcproxy's JSON log (zap's production encoder: "ts" is
// seconds since the epoch, "level", "msg").
func readProxyLog(path string) (*proxyLog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read mcproxy log: %w", err)
	}
	defer f.Close()
	pl := &proxyLog{warnings: map[string]int{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			TS      any    `json:"ts"`
			Level   string `json:"level"`
			Msg     string `json:"msg"`
			Backend string `json:"backend"`
			Reason  string `json:"reason"`
			Live    *int   `json:"live_backends"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			pl.unparsed++
			continue
		}
		switch line.Level {
		case "warn", "error", "dpanic", "panic", "fatal":
			pl.warnings[line.Level+": "+line.Msg]++
		}
		switch line.Msg {
		case "backend down", "backend up", "ring rebuilt":
		default:
			continue
		}
		at, ok := parseLogTime(line.TS)
		if !ok {
			continue
		}
		ev := logEvent{At: at, Msg: line.Msg, Backend: line.Backend, Reason: line.Reason, LiveBackends: -1}
		if line.Live != nil {
			ev.LiveBackends = *line.Live
		}
		pl.events = append(pl.events, ev)
	}
	if err := sc.Err(); err != nil {
		return pl, fmt.Errorf("read mcproxy log: %w", err)
	}
	sort.SliceStable(pl.events, func(i, j int) bool { return pl.events[i].At.Before(pl.events[j].At) })
	return pl, nil
}

// parseLogTime accepts zap's epoch seconds (a number) or an RFC 3339 string.
func parseLogTime(ts any) (time.Time, bool) {
	switch v := ts.(type) {
	case float64:
		sec, frac := math.Modf(v)
		return time.Unix(int64(sec), int64(frac*1e9)), true
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		return t, err == nil
	}
	return time.Time{}, false
}

// first returns the first event with msg (and, if backend is not empty,
// that backend) at or after t.
func (pl *proxyLog) first(msg, backend string, t time.Time) (logEvent, bool) {
	for _, ev := range pl.events {
		if ev.Msg == msg && (backend == "" || ev.Backend == backend) && !ev.At.Before(t) {
			return ev, true
		}
	}
	return logEvent{}, false
}

// warningList returns the warnings as "text xN", most frequent first.
func (pl *proxyLog) warningList() []string {
	return countList(pl.warnings)
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
