package main

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogger builds a zap logger: JSON for log pipelines, console for
// people at a terminal.
func newLogger(level, format string) (*zap.Logger, error) {
	zc, err := loggerConfig(level, format)
	if err != nil {
		return nil, err
	}
	return zc.Build()
}

// loggerConfig checks -log-level and -log-format and returns the logger
// they ask for; parseFlags calls it so that a bad value is a bad command
// line, for -check as for a start.
func loggerConfig(level, format string) (zap.Config, error) {
	var lvl zapcore.Level
	if err := lvl.Set(level); err != nil {
		return zap.Config{}, fmt.Errorf("-log-level %q: %w (want debug, info, warn or error)", level, err)
	}
	var zc zap.Config
	switch format {
	case "json":
		zc = zap.NewProductionConfig()
	case "console":
		zc = zap.NewDevelopmentConfig()
		zc.Development = false
		zc.DisableStacktrace = true
	default:
		return zap.Config{}, fmt.Errorf("-log-format %q: want json or console", format)
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	return zc, nil
}
