package childproc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Process is one child process started by Start. Wait is called on it
// exactly once, by a goroutine that closes done, so any number of callers
// can wait for its end through Done.
type Process struct {
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error // valid once done is closed
}

// Start starts bin with args. Its standard output and error go to out
// (nil discards them); an *os.File needs no copying goroutine.
func Start(bin string, args []string, out io.Writer) (*Process, error) {
	cmd := exec.Command(bin, args...)
	if out != nil {
		cmd.Stdout, cmd.Stderr = out, out
	}
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("exec %s: %w", bin, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID returns the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed once the process has ended and been waited for.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns what Wait returned: nil for exit status 0. It is valid only
// once Done is closed.
func (p *Process) Err() error { return p.waitErr }

// ExitCode returns the exit status once Done is closed: -1 if a signal
// ended the process.
func (p *Process) ExitCode() int { return p.cmd.ProcessState.ExitCode() }

// Signal sends sig to the process unless it has already been waited for
// (its PID could then belong to another process).
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return fmt.Errorf("signal %v to pid %d: process already exited", sig, p.PID())
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v to pid %d: %w", sig, p.PID(), err)
	}
	return nil
}

// Kill ends the process with SIGKILL, which also ends a stopped process,
// and waits for it. It is safe to call after the process has ended.
func (p *Process) Kill() {
	if !p.Exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// WaitExit waits up to d for the process to end and reports whether it did.
func (p *Process) WaitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// Stop sends SIGTERM and waits up to grace for the process to end, then
// kills it. It returns nil only for a clean exit (status 0) within grace.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return fmt.Errorf("stop pid %d: it had already exited: %v", p.PID(), p.waitErr)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		p.Kill()
		return fmt.Errorf("stop: %w", err)
	}
	if !p.WaitExit(grace) {
		p.Kill()
		return fmt.Errorf("stop pid %d: no exit %v after SIGTERM; killed", p.PID(), grace)
	}
	if p.waitErr != nil {
		return fmt.Errorf("stop pid %d: %w", p.PID(), p.waitErr)
	}
	return nil
}

// WaitStopped waits up to wait until the kernel reports the process stopped
// (after SIGSTOP). Signal delivery is asynchronous: without this, a thread
// on another CPU could still answer a request sent right after the signal.
func (p *Process) WaitStopped(wait time.Duration) error {
	path := fmt.Sprintf("/proc/%d/stat", p.PID())
	deadline := time.Now().Add(wait)
	for {
		stat, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read state of pid %d: %w", p.PID(), err)
		}
		// The state follows the command name in parentheses: "pid (comm) T ...".
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'T' || stat[i+2] == 't') {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("pid %d exited instead of stopping: %v", p.PID(), p.waitErr)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d not stopped %v after SIGSTOP", p.PID(), wait)
		}
		time.Sleep(time.Millisecond)
	}
}

// ErrExited is wrapped by WaitAccepting's error when the process serving
// the address ended first.
var ErrExited = errors.New("process exited")

// WaitAccepting waits until addr accepts this process's connections. It
// gives up when the process ends or wait passes.
func (p *Process) WaitAccepting(addr string, wait time.Duration) error {
	return WaitAccepting(addr, wait, func() error {
		if p.Exited() {
			return fmt.Errorf("%w (pid %d: %v) before accepting on %s", ErrExited, p.PID(), p.waitErr, addr)
		}
		return nil
	})
}
