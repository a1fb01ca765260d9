package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// defaultConfigPaths are tried in order when -config is not given: a file in
// the working directory first (a checkout, a container's WORKDIR), then the
// system-wide location packages and the systemd unit use.
var defaultConfigPaths = []string{"mcproxy.yaml", "/etc/mcproxy/mcproxy.yaml"}

// defaultProbeTimeout bounds one -probe: dial, write and read together.
const defaultProbeTimeout = 2 * time.Second

// usageError is a bad command line; main exits 2 for it, as Go's flag
// package and most Unix tools do. printed is set when the flag package has
// already told the user.
type usageError struct {
	err     error
	printed bool
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// flags is the parsed command line.
type flags struct {
	config       string // "" when -config was not given
	logLevel     string
	logFormat    string
	version      bool
	check        bool
	probe        string
	probeTimeout time.Duration
	grace        time.Duration // -shutdown-grace
	importTwem   string        // -import-twemproxy: a nutcracker.yml to convert
}

// parseFlags parses and checks args. -help returns flag.ErrHelp after
// printing the usage to stdout (so `mcproxy -help | less` shows it); any
// other problem returns a usageError, with the usage on stderr. A value no
// start would accept (-log-level verbose) is refused here, so -check
// refuses it too.
func parseFlags(args []string, stdout, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("mcproxy", flag.ContinueOnError)
	fs.SetOutput(stderr) // the flag package's own error line
	fs.StringVar(&f.config, "config", "", "path of the YAML config file (default: the first of "+
		strings.Join(defaultConfigPaths, ", ")+" that exists)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "json", "log format: json (for machines) or console (for people)")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.BoolVar(&f.check, "check", false, "check the config file and exit: 0 when it is valid, 1 with every problem")
	fs.StringVar(&f.probe, "probe", "", "health-check the mcproxy (or memcached) at `host:port` and exit: 0 when it answers \"version\", else 1")
	fs.StringVar(&f.importTwem, "import-twemproxy", "", "print the mcproxy config equivalent to the twemproxy (nutcracker) config `file` and exit; "+
		"its pools place every key where twemproxy did (see docs/migration.md)")
	fs.DurationVar(&f.probeTimeout, "probe-timeout", defaultProbeTimeout, "bound on one -probe")
	fs.DurationVar(&f.grace, "shutdown-grace", shutdownGrace,
		"on SIGTERM or SIGINT, how long to wait for clients to get the replies they are owed; a second signal exits at once")
	var usage bytes.Buffer // stdout for -help, stderr after a mistake
	fs.Usage = func() {
		fmt.Fprintf(&usage, "Usage: mcproxy [flags]\n\nmcproxy is a memcached-protocol sharding proxy. Flags:\n")
		fs.SetOutput(&usage)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, _ = usage.WriteTo(stdout)
			return f, err
		}
		_, _ = usage.WriteTo(stderr)
		return f, usageError{err: err, printed: true} // flag has printed the problem and the usage
	}
	if fs.NArg() > 0 {
		return f, usageError{err: fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if f.probeTimeout <= 0 {
		return f, usageError{err: fmt.Errorf("-probe-timeout %v must be greater than 0", f.probeTimeout)}
	}
	if f.grace < 0 {
		return f, usageError{err: fmt.Errorf("-shutdown-grace %v must not be negative", f.grace)}
	}
	if _, err := loggerConfig(f.logLevel, f.logFormat); err != nil {
		return f, usageError{err: err}
	}
	return f, nil
}

// configPath returns -config, or else the first default path that exists.
func (f flags) configPath() (string, error) {
	if f.config != "" {
		return f.config, nil
	}
	for _, p := range defaultConfigPaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no config file: -config not given and none of %s exists", strings.Join(defaultConfigPaths, ", "))
}
