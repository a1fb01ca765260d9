// Command mcproxy is a memcached-protocol sharding proxy. It reads a YAML
// config naming the backends, listens for memcached clients, and spreads
// their keys over the backends with a bounded-load consistent ring. It
// follows edits of the config file (and SIGHUP) without a restart.
//
//	mcproxy -config configs/local.yaml -log-format console
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// shutdownGrace bounds how long a stopping proxy waits for clients to
// receive the replies they are owed (the default of -shutdown-grace).
const shutdownGrace = 10 * time.Second

// exitForced is the exit status after a second SIGTERM or SIGINT cut the
// drain short.
const exitForced = 1

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mcproxy:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mcproxy", flag.ContinueOnError)
	configPath := fs.String("config", "configs/local.yaml", "path of the YAML config file")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	logFormat := fs.String("log-format", "json", "log format: json (for machines) or console (for people)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	grace := fs.Duration("shutdown-grace", shutdownGrace,
		"on SIGTERM or SIGINT, how long to wait for clients to get the replies they are owed; a second signal exits at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *showVersion {
		fmt.Println("mcproxy", version)
		return nil
	}
	log, err := newLogger(*logLevel, *logFormat)
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
	return serve(ctx, *configPath, reload, log, *grace)
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
