package soak

import "syscall"

// childSysProcAttr makes the kernel SIGKILL a child when this process dies,
// so an interrupted run leaves no memcached or mcproxy behind.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
