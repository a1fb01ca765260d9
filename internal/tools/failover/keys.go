package failover

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/mcproxy/mcproxy/internal/tools/loadgen"
	"github.com/mcproxy/mcproxy/internal/tools/textclient"
)

// keyPrefix begins every key this package stores.
const keyPrefix = "fo:"

// Owner values of keys whose owner is not known.
const (
	ownerUnknown = -1 // not sampled, or found on no backend
	ownerMany    = -2 // found on more than one backend
)

// Bounds of the prefill and the owner lookup.
const (
	prefillConns = 4
	prefillBatch = 100 // sets written at once before their replies are read
	lookupBatch  = 100 // keys per direct get
	ioTimeout    = 5 * time.Second
)

// keyName returns the key with index i.
func keyName(i int) string { return keyPrefix + strconv.Itoa(i) }

// keySpace holds the key names and what is known of their owners.
type keySpace struct {
	names []string
	// owner is the index of the backend that holds each key, or
	// ownerUnknown / ownerMany. Only sampled keys are looked up.
	owner []int8
	// sampled lists the indexes of the sampled keys.
	sampled []int
}

func newKeySpace(n, sample int) *keySpace {
	ks := &keySpace{names: make([]string, n), owner: make([]int8, n)}
	for i := range ks.names {
		ks.names[i] = keyName(i)
		ks.owner[i] = ownerUnknown
	}
	// Spread the sample evenly over the key space.
	for j := 0; j < sample; j++ {
		ks.sampled = append(ks.sampled, int(int64(j)*int64(n)/int64(sample)))
	}
	return ks
}

// prefill stores every key once through the proxy, with version 0. It
// returns how many were stored and how many failed.
func prefill(ctx context.Context, addr string, ks *keySpace, valueSize int) (stored, failed int, err error) {
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	n := len(ks.names)
	for c := 0; c < prefillConns; c++ {
		lo, hi := c*n/prefillConns, (c+1)*n/prefillConns
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, f, err := prefillRange(ctx, addr, ks, lo, hi, valueSize)
			mu.Lock()
			stored += s
			failed += f
			if err != nil && firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return stored, failed, fmt.Errorf("prefill through %s: %w", addr, firstErr)
	}
	return stored, failed, nil
}

func prefillRange(ctx context.Context, addr string, ks *keySpace, lo, hi, valueSize int) (stored, failed int, err error) {
	t, err := textclient.Dial(addr, ioTimeout)
	if err != nil {
		return 0, 0, err
	}
	defer t.Close()
	var val []byte
	for i := lo; i < hi; i += prefillBatch {
		if err := ctx.Err(); err != nil {
			return stored, failed, err
		}
		end := min(i+prefillBatch, hi)
		for k := i; k < end; k++ {
			val = loadgen.AppendValue(val[:0], ks.names[k], 0, valueSize)
			t.AppendSet(ks.names[k], val)
		}
		if err := t.Flush(time.Now().Add(ioTimeout)); err != nil {
			return stored, failed, err
		}
		for k := i; k < end; k++ {
			ok, err := readStored(t)
			if err != nil {
				return stored, failed, err
			}
			if ok {
				stored++
			} else {
				failed++
			}
		}
	}
	return stored, failed, nil
}

// readStored reads the reply to a set and reports whether it was STORED.
// An error line or another status is a failed set, on a connection still
// in step; other errors are returned.
func readStored(t *textclient.Conn) (bool, error) {
	l, err := t.ReadStatus()
	if textclient.IsErrorReply(err) {
		return false, nil
	}
	return err == nil && string(l) == "STORED", err
}

// lookupOwners asks every backend directly which of the sampled keys it
// holds and records the owner of each.
func lookupOwners(ctx context.Context, backends []string, ks *keySpace) error {
	found := make([][]bool, len(backends)) // found[b][j]: sampled key j on backend b
	for b, addr := range backends {
		f, err := presentOn(ctx, addr, ks, ks.sampled, nil)
		if err != nil {
			return fmt.Errorf("look up key owners on %s: %w", addr, err)
		}
		found[b] = f
	}
	for j, i := range ks.sampled {
		owner := ownerUnknown
		for b := range backends {
			if !found[b][j] {
				continue
			}
			if owner == ownerUnknown {
				owner = b
			} else {
				owner = ownerMany
			}
		}
		ks.owner[i] = int8(owner)
	}
	return nil
}

// presentOn gets the keys with the given indexes directly from one
// memcached and reports which it holds. If want is not nil, a key counts
// only if its value has version want[j].
func presentOn(ctx context.Context, addr string, ks *keySpace, idx []int, want []uint64) ([]bool, error) {
	t, err := textclient.Dial(addr, ioTimeout)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	var v textclient.Value
	found := make([]bool, len(idx))
	pos := make(map[string]int, lookupBatch)
	for lo := 0; lo < len(idx); lo += lookupBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+lookupBatch, len(idx))
		clear(pos)
		keys := make([]string, 0, hi-lo)
		for j := lo; j < hi; j++ {
			k := ks.names[idx[j]]
			keys = append(keys, k)
			pos[k] = j
		}
		t.AppendCommand("get", keys...)
		if err := t.Flush(time.Now().Add(ioTimeout)); err != nil {
			return nil, err
		}
		for {
			end, err := t.ReadValue(&v)
			if textclient.IsErrorReply(err) {
				return nil, fmt.Errorf("get: %s", t.LastError())
			}
			if err != nil {
				return nil, err
			}
			if end {
				break
			}
			j, ok := pos[string(v.Key)]
			if !ok {
				continue
			}
			if want != nil {
				if version, ok := loadgen.ParseValue(v.Key, v.Data); !ok || version != want[j] {
					continue
				}
			}
			found[j] = true
		}
	}
	return found, nil
}

// setThrough sets each key with the given index to a value of the given
// version through the proxy, one at a time, and returns how many were
// STORED.
func setThrough(ctx context.Context, addr string, ks *keySpace, idx []int, versions []uint64, valueSize int) (int, error) {
	t, err := textclient.Dial(addr, ioTimeout)
	if err != nil {
		return 0, err
	}
	defer t.Close()
	stored := 0
	var val []byte
	for j, i := range idx {
		if err := ctx.Err(); err != nil {
			return stored, err
		}
		val = loadgen.AppendValue(val[:0], ks.names[i], versions[j], valueSize)
		t.AppendSet(ks.names[i], val)
		if err := t.Flush(time.Now().Add(ioTimeout)); err != nil {
			return stored, err
		}
		ok, err := readStored(t)
		if err != nil {
			return stored, err
		}
		if ok {
			stored++
		}
	}
	return stored, nil
}
