package file

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// stateName is the offsets file inside the state directory.
const stateName = "file-offsets.json"

// headLen is how many leading bytes of a file are kept as its fingerprint.
// An inode number is reused once a file is deleted; log lines start with a
// timestamp, so the first bytes tell a reused inode from the file we read.
const headLen = 128

// Bounds on the persisted state: entries for files that are gone are kept
// for a while (a rotated file may come back under another glob match), but
// not forever and not without limit.
const (
	maxEntries = 4096
	entryTTL   = 7 * 24 * time.Hour
)

// fileID identifies a file independently of its name.
type fileID struct {
	Dev, Ino uint64
}

// entry is the persisted position in one file.
type entry struct {
	Dev    uint64    `json:"dev"`
	Ino    uint64    `json:"ino"`
	Path   string    `json:"path"`   // the last path it was read under (for people, and rotation while stopped)
	Offset int64     `json:"offset"` // end of the last line handed on
	Head   []byte    `json:"head"`   // the file's first bytes (up to headLen), its fingerprint
	Seen   time.Time `json:"seen"`   // last time the file was open
}

func (e *entry) id() fileID { return fileID{e.Dev, e.Ino} }

type stateFile struct {
	Version int      `json:"version"`
	Files   []*entry `json:"files"`
}

// loadState reads the offsets; a missing file is an empty state.
func loadState(dir string) (map[fileID]*entry, error) {
	m := make(map[fileID]*entry)
	if dir == "" {
		return m, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, stateName))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("source/file: read offsets: %w", err)
	}
	var sf stateFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, fmt.Errorf("source/file: offsets file %s is corrupt (delete it to start every file at its end): %w",
			filepath.Join(dir, stateName), err)
	}
	for _, e := range sf.Files {
		if e != nil {
			m[e.id()] = e
		}
	}
	return m, nil
}

// saveState writes the offsets atomically: a crash leaves either the old
// or the new file, never a torn one.
func saveState(dir string, m map[fileID]*entry, now time.Time, durable bool) error {
	if dir == "" {
		return nil
	}
	files := make([]*entry, 0, len(m))
	for id, e := range m {
		if now.Sub(e.Seen) > entryTTL {
			delete(m, id)
			continue
		}
		files = append(files, e)
	}
	// Newest first, so that the bound drops the files gone longest.
	slices.SortFunc(files, func(a, b *entry) int { return b.Seen.Compare(a.Seen) })
	if len(files) > maxEntries {
		for _, e := range files[maxEntries:] {
			delete(m, e.id())
		}
		files = files[:maxEntries]
	}
	b, err := json.MarshalIndent(stateFile{Version: 1, Files: files}, "", "  ")
	if err != nil {
		return fmt.Errorf("source/file: encode offsets: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, stateName), b, durable); err != nil {
		return fmt.Errorf("source/file: save offsets: %w", err)
	}
	return nil
}

// writeAtomic replaces path with b by a rename, so a reader never sees half
// a file; durable also fsyncs it first, so that it survives a power loss
// and not only a crash of the process.
func writeAtomic(path string, b []byte, durable bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if durable {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// headMatches reports whether f still starts with head.
func headMatches(f io.ReaderAt, head []byte) bool {
	if len(head) == 0 {
		return true
	}
	got := make([]byte, len(head))
	n, err := f.ReadAt(got, 0)
	if n < len(head) && err != nil {
		return false
	}
	return bytes.Equal(got, head)
}
