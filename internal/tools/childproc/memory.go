package childproc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// StatusKiB returns a memory field of the process's /proc/PID/status in
// KiB: "VmRSS" (resident memory now) or "VmHWM" (its peak since start or
// since ResetPeakRSS).
func (p *Process) StatusKiB(field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		return 0, fmt.Errorf("read %s of pid %d: %w", field, p.PID(), err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("read %s of pid %d: no %s line in kB", field, p.PID(), field)
}

// ResetPeakRSS makes the process's VmHWM start again from its current RSS
// (writing 5 to /proc/PID/clear_refs), so that a peak measured afterwards
// leaves out what was set up before.
func (p *Process) ResetPeakRSS() error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.PID()), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS of pid %d: %w", p.PID(), err)
	}
	return nil
}
