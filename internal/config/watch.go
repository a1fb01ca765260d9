package config

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls onChange when the content of the file at path changes, until
// ctx ends. It returns nil when ctx ends, or an error if the watch cannot be
// started (e.g. the file's directory does not exist).
//
// It watches the file's directory, not the file, so it also sees the ways
// files get replaced rather than written: an editor writing a new file and
// renaming it over the old one, and a Kubernetes ConfigMap volume swapping
// its "..data" symlink. When path is a symlink, the directories along the
// link chain are watched too. Events that may concern the file trigger a
// check; onChange is called only when the file's content (read through any
// symlinks) differs from the last content seen, so touching the file or
// another file in the directory calls nothing. A file that disappears counts
// as a change, and so does its return.
//
// A burst of events is debounced: the check runs once, debounce after the
// last event of the burst. onChange runs on Watch's goroutine, so calls never
// overlap, and no goroutine started by Watch outlives its return.
//
// ready, when not nil, is called once the watches are in place and the
// content to compare against has been read. A caller that reads the file
// only after ready misses no edit: an edit before that point is in what it
// reads, an edit after it calls onChange.
func Watch(ctx context.Context, path string, debounce time.Duration, onChange func(), ready func()) error {
	if onChange == nil {
		return errors.New("watch config: onChange is nil")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("watch config %s: %w", path, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config %s: %w", path, err)
	}
	defer w.Close() // waits for fsnotify's reader goroutine to end

	fw := &fileWatch{path: abs, w: w, dirs: map[string]bool{}}
	home := filepath.Dir(abs)
	if err := w.Add(home); err != nil {
		return fmt.Errorf("watch config %s: watch directory %s: %w", path, home, err)
	}
	fw.dirs[home] = true
	fw.follow()
	last := fingerprint(abs)
	if ready != nil {
		ready()
	}

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	if debounce < 0 {
		debounce = 0
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("watch config %s: watcher closed", path)
			}
			if fw.concerns(ev) {
				timer.Reset(debounce)
			}
		case _, ok := <-w.Errors:
			if !ok {
				return fmt.Errorf("watch config %s: watcher closed", path)
			}
			// Typically an event queue overflow: events were lost, so look.
			timer.Reset(debounce)
		case <-timer.C:
			fw.follow()
			if fp := fingerprint(abs); fp != last {
				last = fp
				onChange()
			}
		}
	}
}

// fileWatch tracks which directories are watched and which names in them can
// affect the file: the file itself, every symlink on the way to its content,
// and the content file.
type fileWatch struct {
	path  string // absolute
	w     *fsnotify.Watcher
	dirs  map[string]bool // directories watched
	names map[string]bool // paths whose events concern the file
}

// follow resolves the file's symlink chain again and watches the
// directories along it. The file's own directory is always watched.
func (fw *fileWatch) follow() {
	links, final := resolveLinks(fw.path)
	names := map[string]bool{fw.path: true, final: true}
	want := map[string]bool{filepath.Dir(fw.path): true, filepath.Dir(final): true}
	for _, l := range links {
		names[l] = true
		want[filepath.Dir(l)] = true
	}
	fw.names = names
	for d := range want {
		if !fw.dirs[d] && fw.w.Add(d) == nil { // a missing directory is retried on the next check
			fw.dirs[d] = true
		}
	}
	for d := range fw.dirs {
		if !want[d] {
			_ = fw.w.Remove(d) // fails harmlessly if the directory is already gone
			delete(fw.dirs, d)
		}
	}
}

// concerns reports whether an event can change the file's content. A
// watched directory that is removed or renamed loses its watch; it is
// forgotten so that the next check watches it again if it is still needed.
func (fw *fileWatch) concerns(ev fsnotify.Event) bool {
	name := filepath.Clean(ev.Name)
	if fw.dirs[name] && ev.Has(fsnotify.Remove|fsnotify.Rename) {
		delete(fw.dirs, name)
		return true
	}
	return fw.names[name]
}

// resolveLinks follows path component by component, the way the kernel
// does, and returns every symlink met on the way (as the path it was met
// at) and the final path the content is read from. It stops on errors and
// loops; a missing component simply ends the walk.
func resolveLinks(path string) (links []string, final string) {
	rest := strings.Split(filepath.ToSlash(path), "/")
	vol := filepath.VolumeName(path)
	cur := vol + string(filepath.Separator)
	if vol != "" {
		rest = strings.Split(filepath.ToSlash(path[len(vol):]), "/")
	}
	for hops := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(next)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		target, err := os.Readlink(next)
		if hops++; err != nil || hops > 255 {
			cur = next
			continue
		}
		links = append(links, next)
		if filepath.IsAbs(target) {
			v := filepath.VolumeName(target)
			cur = v + string(filepath.Separator)
			target = target[len(v):]
		}
		rest = append(strings.Split(filepath.ToSlash(target), "/"), rest...)
	}
	return links, cur
}

// fingerprint identifies the file's content: a hash of it, or a marker for
// a file that cannot be read.
func fingerprint(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "unreadable"
	}
	sum := sha256.Sum256(data)
	return string(sum[:])
}
