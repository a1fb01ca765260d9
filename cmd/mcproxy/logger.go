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

// logLevels are the values -log-level takes. zap also knows dpanic, panic
// and fatal, which mcproxy never logs at: a level that silences its errors
// is refused rather than taken.
var logLevels = map[string]zapcore.Level{
	"debug": zapcore.DebugLevel,
	"info":  zapcore.InfoLevel,
	"warn":  zapcore.WarnLevel,
	"error": zapcore.ErrorLevel,
}

// loggerConfig checks -log-level and -log-format and returns the logger
// they ask for; parseFlags calls it so that a bad value is a bad command
// line, for -check as for a start.
func loggerConfig(level, format string) (zap.Config, error) {
	lvl, ok := logLevels[level]
	if !ok {
		return zap.Config{}, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
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
