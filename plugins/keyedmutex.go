package plugins

import "sync"

// keyedMutex is a mutex per key, created on first use and dropped when
// no one holds or waits for it. The zero value is ready.
type keyedMutex struct {
	mu   sync.Mutex
	keys map[[32]byte]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int // holders and waiters; guarded by keyedMutex.mu
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key [32]byte) (unlock func()) {
	k.mu.Lock()
	if k.keys == nil {
		k.keys = make(map[[32]byte]*keyedEntry)
	}
	e := k.keys[key]
	if e == nil {
		e = &keyedEntry{}
		k.keys[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.keys, key)
		}
		k.mu.Unlock()
	}
}
