package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is the unit of utime and stime in /proc/PID/stat. Linux exposes
// them in USER_HZ, which is 100 on every architecture Go supports.
const clockTicks = 100

// ProcSample is what the kernel has counted for one process so far: CPU time
// (user plus system) and read- and write-class system calls. Two samples
// around a run give the process's cost of that run, steadier on a noisy
// machine than throughput.
type ProcSample struct {
	CPUSeconds float64 // utime + stime
	Syscalls   uint64  // syscr + syscw from /proc/PID/io
}

// Sub returns the cost between an earlier sample and s.
func (s ProcSample) Sub(earlier ProcSample) ProcSample {
	return ProcSample{CPUSeconds: s.CPUSeconds - earlier.CPUSeconds, Syscalls: s.Syscalls - earlier.Syscalls}
}

// SampleProc reads /proc/PID/stat and /proc/PID/io. Reading another user's
// io file needs the same user or root.
func SampleProc(pid int) (ProcSample, error) {
	cpu, err := readProc(pid, "stat", parseStatCPU)
	if err != nil {
		return ProcSample{}, fmt.Errorf("sample process %d: %w", pid, err)
	}
	sys, err := readProc(pid, "io", parseIOSyscalls)
	if err != nil {
		return ProcSample{}, fmt.Errorf("sample process %d: %w", pid, err)
	}
	return ProcSample{CPUSeconds: cpu, Syscalls: sys}, nil
}

// readProc reads /proc/PID/name and returns what parse makes of it.
func readProc[T any](pid int, name string, parse func([]byte) (T, error)) (T, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
	if err != nil {
		var zero T
		return zero, err
	}
	return parse(b)
}

// parseStatCPU returns utime+stime in seconds from the text of
// /proc/PID/stat. The command name (field 2) is in parentheses and may hold
// spaces, so fields are counted from the last ')'.
func parseStatCPU(stat []byte) (float64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no ')' in %.40q", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	// After the name: state(3) ppid(4) ... utime(14) stime(15); f[0] is field 3.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the name, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("stat: utime %q stime %q", f[11], f[12])
	}
	return float64(ut+st) / clockTicks, nil
}

// parseIOSyscalls returns syscr+syscw from the text of /proc/PID/io.
func parseIOSyscalls(io []byte) (uint64, error) {
	var total uint64
	found := 0
	for _, line := range strings.Split(string(io), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || (name != "syscr" && name != "syscw") {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(val), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("io: %s %q", name, val)
		}
		total += n
		found++
	}
	if found != 2 {
		return 0, fmt.Errorf("io: syscr and syscw not both present")
	}
	return total, nil
}

// procWatch samples a process when the measured phase starts and again when
// finish is called. It runs on its own goroutine until the first sample.
type procWatch struct {
	pid   int
	done  chan struct{}
	first ProcSample
	err   error
}

func startProcWatch(pid int, at time.Time) *procWatch {
	w := &procWatch{pid: pid, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		time.Sleep(time.Until(at))
		w.first, w.err = SampleProc(pid)
	}()
	return w
}

// finish takes the second sample and returns the cost between the two.
func (w *procWatch) finish() (ProcSample, error) {
	<-w.done
	if w.err != nil {
		return ProcSample{}, w.err
	}
	last, err := SampleProc(w.pid)
	if err != nil {
		return ProcSample{}, err
	}
	return last.Sub(w.first), nil
}
