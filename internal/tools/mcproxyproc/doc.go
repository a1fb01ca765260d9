// Package mcproxyproc builds and runs the mcproxy binary as a child process
// (internal/tools/childproc) for the tools and tests that treat it as a black
// box: mcfailover and mcsoak (Launch), the signal and drain tests of
// cmd/mcproxy and the deployment checks of test/deploytest (StartT). It
// also holds the health settings mcfailover and mcsoak both write into the
// proxy's config, with their flags (HealthSettings).
// Every proxy listens on 127.0.0.1 only and is ended by its PID.
package mcproxyproc
