// Command mcbench puts a bounded memcached text-protocol load on one loopback
// target (memcached, twemproxy or mcproxy) and reports throughput, hits and
// errors, and latency percentiles. It speaks the protocol over raw TCP itself,
// so its own cost is the same for every target. The engine is
// internal/tools/bench; scripts/compare.sh uses it to compare targets.
//
//	mcbench -addr 127.0.0.1:11211 -duration 10s -conns 50 -pipeline 1 -ratio 9:1 -prefill
//	mcbench -addr 127.0.0.1:22121 -multiget 10 -pipeline 8 -json
//	mcbench -scenario output-limit -mcproxy bin/mcproxy
//
// -scenario output-limit does not load a given target: it starts memcached
// and the given mcproxy binary itself, twice, and measures the proxy's peak
// RSS and another client's gets while one client pipelines gets it never
// reads, then while one reads a 1 GB reply slowly (internal/tools/bench,
// outputlimit.go).
//
// Only loopback targets (127.0.0.0/8, ::1, localhost) are accepted, and every
// run stops by itself after -warmup plus -duration, or after -requests.
// The exit status is 0 when the run had no errors, 1 when it had some, and 2
// when it could not start.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/mcproxy/mcproxy/internal/tools/bench"
	"github.com/mcproxy/mcproxy/internal/tools/cli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg := bench.DefaultConfig()
	fs := cli.NewFlagSet("mcbench", "A bounded memcached text-protocol load against one loopback target.", stderr)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "target host:port; loopback only (127.0.0.0/8, ::1, localhost)")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "connections, one goroutine each")
	fs.IntVar(&cfg.Pipeline, "pipeline", cfg.Pipeline, "commands in flight per connection (sent in one write, then their replies read)")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of the measured phase (the run always ends by itself)")
	fs.Int64Var(&cfg.Requests, "requests", 0, "stop the measured phase after this many commands (0: no limit, -duration still applies)")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "unmeasured load before the measured phase")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound on every connect and every batch of commands")
	fs.IntVar(&cfg.Keys, "keys", cfg.Keys, "key space: keys are <key-prefix>0 .. <key-prefix>(keys-1), chosen uniformly")
	fs.StringVar(&cfg.KeyPrefix, "key-prefix", cfg.KeyPrefix, "prefix of every key")
	fs.IntVar(&cfg.ValueSize, "value-size", cfg.ValueSize, "bytes per value set")
	ratio := fs.String("ratio", "9:1", "get:set mix, e.g. 9:1, 1:0 (gets only), 0:1 (sets only)")
	fs.IntVar(&cfg.MultiGet, "multiget", cfg.MultiGet, "keys per get command")
	fs.BoolVar(&cfg.Prefill, "prefill", false, "set every key once before the warmup, so gets hit")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the key choice; the same seed gives every target the same keys")
	fs.DurationVar(&cfg.NewClientEvery, "new-client-every", 0, "also connect a new client this often over the measured phase, ask \"version\" and time the reply from the dial (0: off)")
	fs.IntVar(&cfg.WatchPID, "pid", 0, "also report this process's CPU time and read/write syscalls over the measured phase (from /proc)")
	var tf bench.TLSFiles
	fs.StringVar(&tf.CA, "tls-ca", "", "speak TLS to the target, trusting this CA file (PEM)")
	fs.StringVar(&tf.Cert, "tls-cert", "", "with -tls-ca: present this client certificate (PEM)")
	fs.StringVar(&tf.Key, "tls-key", "", "with -tls-cert: its key (PEM)")
	asJSON := fs.Bool("json", false, "print the result as one line of JSON")
	report := fs.String("report", "", "do not run: read a results file of scripts/compare.sh and print its medians as markdown")
	svgOut := fs.String("svg", "", "with -report: also draw the chart into this SVG file")
	scenario := fs.String("scenario", "", "do not run the load: run a scenario against its own memcached and mcproxy; output-limit")
	olCfg := bench.OutputLimitConfig{Mcproxy: "bin/mcproxy", Memcached: "memcached"}
	fs.StringVar(&olCfg.Mcproxy, "mcproxy", olCfg.Mcproxy, "with -scenario: the mcproxy binary to run (make build)")
	fs.StringVar(&olCfg.Memcached, "memcached", olCfg.Memcached, "with -scenario: the memcached binary")
	fs.BoolVar(&olCfg.KeepDir, "keep", false, "with -scenario: keep the temp dirs with mcproxy's config and log")
	if status, ok := cli.Parse(fs, args); !ok {
		return status
	}
	if *report != "" {
		return writeReport(*report, *svgOut, stdout, stderr)
	}
	if *scenario != "" {
		return runScenario(*scenario, olCfg, stdout, stderr)
	}
	var err error
	if cfg.TLS, err = tf.Config(); err != nil {
		fmt.Fprintln(stderr, "mcbench:", err)
		return 2
	}
	if cfg.GetWeight, cfg.SetWeight, err = bench.ParseRatio(*ratio); err != nil {
		fmt.Fprintln(stderr, "mcbench:", err)
		return 2
	}

	ctx, stop := cli.Interruptible()
	defer stop()
	res, err := bench.Run(ctx, cfg)
	if res == nil {
		fmt.Fprintln(stderr, "mcbench:", err)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "mcbench: interrupted; partial result:", err)
	}
	if *asJSON {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "mcbench:", err)
		return 2
	}
	if res.Errors > 0 || res.Counts[bench.PrefillErrors] > 0 {
		return 1
	}
	return 0
}

// writeReport prints the medians of a comparison's results file as
// markdown, and draws its chart when svgPath is set.
func writeReport(resultsPath, svgPath string, stdout, stderr io.Writer) int {
	runs, err := bench.LoadCompareRuns(resultsPath)
	if err != nil {
		fmt.Fprintln(stderr, "mcbench:", err)
		return 2
	}
	ws := bench.Medians(runs)
	if err := bench.WriteCompareMarkdown(stdout, ws); err != nil {
		fmt.Fprintln(stderr, "mcbench:", err)
		return 2
	}
	if svgPath == "" {
		return 0
	}
	f, err := os.Create(svgPath)
	if err == nil {
		err = bench.WriteCompareSVG(f, ws)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "mcbench: chart:", err)
		return 2
	}
	return 0
}

// runScenario runs the named scenario and prints its figures. The exit
// status is 1 when the slow reader of output-limit did not receive its
// whole reply.
func runScenario(name string, cfg bench.OutputLimitConfig, stdout, stderr io.Writer) int {
	if name != "output-limit" {
		fmt.Fprintf(stderr, "mcbench: unknown scenario %q; known: output-limit\n", name)
		return cli.ExitUsage
	}
	ctx, stop := cli.Interruptible()
	defer stop()
	results, err := bench.RunOutputLimit(ctx, cfg)
	status := 0
	for i := range results {
		if werr := results[i].WriteText(stdout); werr != nil && err == nil {
			err = werr
		}
		if !results[i].Complete() {
			status = 1
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "mcbench:", err)
		return cli.ExitUsage
	}
	return status
}
