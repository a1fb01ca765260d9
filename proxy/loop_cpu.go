package proxy

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// hostCPU measures the idle CPUs of the host among those the process may
// run on, from /proc/stat, for the loop balancer (loop_balance.go): waking
// a loop is worth it only when a CPU is idle to run it. One read of
// /proc/stat per balancer interval; owned by the balancer.
//
// It counts what the host's scheduler sees as idle: on a host shared with
// other processes (the clients of a sidecar, the backends) their work is
// not idle, which is the point. A container's CPU quota is not seen here;
// Go sizes GOMAXPROCS, and so the number of loops, to it.
type hostCPU struct {
	allowed    unix.CPUSet // CPUs the process may run on; empty: all
	haveMask   bool
	prevIdle   uint64 // idle+iowait jiffies of the allowed CPUs
	prevTotal  uint64 // all jiffies of the allowed CPUs
	cpus       int    // allowed CPUs found in /proc/stat
	ok         bool   // the last read worked
	statBuffer []byte
}

func (h *hostCPU) init() {
	h.haveMask = unix.SchedGetaffinity(0, &h.allowed) == nil && h.allowed.Count() > 0
	h.prevIdle, h.prevTotal, h.ok = h.read()
}

// idleCPUs returns the idle CPUs, on average, since the last call (1.5: a
// CPU and a half); negative when /proc/stat cannot be read.
func (h *hostCPU) idleCPUs() float64 {
	idle, total, ok := h.read()
	wasOK := h.ok
	h.ok = ok
	if !ok || !wasOK || total <= h.prevTotal {
		h.prevIdle, h.prevTotal = idle, total
		return -1
	}
	f := float64(idle-h.prevIdle) / float64(total-h.prevTotal) * float64(h.cpus)
	h.prevIdle, h.prevTotal = idle, total
	return f
}

// read sums the idle and total jiffies of the allowed CPUs.
func (h *hostCPU) read() (idle, total uint64, ok bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	if h.statBuffer == nil {
		h.statBuffer = make([]byte, 64<<10)
	}
	n, _ := f.Read(h.statBuffer) // one read: the cpu lines come first
	h.cpus = 0
	for _, line := range bytes.Split(h.statBuffer[:n], []byte("\n")) {
		cpu, ok := cpuNumber(line)
		if !ok {
			continue
		}
		if h.haveMask && !h.allowed.IsSet(cpu) {
			continue
		}
		i, t := cpuJiffies(line)
		idle += i
		total += t
		h.cpus++
	}
	return idle, total, h.cpus > 0
}

// cpuNumber returns N of a "cpuN ..." line of /proc/stat.
func cpuNumber(line []byte) (int, bool) {
	rest, found := bytes.CutPrefix(line, []byte("cpu"))
	if !found {
		return 0, false
	}
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return 0, false // "cpu " is the sum of them all
	}
	n, err := strconv.Atoi(string(rest[:sp]))
	return n, err == nil
}

// cpuJiffies returns the idle (idle, iowait) and total jiffies of a cpu
// line: user nice system idle iowait irq softirq steal ...
func cpuJiffies(line []byte) (idle, total uint64) {
	for i, field := range bytes.Fields(line)[1:] {
		v, err := strconv.ParseUint(string(field), 10, 64)
		if err != nil {
			break
		}
		if i >= 8 {
			break // guest times are already in user and nice
		}
		total += v
		if i == 3 || i == 4 {
			idle += v
		}
	}
	return idle, total
}
