// Command mcfailover measures what clients of mcproxy see when one of three
// memcached backends dies (-scenario kill: SIGKILL, then a fresh memcached on
// the same port) or hangs (-scenario freeze: SIGSTOP, then SIGCONT), and
// comes back. It starts its own memcached processes and mcproxy binary on
// free 127.0.0.1 ports, puts a get/set load through the proxy, and reports
// the time to ejection and re-adding, the errors and latencies clients saw
// in each phase, and the hit ratios by owner of the key. The engine is
// internal/tools/failover.
//
//	make build && go run ./cmd/mcfailover                   # kill, then freeze
//	go run ./cmd/mcfailover -scenario freeze -down-for 8s -json
//
// It is a benchmark: it reports figures, not pass or fail. The exit status
// is 0 when every scenario ran to the end, 1 when a run was cut short or
// had trouble of its own (see "problems"), and 2 when it could not start.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mcproxy/mcproxy/internal/tools/cli"
	"github.com/mcproxy/mcproxy/internal/tools/failover"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// notRepro lists the flags that do not change what a run measures, left
// out of the command line printed to reproduce it.
var notRepro = map[string]bool{"json": true, "json-out": true, "keep": true, "quiet": true, "scenario": true}

func run(args []string, stdout, stderr io.Writer) int {
	cfg := failover.DefaultConfig()
	fs := cli.NewFlagSet("mcfailover", "Measures mcproxy while one of three memcached backends dies or hangs and recovers.", stderr)
	fs.StringVar(&cfg.Mcproxy, "mcproxy", cfg.Mcproxy, "mcproxy binary to test (make build)")
	fs.StringVar(&cfg.Memcached, "memcached", cfg.Memcached, "memcached binary")
	scenario := fs.String("scenario", "all", "kill, freeze, or all (kill then freeze)")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "load connections, one goroutine each")
	fs.IntVar(&cfg.Keys, "keys", cfg.Keys, "key space, all prefilled")
	fs.IntVar(&cfg.SetPercent, "set-percent", cfg.SetPercent, "share of sets in the load, 0..100; the rest are gets")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the load's key and command choice")
	fs.DurationVar(&cfg.BackendTimeout, "timeout", cfg.BackendTimeout, "backend.timeout written into mcproxy's config")
	cfg.Health.RegisterFlags(fs)
	fs.DurationVar(&cfg.Steady, "steady", cfg.Steady, "load before the failure")
	fs.DurationVar(&cfg.DownFor, "down-for", cfg.DownFor, "how long the victim stays dead or frozen")
	fs.DurationVar(&cfg.After, "after", cfg.After, "load after the victim is back in the ring")
	fs.IntVar(&cfg.OwnerSample, "owner-sample", cfg.OwnerSample, "keys whose owner is looked up on the backends (0: all)")
	asJSON := fs.Bool("json", false, "print each report as one line of JSON")
	jsonOut := fs.String("json-out", "", "also append each report as one line of JSON to this file")
	fs.BoolVar(&cfg.KeepDir, "keep", false, "keep the temp dir with mcproxy's config and log")
	quiet := fs.Bool("quiet", false, "no progress lines on stderr")
	if status, ok := cli.Parse(fs, args); !ok {
		return status
	}
	scenarios := failover.Scenarios
	if *scenario != "all" {
		sc, err := failover.ParseScenario(*scenario)
		if err != nil {
			fmt.Fprintln(stderr, "mcfailover:", err)
			return 2
		}
		scenarios = []failover.Scenario{sc}
	}
	if !*quiet {
		cfg.Progress = func(format string, args ...any) {
			fmt.Fprintf(stderr, "mcfailover: "+format+"\n", args...)
		}
	}

	ctx, stop := cli.Interruptible()
	defer stop()
	status := 0
	for _, sc := range scenarios {
		c := cfg
		c.Scenario = sc
		rep, err := failover.Run(ctx, c)
		if rep == nil {
			fmt.Fprintf(stderr, "mcfailover: %s: %v\n", sc, err)
			return 2
		}
		rep.Command = reproduce(fs, sc)
		if err != nil || len(rep.Problems) > 0 {
			status = 1
		}
		if *asJSON {
			err = rep.WriteJSON(stdout)
		} else {
			err = rep.WriteText(stdout)
		}
		if err == nil && *jsonOut != "" {
			err = appendJSON(*jsonOut, rep)
		}
		if err != nil {
			fmt.Fprintln(stderr, "mcfailover:", err)
			return 2
		}
		if ctx.Err() != nil {
			break
		}
	}
	return status
}

// appendJSON appends rep as one line of JSON to the file at path.
func appendJSON(path string, rep *failover.Report) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open -json-out file: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// reproduce returns the command line that runs scenario sc with the
// settings of fs, every setting written out.
func reproduce(fs *flag.FlagSet, sc failover.Scenario) string {
	parts := []string{"go run ./cmd/mcfailover", "-scenario " + string(sc)}
	fs.VisitAll(func(f *flag.Flag) {
		if notRepro[f.Name] {
			return
		}
		parts = append(parts, "-"+f.Name+" "+shellQuote(f.Value.String()))
	})
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
