package failover

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/backendwatch"
	"github.com/mcproxy/mcproxy/internal/tools/mcproxyproc"
)

// Bounds of the "stats backends" watch: the wait for the first poll that
// shows every backend in the ring, and one poll.
const (
	watchReadyWait = 10 * time.Second
	pollTimeout    = time.Second
)

// Run runs one scenario and returns its report. It returns an error and no
// report when the cluster cannot be set up (a binary missing, mcproxy
// refusing its config, the prefill failing). Once the load has started it
// always returns a report; if the run was cut short (ctx ended or MaxRun
// passed) the report holds what was measured, Problems says why, and the
// error is returned too.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxRun)
	defer cancel()

	cfg.progress("%s: starting %d memcached and mcproxy", cfg.Scenario, numBackends)
	cl, err := startCluster(&cfg)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	victim := cl.Backends[0] // the first backend fails
	addrs := cl.Addrs()

	base := time.Now()
	since := func() int64 { return time.Since(base).Nanoseconds() }

	sample := cfg.OwnerSample
	if sample == 0 {
		sample = cfg.Keys
	}
	ks := newKeySpace(cfg.Keys, sample)
	cfg.progress("%s: prefilling %d keys through %s", cfg.Scenario, cfg.Keys, cl.Proxy.Addr)
	stored, failed, err := prefill(ctx, cl.Proxy.Addr, ks, cfg.ValueSize)
	if err != nil {
		return nil, err
	}
	var m moments
	m.prefillEnd = since()
	if err := lookupOwners(ctx, addrs, ks); err != nil {
		return nil, err
	}

	mon := backendwatch.Start(ctx, cl.Proxy.Addr, addrs, cfg.PollInterval, pollTimeout, since)
	defer mon.Stop()
	for _, a := range addrs {
		if !mon.WaitFor(ctx, a, func(v backendwatch.View) bool { return v.InRing && v.State == "up" }, watchReadyWait) {
			return nil, fmt.Errorf("backend %s not up and in the ring of mcproxy after %v (poll error: %q)",
				a, watchReadyWait, mon.Summary().FirstPollError)
		}
	}

	var version atomic.Uint64 // versions of the values set; 0 is the prefill
	cfg.progress("%s: load of %d connections for %v", cfg.Scenario, cfg.Conns, cfg.Steady)
	ld, err := startLoad(ctx, cl.Proxy.Addr, &cfg, ks, base, &version)
	if err != nil {
		return nil, fmt.Errorf("start load on %s: %w", cl.Proxy.Addr, err)
	}
	m.loadStart = since()
	var problems []string
	problem := func(err error) {
		if err != nil {
			problems = append(problems, err.Error())
		}
	}

	pause(ctx, cfg.Steady)
	cfg.progress("%s: failing %s", cfg.Scenario, victim.Addr)
	m.fail = since()
	if cfg.Scenario == Kill {
		victim.Kill()
	} else if err := victim.Freeze(); err != nil {
		problem(fmt.Errorf("fail victim: %w", err))
	}

	pause(ctx, time.Duration(m.fail+cfg.DownFor.Nanoseconds()-since()))
	cfg.progress("%s: recovering %s", cfg.Scenario, victim.Addr)
	m.recover = since()
	if cfg.Scenario == Kill {
		problem(victim.Relaunch())
	} else {
		problem(victim.Thaw())
	}

	inRing := func(v backendwatch.View) bool { return v.InRing }
	outOfRing := func(v backendwatch.View) bool { return !v.InRing }
	wait := cfg.readdWait()
	cfg.progress("%s: waiting up to %v for the victim to be in the ring", cfg.Scenario, wait)
	if !mon.WaitFor(ctx, victim.Addr, inRing, wait) {
		problem(fmt.Errorf("victim not back in the ring %v after recovery", wait))
	}
	pause(ctx, cfg.After)
	ld.stop()
	m.loadEnd = since()
	cfg.progress("%s: load stopped", cfg.Scenario)
	// The ejection is the first in_ring=false after the failure, the
	// re-adding the first in_ring=true after that.
	if ej, ok := mon.FirstAfter(victim.Addr, m.fail, outOfRing); ok {
		m.eject, m.ejected = ej.At, true
		if ra, ok := mon.FirstAfter(victim.Addr, m.eject, inRing); ok {
			m.readd, m.readded = ra.At, true
		}
	}

	var check *ReaddCheck
	if m.readded && cfg.ReaddCheckKeys > 0 && ctx.Err() == nil {
		check, err = readdCheck(ctx, cl, ks, &cfg, &version)
		problem(err)
	}
	// One more poll's worth of time so the final stats are current.
	pause(ctx, 2*cfg.PollInterval)
	mon.Stop()

	rep := &Report{
		Scenario:  string(cfg.Scenario),
		Settings:  settingsOf(&cfg),
		Victim:    victim.Addr,
		Survivors: addrs[1:],
		Prefill:   Prefill{Stored: stored, Failed: failed},
	}
	stopTook, err := cl.Proxy.Stop()
	problem(err)
	rep.ProxyStopS, rep.ProxyStopClean = stopTook.Seconds(), err == nil
	if cfg.KeepDir {
		rep.Dir = cl.Dir
	}
	if ctx.Err() != nil {
		problem(fmt.Errorf("run cut short: %w", context.Cause(ctx)))
	}
	rep.Problems = problems

	samples, dropped := ld.samples()
	fill(rep, &cfg, ks, m, samples, mon, victim.Addr)
	rep.SamplesDropped = dropped
	rep.ReaddCheck = check
	rep.Readd.WaitLimitS = wait.Seconds()
	for _, w := range ld.workers {
		rep.Reconnects += w.reconnects
	}
	rep.ServerErrors = countList(mergeCounts(ld.workers, func(w *loadWorker) map[string]int { return w.serverErrs }))
	rep.ClientErrors = countList(mergeCounts(ld.workers, func(w *loadWorker) map[string]int { return w.clientErrs }))
	rep.BadReplies = countList(mergeCounts(ld.workers, func(w *loadWorker) map[string]int { return w.badReplies }))
	if ctx.Err() != nil {
		return rep, fmt.Errorf("%s run cut short: %w", cfg.Scenario, ctx.Err())
	}
	return rep, nil
}

// fill computes the figures of rep from what the run recorded.
func fill(rep *Report, cfg *Config, ks *keySpace, m moments, samples []sample, mon *backendwatch.Watcher, victim string) {
	for _, i := range ks.sampled {
		rep.Owners.Sampled++
		switch o := ks.owner[i]; {
		case o == 0:
			rep.Owners.Victim++
		case o > 0:
			rep.Owners.Survivors++
		default:
			rep.Owners.Unknown++
		}
	}
	rep.LoadStartS, rep.RecoverS, rep.LoadEndS = m.rel(m.loadStart), m.rel(m.recover), m.rel(m.loadEnd)

	if c, ok := rep.Ejection.observe(mon, victim, m.fail, m.eject, m.ejected, "down"); ok {
		rep.Ejection.Reason = c.New.LastError
	}
	rep.Readd.observe(mon, victim, m.recover, m.readd, m.readded, "up")
	// The proxy's own counts over the run: the last poll's less the first's.
	sum := mon.Summary()
	if first, ok := mon.FirstAfter(victim, 0, func(backendwatch.View) bool { return true }); ok {
		last := sum.Views[victim]
		rep.Ejection.Count = last.Ejections - first.New.Ejections
		rep.Readd.Count = last.Readds - first.New.Readds
	}

	a := newAnalysis(cfg, ks, m, samples)
	rep.Windows = a.windows()
	rep.Total = a.window("total", m.loadStart, m.loadEnd)
	if m.ejected && m.eject < m.loadEnd {
		w := a.window("after eject", m.eject, m.loadEnd)
		rep.AfterEjection = &w
	}
	rep.Slowest = a.slowest(m.loadStart)
	rep.SlowestAfterFailure = a.slowest(m.fail)
	rep.TimelineStepS = timelineStep.Seconds()
	rep.Timeline = a.timeline()

	rep.Polls, rep.PollErrors, rep.MaxPollMS = sum.Polls, sum.PollErrors, ms(sum.MaxPoll)
	pre := "backend:" + victim + ":"
	for k, v := range sum.Last {
		if name, ok := strings.CutPrefix(k, pre); ok {
			if rep.VictimStats == nil {
				rep.VictimStats = map[string]string{}
			}
			rep.VictimStats[name] = v
		}
	}
}

// observe fills t, but for Count, from the polls of mon: the victim's
// in_ring changed at ringAt if seen, and the first poll after from (the
// failure, or the recovery) that showed it in state is returned.
func (t *Transition) observe(mon *backendwatch.Watcher, victim string, from, ringAt int64, seen bool, state string) (backendwatch.Change, bool) {
	t.Seen = seen
	if seen {
		t.RingS = secondsAfter(ringAt, from)
	}
	c, ok := mon.FirstAfter(victim, from, func(v backendwatch.View) bool { return v.State == state })
	if ok {
		t.StateS = secondsAfter(c.At, from)
	}
	return c, ok
}

// secondsAfter returns the time from from to t, both in nanoseconds of the
// run's clock, in seconds.
func secondsAfter(t, from int64) *float64 {
	v := float64(t-from) / 1e9
	return &v
}

// readdCheck sets some of the victim's keys through the proxy, with fresh
// versions, and looks them up directly on every memcached.
func readdCheck(ctx context.Context, cl *mcproxyproc.Cluster, ks *keySpace, cfg *Config, version *atomic.Uint64) (*ReaddCheck, error) {
	var idx []int
	for _, i := range ks.sampled {
		if ks.owner[i] == 0 {
			idx = append(idx, i)
			if len(idx) == cfg.ReaddCheckKeys {
				break
			}
		}
	}
	versions := make([]uint64, len(idx))
	for j := range versions {
		versions[j] = version.Add(1)
	}
	c := &ReaddCheck{Keys: len(idx)}
	var err error
	if c.Stored, err = setThrough(ctx, cl.Proxy.Addr, ks, idx, versions, cfg.ValueSize); err != nil {
		return c, fmt.Errorf("re-add check: set through the proxy: %w", err)
	}
	for b, m := range cl.Backends {
		found, err := presentOn(ctx, m.Addr, ks, idx, versions)
		if err != nil {
			return c, fmt.Errorf("re-add check: get from %s: %w", m.Addr, err)
		}
		for _, f := range found {
			if !f {
				continue
			}
			if b == 0 {
				c.OnVictim++
			} else {
				c.OnSurvivors++
			}
		}
	}
	return c, nil
}

func mergeCounts(ws []*loadWorker, get func(*loadWorker) map[string]int) map[string]int {
	m := map[string]int{}
	for _, w := range ws {
		for k, n := range get(w) {
			m[k] += n
		}
	}
	return m
}

func settingsOf(cfg *Config) Settings {
	return Settings{
		Conns:            cfg.Conns,
		Keys:             cfg.Keys,
		ValueSize:        cfg.ValueSize,
		SetPercent:       cfg.SetPercent,
		BackendTimeoutMS: ms(cfg.BackendTimeout),
		HealthIntervalMS: ms(cfg.Health.Interval),
		HealthTimeoutMS:  ms(cfg.Health.Timeout),
		FailureLimit:     cfg.Health.FailureLimit,
		SuccessLimit:     cfg.Health.SuccessLimit,
		DownForS:         cfg.DownFor.Seconds(),
		Seed:             cfg.Seed,
	}
}
