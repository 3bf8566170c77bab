package bouncerapi

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"
)

// Bouncer is a registered bouncer as `phalanx bouncers list` shows it. The
// key itself is never kept: only its salted hash.
type Bouncer struct {
	Name     string     `json:"name"`
	Created  time.Time  `json:"created"`
	LastPull time.Time  `json:"last_pull,omitzero"`
	LastIP   netip.Addr `json:"last_ip,omitzero"`
}

type keyRecord struct {
	Bouncer
	Salt string `json:"salt"` // hex, 16 random bytes
	Hash string `json:"hash"` // hex SHA-256(salt || key)
}

type keysFile struct {
	Bouncers []keyRecord `json:"bouncers"`
}

// persistEvery bounds how often a pull rewrites the keys file for the
// sake of last_pull: bouncers pull every few seconds, and the file is only
// shown to an operator (CrowdSec updates its last pull once a minute too).
const persistEvery = time.Minute

// ErrExists is returned by Add for a name already registered.
var ErrExists = errors.New("bouncerapi: a bouncer with that name already exists")

// ErrNotFound is returned by Delete for a name not registered.
var ErrNotFound = errors.New("bouncerapi: no bouncer with that name")

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// Keys is the registry of bouncer API keys, kept in a JSON file (mode 0600)
// holding only salted hashes. It is safe for concurrent use, and it reloads
// the file when another process (the CLI) changed it, so that a bouncer
// added or deleted while the member runs takes effect without a restart.
type Keys struct {
	path string
	now  func() time.Time

	mu      sync.Mutex
	recs    []keyRecord
	modTime time.Time
	size    int64
	dirty   time.Time // last time a pull was written to the file
}

// OpenKeys opens the keys file at path; a missing file is an empty registry
// and is created on the first Add.
func OpenKeys(path string) (*Keys, error) {
	k := &Keys{path: path, now: time.Now}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.load(); err != nil {
		return nil, err
	}
	return k, nil
}

// load reads the file if it changed since the last read. Callers hold mu.
func (k *Keys) load() error {
	st, err := os.Stat(k.path)
	if errors.Is(err, os.ErrNotExist) {
		k.recs, k.modTime, k.size = nil, time.Time{}, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("bouncerapi: keys file: %w", err)
	}
	if st.ModTime().Equal(k.modTime) && st.Size() == k.size && k.recs != nil {
		return nil
	}
	b, err := os.ReadFile(k.path)
	if err != nil {
		return fmt.Errorf("bouncerapi: keys file: %w", err)
	}
	var f keysFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("bouncerapi: keys file %s is not valid JSON (fix or remove it): %w", k.path, err)
	}
	if f.Bouncers == nil {
		f.Bouncers = []keyRecord{}
	}
	k.recs, k.modTime, k.size = f.Bouncers, st.ModTime(), st.Size()
	return nil
}

// save writes the registry atomically. Callers hold mu.
func (k *Keys) save() error {
	b, err := json.MarshalIndent(keysFile{Bouncers: k.recs}, "", "  ")
	if err != nil {
		return fmt.Errorf("bouncerapi: keys file: %w", err)
	}
	dir := filepath.Dir(k.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bouncerapi: keys file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".bouncers-*.json")
	if err != nil {
		return fmt.Errorf("bouncerapi: keys file: %w", err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600: the hashes never exist world-readable.
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("bouncerapi: keys file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("bouncerapi: keys file: %w", err)
	}
	if err := os.Rename(tmp.Name(), k.path); err != nil {
		return fmt.Errorf("bouncerapi: keys file: %w", err)
	}
	if st, err := os.Stat(k.path); err == nil {
		k.modTime, k.size = st.ModTime(), st.Size()
	}
	return nil
}

func hashKey(salt []byte, key string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(key))
	return h.Sum(nil)
}

// Add registers a bouncer and returns its key. The key is shown only
// here: the file keeps a salted hash.
func (k *Keys) Add(name string) (string, error) {
	if !validName.MatchString(name) {
		return "", fmt.Errorf("bouncerapi: bouncer name %q: use 1-64 letters, digits, '.', '_', '@' or '-'", name)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.load(); err != nil {
		return "", err
	}
	if slices.ContainsFunc(k.recs, func(r keyRecord) bool { return r.Name == name }) {
		return "", fmt.Errorf("%w: %q (delete it first to issue a new key)", ErrExists, name)
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	key := base64.RawURLEncoding.EncodeToString(raw)
	salt := make([]byte, 16)
	rand.Read(salt)
	k.recs = append(k.recs, keyRecord{
		Bouncer: Bouncer{Name: name, Created: k.now().UTC()},
		Salt:    hex.EncodeToString(salt),
		Hash:    hex.EncodeToString(hashKey(salt, key)),
	})
	if err := k.save(); err != nil {
		k.recs = k.recs[:len(k.recs)-1]
		return "", err
	}
	return key, nil
}

// List returns the registered bouncers, by name.
func (k *Keys) List() []Bouncer {
	k.mu.Lock()
	defer k.mu.Unlock()
	_ = k.load() // on a read error, show what was last read
	out := make([]Bouncer, 0, len(k.recs))
	for _, r := range k.recs {
		out = append(out, r.Bouncer)
	}
	slices.SortFunc(out, func(a, b Bouncer) int { return cmpString(a.Name, b.Name) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Delete removes a bouncer; its key stops working at once.
func (k *Keys) Delete(name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.load(); err != nil {
		return err
	}
	i := slices.IndexFunc(k.recs, func(r keyRecord) bool { return r.Name == name })
	if i < 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	k.recs = slices.Delete(k.recs, i, i+1)
	return k.save()
}

// check returns the name of the bouncer whose key this is. Every record is
// compared, in constant time, so that timing tells nothing about which
// prefix of a hash matched.
func (k *Keys) check(key string) (string, bool) {
	if key == "" || len(key) > 256 {
		return "", false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	_ = k.load() // a broken file keeps the last good view rather than locking everyone out
	name, found := "", false
	for _, r := range k.recs {
		salt, err1 := hex.DecodeString(r.Salt)
		want, err2 := hex.DecodeString(r.Hash)
		if err1 != nil || err2 != nil {
			continue
		}
		if subtle.ConstantTimeCompare(hashKey(salt, key), want) == 1 && !found {
			name, found = r.Name, true
		}
	}
	return name, found
}

// pulled records a pull by name from addr. It rewrites the file at most
// once per persistEvery; the error is returned for the caller to log.
func (k *Keys) pulled(name string, addr netip.Addr) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	i := slices.IndexFunc(k.recs, func(r keyRecord) bool { return r.Name == name })
	if i < 0 {
		return nil
	}
	now := k.now().UTC()
	changedIP := k.recs[i].LastIP != addr
	k.recs[i].LastPull, k.recs[i].LastIP = now, addr
	if !changedIP && now.Sub(k.dirty) < persistEvery {
		return nil
	}
	k.dirty = now
	return k.save()
}
