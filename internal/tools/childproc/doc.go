// Package childproc owns the child processes that tests and tools start:
// memcached (through internal/tools/memcachedproc) and the mcproxy binary
// (through internal/tools/mcproxyproc). A Process is only ever signalled by
// its own PID and waited for exactly once; on Linux the kernel kills it if this process
// dies, so an interrupted test or tool leaves nothing behind. The package
// also picks free loopback ports and waits for a listener to accept.
package childproc
