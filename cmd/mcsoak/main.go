// Command mcsoak soaks mcproxy: real memcached backends and the real
// mcproxy binary on loopback, pipelined traffic on many connections for a
// few minutes while backends are killed, restarted, frozen and thawed, and
// every read checked against the writes the clients were told about. It
// exits 1 if any read was stale or bogus, 2 if the run could not be done.
//
//	make soak SOAK_ARGS='-duration 5m -conns 32'
package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/cli"
	"github.com/mcproxy/mcproxy/internal/tools/soak"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func run(args []string) int {
	cfg := soak.DefaultConfig()
	fs := cli.NewFlagSet("mcsoak", "Soaks mcproxy: load through it while backends are killed and frozen; every read is checked.", os.Stderr)
	fs.StringVar(&cfg.Mcproxy, "mcproxy", cfg.Mcproxy, "mcproxy binary (make build)")
	fs.IntVar(&cfg.Backends, "backends", cfg.Backends, "memcached processes")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of the load")
	cfg.Workload.RegisterFlags(fs)
	cfg.Chaos.RegisterFlags(fs)
	pc := &cfg.Proxy
	pc.Health.RegisterFlags(fs)
	fs.BoolVar(&pc.FlushOnReadd, "flush-on-readd", pc.FlushOnReadd, "proxy health.flush_on_readd")
	fs.DurationVar(&pc.BackendTimeout, "backend-timeout", pc.BackendTimeout, "proxy backend.timeout")
	fs.DurationVar(&pc.ConnectTimeout, "connect-timeout", pc.ConnectTimeout, "proxy backend.connect_timeout")
	failoverTTL := fs.Duration("failover-ttl", 0, "proxy failover.ttl; 0 leaves the key out (for a proxy without it)")
	replicas := fs.Int("replicas", 0, "proxy replicas: copies of each key (docs/replicas.md); 0 leaves the key out (for a proxy without it)")
	var extra stringList
	fs.Var(&extra, "set", "further proxy config key, section.key=value (repeatable), e.g. -set health.max_ejected=1")
	fs.DurationVar(&cfg.PollInterval, "poll", cfg.PollInterval, "interval of the stats backends poll")
	fs.DurationVar(&cfg.SettleWait, "settle", cfg.SettleWait, "after the load, wait up to this for every backend to be back in the ring")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "random seed of the workload")
	fs.BoolVar(&cfg.KeepDir, "keep", false, "keep the temp dir with the proxy's config and log")
	quiet := fs.Bool("q", false, "no progress lines")
	if status, ok := cli.Parse(fs, args); !ok {
		return status
	}
	if *failoverTTL > 0 {
		pc.Extra = append(pc.Extra, "failover.ttl="+failoverTTL.String())
	}
	if *replicas > 0 {
		pc.Extra = append(pc.Extra, fmt.Sprint("replicas=", *replicas))
	}
	pc.Extra = append(pc.Extra, extra...)
	if !*quiet {
		cfg.Progress = func(format string, a ...any) { fmt.Fprintf(os.Stderr, "mcsoak: "+format+"\n", a...) }
	}

	ctx, stop := cli.Interruptible()
	defer stop()
	start := time.Now()
	rep, err := soak.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcsoak:", err)
		return 2
	}
	if err := rep.WriteText(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mcsoak:", err)
		return 2
	}
	fmt.Printf("wall time %s", time.Since(start).Round(time.Second))
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		fmt.Printf(", mcsoak max RSS %d MiB", ru.Maxrss/1024) // Linux reports KiB
	}
	fmt.Println()
	if rep.Failed() {
		return 1
	}
	return 0
}
