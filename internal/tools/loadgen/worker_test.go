package loadgen

import (
	"context"
	"testing"
	"time"
)

// TestWorkerRefusesNonLoopback: a worker never dials an address off the
// machine, whatever its caller checked.
func TestWorkerRefusesNonLoopback(t *testing.T) {
	w := NewWorker(&Spec{Keys: 1, GetWeight: 1, MultiGet: 1, Timeout: time.Second}, "192.0.2.1:11211", 0, 1)
	if err := w.Connect(context.Background(), time.Now()); err == nil || w.Connected() {
		t.Fatalf("Connect to TEST-NET-1 = %v, want a refusal", err)
	}
}
