package sshd

import (
	"net/netip"
	"time"

	"github.com/phalanx-defence/phalanx"
)

// The per-process state is a set-associative table: stateSets sets of
// stateWays entries, so at most stateEntries sshd processes are remembered
// and a new one evicts the least recently used entry of its set. fail2ban
// keeps 100 ids for 5 minutes; a busy server under attack has a few hundred
// sshd processes alive at once, so 4096 is ample, and it costs a fixed
// ~350 KB that no attacker can grow. An entry whose last line is more than
// stateTTL older (by the log's clock) than the current one is ignored, so a
// reused PID does not inherit a stale address.
const (
	stateWays    = 4
	stateSets    = 1024
	stateEntries = stateWays * stateSets
	stateTTL     = int64(10 * time.Minute)
)

type entry struct {
	key         uint64 // 0: free
	tick        uint64 // parser-wide use counter, for eviction
	seen        int64  // log time of the last line, Unix ns; 0 if unknown
	user        uint64 // hash of the first user name seen
	users       uint8  // distinct user names seen, saturating at 2
	pending     bool   // a failure is waiting for an address
	pendingKind phalanx.EventKind
	ip          netip.Addr
}

func (e *entry) addUser(h uint64) {
	switch {
	case e.users == 0:
		e.user, e.users = h, 1
	case e.users == 1 && e.user != h:
		e.users = 2
	}
}

type table struct {
	sets *[stateSets][stateWays]entry // allocated on first insert
	tick uint64
}

func (t *table) lookup(key uint64, now int64) *entry {
	if t.sets == nil {
		return nil
	}
	set := &t.sets[mix(key)&(stateSets-1)]
	for i := range set {
		e := &set[i]
		if e.key != key {
			continue
		}
		if now != 0 && e.seen != 0 && (now-e.seen > stateTTL || e.seen-now > stateTTL) {
			*e = entry{}
			return nil
		}
		t.tick++
		e.tick = t.tick
		return e
	}
	return nil
}

func (t *table) insert(key uint64, now int64) *entry {
	if t.sets == nil {
		t.sets = new([stateSets][stateWays]entry)
	}
	set := &t.sets[mix(key)&(stateSets-1)]
	victim := &set[0]
	for i := range set {
		e := &set[i]
		if e.key == 0 {
			victim = e
			break
		}
		if e.tick < victim.tick {
			victim = e
		}
	}
	t.tick++
	*victim = entry{key: key, tick: t.tick, seen: now}
	return victim
}

func (t *table) remove(e *entry) { *e = entry{} }

// stateKey identifies an sshd process: its PID on its host (a syslog
// collector sees many hosts). Never 0.
func stateKey(host string, pid int) uint64 {
	k := hashString(host) ^ uint64(pid)*0x9e3779b97f4a7c15
	if k == 0 {
		k = 1
	}
	return k
}

// hashString is FNV-1a, 64 bits; never 0 for a non-empty string in practice,
// and callers treat 0 as "no user".
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix spreads a key over the sets.
func mix(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	return k
}
