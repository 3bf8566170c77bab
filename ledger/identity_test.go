package ledger

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIdentityFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "identity.pem")
	id := mustIdentity(t)
	if err := SaveIdentity(path, id); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("identity file mode %04o, want 0600", perm)
	}
	got, err := LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != id.ID || !got.Public.Equal(id.Public) || !got.Private.Equal(id.Private) {
		t.Fatalf("loaded %+v, saved %+v", got.ID, id.ID)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "Member-Id: "+string(id.ID)+"\n-----BEGIN PRIVATE KEY-----\n") {
		t.Fatalf("unexpected file:\n%s", data)
	}
	// Nothing but the file is left in the directory.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after save", len(entries))
	}

	// Replacing keeps the mode and is atomic.
	id2 := mustIdentity(t)
	if err := SaveIdentity(path, id2); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadIdentity(path); err != nil || got.ID != id2.ID {
		t.Fatalf("after replace: %v %v", got.ID, err)
	}

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o700, 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadIdentity(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: err %v, want a chmod 600 hint", mode, err)
		}
	}
	os.Chmod(path, 0o400)
	if _, err := LoadIdentity(path); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
}

func TestIdentityRotatedID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id")
	old, fresh := mustIdentity(t), mustIdentity(t)
	rotated := Identity{ID: old.ID, Public: fresh.Public, Private: fresh.Private}
	if err := SaveIdentity(path, rotated); err != nil {
		t.Fatal(err)
	}
	got, err := LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != old.ID || !got.Public.Equal(fresh.Public) {
		t.Fatalf("rotated identity loaded as %s", got.ID)
	}
	// A bare PKCS#8 PEM file (openssl genpkey -algorithm ed25519) is an
	// identity whose ID is derived from its key.
	data, _ := os.ReadFile(path)
	_, bare, _ := strings.Cut(string(data), "\n")
	os.WriteFile(path, []byte(bare), 0o600)
	got, err = LoadIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != MemberIDOf(fresh.Public) {
		t.Fatalf("bare key loaded as %s", got.ID)
	}
}

func TestIdentityBadFiles(t *testing.T) {
	dir := t.TempDir()
	id := mustIdentity(t)
	if err := SaveIdentity(filepath.Join(dir, "no", "such", "dir"), id); err == nil {
		t.Error("saved into a missing directory")
	}
	bad := id
	bad.Public = mustIdentity(t).Public
	if err := SaveIdentity(filepath.Join(dir, "x"), bad); err == nil {
		t.Error("saved an identity whose public key is not its private key's")
	}
	good := filepath.Join(dir, "good")
	if err := SaveIdentity(good, id); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	cases := map[string]string{
		"empty":       "",
		"garbage":     "not a key",
		"wrong type":  strings.ReplaceAll(string(data), "PRIVATE KEY", "PUBLIC KEY"),
		"bad id":      strings.Replace(string(data), "Member-Id: "+string(id.ID), "Member-Id: ZZ", 1),
		"empty id":    strings.Replace(string(data), "Member-Id: "+string(id.ID), "Member-Id: ", 1),
		"two ids":     "Member-Id: " + string(id.ID) + "\n" + string(data),
		"pem header":  strings.Replace(string(data), "-----\nMC", "-----\nProc-Type: 4,ENCRYPTED\n\nMC", 1),
		"trailing":    string(data) + "more\n",
		"huge":        strings.Repeat("x", maxIdentityLen+1),
		"corrupt der": strings.Replace(string(data), "\nMC", "\nMD", 1),
	}
	for name, content := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadIdentity(p); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	if _, err := LoadIdentity(dir); err == nil {
		t.Error("loaded a directory")
	}
	if _, err := LoadIdentity(filepath.Join(dir, "missing")); err == nil {
		t.Error("loaded a missing file")
	}
}
