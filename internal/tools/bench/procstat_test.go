package bench

import (
	"os"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	// A name with spaces and a ')' of its own, as the kernel prints it.
	stat := []byte("4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 1000 100000 200 18446744073709551615\n")
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if got != 3.25 {
		t.Errorf("cpu = %v, want 3.25 (325 ticks)", got)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1")); err == nil {
		t.Error("a short stat line parsed")
	}
}

func TestParseIOSyscalls(t *testing.T) {
	io := []byte("rchar: 10\nwchar: 20\nsyscr: 7\nsyscw: 5\nread_bytes: 0\n")
	if got, err := parseIOSyscalls(io); err != nil || got != 12 {
		t.Errorf("syscalls = %d, %v; want 12", got, err)
	}
	if _, err := parseIOSyscalls([]byte("rchar: 1\n")); err == nil {
		t.Error("io without syscr/syscw parsed")
	}
}

// TestSampleProcSelf: the test's own process has counted CPU time and
// system calls, and a second sample is not below the first.
func TestSampleProcSelf(t *testing.T) {
	a, err := SampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	f, err := os.Open("/dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := 0; i < 100; i++ {
		if _, err := f.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	b, err := SampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	d := b.Sub(a)
	if d.Syscalls < 100 || d.CPUSeconds < 0 {
		t.Errorf("after 100 reads: %+v", d)
	}
}
