// Package cli holds what the tool commands (mcbench, mcfailover, mcsoak)
// share around their flags: one usage layout, one way to end on -h, a bad
// flag or a stray argument, and one interrupt context, so the three agree
// on exit statuses.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// ExitUsage is the exit status of a command that could not start: a bad
// flag or argument, or a run that could not be set up.
const ExitUsage = 2

// NewFlagSet returns a flag set for the command name that reports to
// stderr; -h prints "usage: name [flags]", the summary and the flags.
func NewFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s [flags]\n\n%s\n\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses args into fs. When the command should end at once it
// returns false and the exit status: 0 after -h, ExitUsage for a bad flag
// or a stray argument (said on fs's output).
func Parse(fs *flag.FlagSet, args []string) (status int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return ExitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return ExitUsage, false
	}
	return 0, true
}
