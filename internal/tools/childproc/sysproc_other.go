//go:build !linux

package childproc

import "syscall"

// childSysProcAttr returns nil: only Linux can tie a child's life to ours.
func childSysProcAttr() *syscall.SysProcAttr { return nil }
