package childproc

import "syscall"

// childSysProcAttr makes the kernel SIGKILL a child when this process dies,
// so a test binary killed by its timeout, or an interrupted tool, leaves no
// memcached or mcproxy behind.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
