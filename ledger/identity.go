package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Identity is a member's key pair and the ID it is known by. ID is
// MemberIDOf(Public) for a fresh identity; after a key rotation the member
// keeps its ID and signs with the new key, so ID and Public may then
// differ.
type Identity struct {
	ID      MemberID
	Public  ed25519.PublicKey
	Private ed25519.PrivateKey
}

// NewIdentity makes a fresh ed25519 key pair from crypto/rand.
func NewIdentity() (Identity, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Identity{}, fmt.Errorf("generating an ed25519 key: %w", err)
	}
	return Identity{ID: MemberIDOf(pub), Public: pub, Private: priv}, nil
}

// MemberIDOf is the ID of the member holding pub: the lowercase hex of the
// first 16 bytes of its SHA-256.
func MemberIDOf(pub ed25519.PublicKey) MemberID {
	sum := sha256.Sum256(pub)
	return MemberID(hex.EncodeToString(sum[:16]))
}

// Check reports whether id is well formed: 32 lowercase hex characters.
func (id MemberID) Check() error {
	if !isLowerHex(string(id), 32) {
		return fmt.Errorf("member ID %q is not 32 lowercase hex characters", clip(string(id)))
	}
	return nil
}

// check says whether the identity is usable: a well-formed ID and a
// private key whose public half is Public.
func (id Identity) check() error {
	if err := id.ID.Check(); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if len(id.Public) != ed25519.PublicKeySize {
		return fmt.Errorf("identity %s: public key is %d bytes, want %d", id.ID, len(id.Public), ed25519.PublicKeySize)
	}
	if len(id.Private) != ed25519.PrivateKeySize {
		return fmt.Errorf("identity %s: private key is %d bytes, want %d", id.ID, len(id.Private), ed25519.PrivateKeySize)
	}
	if !id.Public.Equal(id.Private.Public()) {
		return fmt.Errorf("identity %s: the public key is not the private key's", id.ID)
	}
	return nil
}

// The identity file is a "Member-Id: <id>" line naming the member (the ID
// survives key rotations), then one PEM block of type "PRIVATE KEY"
// holding the PKCS#8 form of the ed25519 key. Text before a PEM block is
// ignored by PEM readers, so `openssl pkey -in FILE` reads the key as is.
const (
	pemType        = "PRIVATE KEY"
	pemMemberID    = "Member-Id: "
	maxIdentityLen = 16 << 10
)

// SaveIdentity writes id to path atomically (a temporary file in the same
// directory, synced, then renamed over path) with mode 0600. An existing
// file at path is replaced.
func SaveIdentity(path string, id Identity) error {
	if err := id.check(); err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(id.Private)
	if err != nil {
		return fmt.Errorf("encoding identity %s: %w", id.ID, err)
	}
	data := []byte(pemMemberID + string(id.ID) + "\n")
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der})...)
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("saving identity: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("saving identity: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("saving identity: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("saving identity: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving identity: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("saving identity: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the rename durable; not every file system supports it
		d.Close()
	}
	return nil
}

// LoadIdentity reads an identity SaveIdentity wrote. It refuses a file
// that anyone but its owner may read or write (a mode wider than 0600).
func LoadIdentity(path string) (Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return Identity{}, fmt.Errorf("loading identity: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Identity{}, fmt.Errorf("loading identity: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Identity{}, fmt.Errorf("identity %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&^0o600 != 0 {
		return Identity{}, fmt.Errorf("identity %s has mode %04o: it holds a private key and must be readable by its owner only (run: chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxIdentityLen+1))
	if err != nil {
		return Identity{}, fmt.Errorf("loading identity: %w", err)
	}
	if len(data) > maxIdentityLen {
		return Identity{}, fmt.Errorf("identity %s is larger than %d bytes: not an identity file", path, maxIdentityLen)
	}
	id, err := parseIdentity(data)
	if err != nil {
		return Identity{}, fmt.Errorf("identity %s: %w", path, err)
	}
	return id, nil
}

func parseIdentity(data []byte) (Identity, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return Identity{}, errors.New("no PEM block: not an identity file")
	}
	if block.Type != pemType || len(block.Headers) != 0 {
		return Identity{}, fmt.Errorf("PEM block is %q with %d headers, want %q without", block.Type, len(block.Headers), pemType)
	}
	var memberID MemberID
	preamble, _, _ := bytes.Cut(data, []byte("-----BEGIN"))
	for _, line := range strings.Split(string(preamble), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), strings.TrimSpace(pemMemberID))
		if !ok {
			continue
		}
		if memberID != "" {
			return Identity{}, errors.New("more than one Member-Id line")
		}
		memberID = MemberID(strings.TrimSpace(v))
		if memberID == "" {
			return Identity{}, errors.New("empty Member-Id line")
		}
	}
	if len(trimSpace(rest)) != 0 {
		return Identity{}, errors.New("data after the PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return Identity{}, fmt.Errorf("private key: %w", err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return Identity{}, fmt.Errorf("private key is %T, want ed25519", key)
	}
	pub := priv.Public().(ed25519.PublicKey)
	id := Identity{ID: MemberIDOf(pub), Public: pub, Private: priv}
	if memberID != "" {
		id.ID = memberID
	}
	if err := id.check(); err != nil {
		return Identity{}, err
	}
	return id, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// isLowerHex reports whether s is n lowercase hex characters.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// clip shortens attacker-supplied text quoted in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
