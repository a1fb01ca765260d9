// Command mcproxy is a memcached-protocol sharding proxy. It reads a YAML
// config naming the backends, listens for memcached clients, and spreads
// their keys over the backends with a bounded-load consistent ring. It
// follows edits of the config file (and SIGHUP) without a restart.
//
//	mcproxy -config configs/local.yaml -log-format console
//	mcproxy -check -config /etc/mcproxy/mcproxy.yaml   # validate and exit
//	mcproxy -probe 127.0.0.1:11211                     # health check and exit
//	mcproxy -import-twemproxy nutcracker.yml > mcproxy.yaml  # convert a twemproxy config
//
// Exit status: 0 on success (and for -help), 1 on an error, 2 for a bad
// command line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcproxy/mcproxy/internal/config"
	"github.com/mcproxy/mcproxy/internal/twemimport"
	"go.uber.org/zap"
)

// shutdownGrace bounds how long a stopping proxy waits for clients to
// receive the replies they are owed (the default of -shutdown-grace).
const shutdownGrace = 10 * time.Second

// exitForced is the exit status after a second SIGTERM or SIGINT cut the
// drain short.
const exitForced = 1

func main() { os.Exit(exitCode(run(os.Args[1:]), os.Stderr)) }

// exitCode prints err, if any, and maps it to the exit status.
func exitCode(err error, stderr io.Writer) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if !ue.printed {
			fmt.Fprintln(stderr, "mcproxy:", err)
		}
		return 2
	}
	fmt.Fprintln(stderr, "mcproxy:", err)
	return 1
}

func run(args []string) error {
	f, err := parseFlags(args, os.Stdout, os.Stderr)
	if err != nil {
		return err
	}
	switch {
	case f.version:
		fmt.Println("mcproxy", fullVersion())
		return nil
	case f.probe != "":
		return probe(f.probe, f.probeTimeout)
	case f.importTwem != "":
		return importTwemproxy(f.importTwem, os.Stdout)
	}
	configPath, err := f.configPath()
	if err != nil {
		return err
	}
	if f.check {
		return check(configPath, os.Stdout, os.Stderr)
	}
	log, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	ctx := stopOnSignal(log)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	return serve(ctx, configPath, reload, log, f.grace)
}

// check loads and validates the config at path, as a start or a reload
// would, and says so on out, followed by each pool's placement and each
// route; the error lists every problem with its key and line. The flags given with -check were checked by parseFlags. A
// backend whose address does not resolve now gets a warning on warn: the
// config is valid, but that backend's keys would fail.
func check(path string, out, warn io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "config %s is valid: listen %s, %d backends", path, cfg.Listen, len(configServers(cfg)))
	if n := len(cfg.PoolList()); n > 1 {
		fmt.Fprintf(out, " in %d pools", n)
	}
	fmt.Fprintln(out)
	printPools(out, cfg)
	for _, w := range unresolvedBackends(cfg) {
		fmt.Fprintln(warn, "mcproxy: warning:", w)
	}
	return nil
}

// importTwemproxy prints the mcproxy config equivalent to the twemproxy
// config at path on out.
func importTwemproxy(path string, out io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("import twemproxy config: %w", err)
	}
	text, err := twemimport.Convert(data, path)
	if err != nil {
		return fmt.Errorf("import twemproxy config %s: %w", path, err)
	}
	_, err = out.Write(text)
	return err
}

// stopOnSignal returns a context that ends at the first SIGTERM or SIGINT,
// which starts the graceful drain. A second one exits at once: the
// operator has decided not to wait for the drain.
func stopOnSignal(log *zap.Logger) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		log.Info("signal received: stopping", zap.Stringer("signal", sig))
		cancel()
		sig = <-sigs
		log.Warn("second signal: exiting without finishing the drain", zap.Stringer("signal", sig))
		_ = log.Sync()
		os.Exit(exitForced)
	}()
	return ctx
}
