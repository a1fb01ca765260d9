// Package mcproxyproc runs the mcproxy binary as a child process
// (internal/tools/childproc) for the tools that treat it as a black box:
// mcfailover and mcsoak start it alone (Launch) or in front of memcached
// backends (StartCluster) and scrape its metrics (Scrape). It also holds
// the health settings both tools write into the proxy's config, with
// their flags (HealthSettings). Every proxy listens on 127.0.0.1 only and
// is ended by its PID. Nothing here imports package testing: the tests'
// helpers around it are in internal/testkit/childproxy.
package mcproxyproc
