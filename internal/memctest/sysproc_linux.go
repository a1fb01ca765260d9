package memctest

import "syscall"

// childSysProcAttr makes the kernel SIGKILL memcached when the test
// process dies, so a test binary killed by its timeout leaves no server
// behind.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
