package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testDebounce is short enough for quick tests and long enough that a
// tight loop of writes always lands in one burst.
const testDebounce = 150 * time.Millisecond

// watcher runs Watch on path in the background and records what the file
// held at each onChange call.
type watcher struct {
	path     string
	debounce time.Duration
	mu       sync.Mutex
	seen     []string // the file's content at each call, "" if unreadable
	base     int      // calls made for sentinels, not counted by waitCalls
	sents    int      // sentinels written so far
	done     chan error
}

// startWatch starts watching path and returns once the watches are in
// place. The watch is stopped, and its return checked, at test cleanup.
func startWatch(t *testing.T, path string) *watcher {
	return startWatchDebounce(t, path, testDebounce)
}

func startWatchDebounce(t *testing.T, path string, debounce time.Duration) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{path: path, debounce: debounce, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		w.done <- Watch(ctx, path, debounce, w.onChange, func() { close(ready) })
	}()
	select {
	case <-ready:
	case err := <-w.done:
		cancel()
		t.Fatalf("watch returned before it was ready: %v", err)
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("watch did not get ready within 5s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-w.done:
			if err != nil {
				t.Errorf("watch returned %v after cancel, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("watch did not return within 5s of cancel")
		}
	})
	return w
}

func (w *watcher) onChange() {
	data, _ := os.ReadFile(w.path)
	w.mu.Lock()
	w.seen = append(w.seen, string(data))
	w.mu.Unlock()
}

// calls returns the number of onChange calls not made for sentinels.
func (w *watcher) calls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen) - w.base
}

// waitCalls waits (bounded) until onChange has been called want times, then
// proves that no further call is pending without sleeping on it: it writes
// a sentinel content, waits for the call that sees it, and checks that it
// was the only call since. A stray call would be counted before the
// sentinel's.
func (w *watcher) waitCalls(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10*time.Second + 2*w.debounce)
	for w.calls() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// Give a stray call a chance to come before the sentinel's burst. This
	// pause decides nothing: on a busy machine a stray call may fall into
	// the sentinel's burst and go unseen, but no correct watcher fails.
	time.Sleep(2 * w.debounce)
	// The sentinel is written, seen, and then the file's content restored
	// (seen too), so the test's next step compares against what it left.
	before, err := os.ReadFile(w.path)
	restore := err == nil
	w.sents++
	sentinel := fmt.Sprintf("# sentinel %d\n", w.sents)
	write(t, w.path, sentinel)
	w.waitSeen(t, sentinel, want)
	w.mu.Lock()
	w.base++
	got := len(w.seen) - w.base
	w.mu.Unlock()
	if got != want {
		t.Fatalf("onChange called %d times, want %d", got, want)
	}
	if restore {
		write(t, w.path, string(before))
		w.waitSeen(t, string(before), want)
		w.mu.Lock()
		w.base++
		w.mu.Unlock()
	} else if err := os.Remove(w.path); err != nil {
		t.Fatal(err)
	} else {
		w.waitSeen(t, "", want)
		w.mu.Lock()
		w.base++
		w.mu.Unlock()
	}
}

// waitSeen waits until the latest onChange call saw content.
func (w *watcher) waitSeen(t *testing.T, content string, want int) {
	t.Helper()
	deadline := time.Now().Add(10*time.Second + 2*w.debounce)
	seen := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.seen) > 0 && w.seen[len(w.seen)-1] == content
	}
	for !seen() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !seen() {
		t.Fatalf("onChange not called for a write of %q within 10s (calls: %d, want %d)", content, w.calls(), want)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatchWriteInPlace(t *testing.T) {
	path := writeFile(t, "mcproxy.yaml", "listen: :1\n")
	w := startWatch(t, path)
	write(t, path, "listen: :2\n")
	w.waitCalls(t, 1)
	// The same content again is no change.
	write(t, path, "listen: :2\n")
	w.waitCalls(t, 1)
	write(t, path, "listen: :3\n")
	w.waitCalls(t, 2)
}

func TestWatchBurstIsDebounced(t *testing.T) {
	path := writeFile(t, "mcproxy.yaml", "listen: :1\n")
	// Ten small writes take microseconds; a 2s debounce holds them in one
	// burst even on a machine too busy to run this goroutine for a while.
	w := startWatchDebounce(t, path, 2*time.Second)
	for i := 0; i < 10; i++ {
		write(t, path, fmt.Sprintf("listen: :%d\n", 100+i))
	}
	w.waitCalls(t, 1)
}

func TestWatchRenameOver(t *testing.T) {
	path := writeFile(t, "mcproxy.yaml", "listen: :1\n")
	w := startWatch(t, path)
	// What editors and atomic writers do: write a new file, rename it over.
	tmp := path + ".tmp~"
	write(t, tmp, "listen: :2\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	w.waitCalls(t, 1)
	// And again, to show the watch survived the old file's replacement.
	write(t, tmp, "listen: :3\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	w.waitCalls(t, 2)
}

func TestWatchRemoveAndRecreate(t *testing.T) {
	path := writeFile(t, "mcproxy.yaml", "listen: :1\n")
	w := startWatch(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	w.waitCalls(t, 1) // gone is a change
	write(t, path, "listen: :1\n")
	w.waitCalls(t, 2) // back is a change too
}

// TestWatchKubernetesSymlinkSwap mimics a ConfigMap volume: the file is a
// symlink through ..data, which points at a timestamped directory; an update
// writes a new directory and renames a new ..data symlink over the old one.
func TestWatchKubernetesSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	mkdir := func(name, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name, "config.yaml"), content)
	}
	symlink := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("..2026_a", "listen: :1\n")
	symlink("..2026_a", "..data")
	symlink("..data/config.yaml", "config.yaml")
	path := filepath.Join(dir, "config.yaml")

	w := startWatch(t, path)
	swap := func(to string) {
		t.Helper()
		symlink(to, "..data_tmp")
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("..2026_b", "listen: :2\n")
	swap("..2026_b")
	if err := os.RemoveAll(filepath.Join(dir, "..2026_a")); err != nil {
		t.Fatal(err)
	}
	w.waitCalls(t, 1)

	// The new target directory is watched now: a write inside it is seen.
	write(t, filepath.Join(dir, "..2026_b", "config.yaml"), "listen: :3\n")
	w.waitCalls(t, 2)

	// A second swap works as well as the first.
	mkdir("..2026_c", "listen: :4\n")
	swap("..2026_c")
	w.waitCalls(t, 3)
}

func TestWatchSymlinkToOtherDirectory(t *testing.T) {
	target := writeFile(t, "real.yaml", "listen: :1\n")
	path := filepath.Join(t.TempDir(), "mcproxy.yaml")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, path)
	write(t, target, "listen: :2\n")
	w.waitCalls(t, 1)
}

func TestWatchIgnoresUnrelatedFiles(t *testing.T) {
	path := writeFile(t, "mcproxy.yaml", "listen: :1\n")
	w := startWatch(t, path)
	other := filepath.Join(filepath.Dir(path), "other.yaml")
	write(t, other, "x")
	write(t, other, "y")
	if err := os.Rename(other, other+".bak"); err != nil {
		t.Fatal(err)
	}
	// Touching the config file without changing it is no change either.
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
	w.waitCalls(t, 0)
	// The watch is alive: a real change is still seen, exactly once.
	write(t, path, "listen: :2\n")
	w.waitCalls(t, 1)
}

func TestWatchReturnsNilOnCancel(t *testing.T) {
	path := writeFile(t, "mcproxy.yaml", "listen: :1\n")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- Watch(ctx, path, testDebounce, func() {}, func() { close(ready) }) }()
	<-ready
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return within 5s of cancel")
	}
}

func TestWatchStartError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "mcproxy.yaml")
	err := Watch(context.Background(), path, testDebounce, func() {}, nil)
	if err == nil {
		t.Fatal("Watch of a file in a missing directory succeeded")
	}
	if want := "watch config " + path; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q should start with %q", err, want)
	}
}

func TestResolveLinks(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "..v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range [][2]string{{"..v1", "..data"}, {"..data/config.yaml", "config.yaml"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	links, final := resolveLinks(filepath.Join(dir, "config.yaml"))
	wantLinks := []string{filepath.Join(dir, "config.yaml"), filepath.Join(dir, "..data")}
	if fmt.Sprint(links) != fmt.Sprint(wantLinks) || final != filepath.Join(dir, "..v1", "config.yaml") {
		t.Errorf("resolveLinks = %q, %q", links, final)
	}
	// A loop ends instead of spinning.
	if err := os.Symlink("loop", filepath.Join(dir, "loop")); err != nil {
		t.Fatal(err)
	}
	resolveLinks(filepath.Join(dir, "loop"))
}
