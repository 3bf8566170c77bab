package journald

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/phalanx-defence/phalanx/source"
)

// Entry is the part of a journal entry that phalanx uses.
type Entry struct {
	Message    string    // MESSAGE, cut to source.MaxLine bytes
	Truncated  bool      // MESSAGE was longer than source.MaxLine
	Identifier string    // SYSLOG_IDENTIFIER ("sshd")
	Comm       string    // _COMM, the executable's name, when there is no identifier
	PID        int       // _PID (0 if absent or not a number)
	Hostname   string    // _HOSTNAME
	Time       time.Time // __REALTIME_TIMESTAMP (zero if absent)
	Cursor     string    // __CURSOR, where to resume after this entry
}

// Program is the name a parser should see: the syslog identifier, or the
// executable's name for programs that log to stdout under systemd.
func (e Entry) Program() string {
	if e.Identifier != "" {
		return e.Identifier
	}
	return e.Comm
}

// Decode decodes one line of `journalctl -o json`.
//
// journalctl writes a field as a JSON string when it is valid UTF-8, as an
// array of numbers (its bytes) when it is not, as null when it is too large
// to print (without --all), and as an array of such values when the entry
// holds the field more than once. Decode keeps bytes as they are, treats
// null as empty, and of a repeated field takes the first value: that is the
// one the program logged, later ones being added by the same writer.
func Decode(b []byte) (Entry, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return Entry{}, fmt.Errorf("source/journald: decode entry: %w", err)
	}
	if raw == nil {
		return Entry{}, errors.New("source/journald: decode entry: not a JSON object")
	}
	var e Entry
	var err error
	field := func(name string) string {
		v, ok := raw[name]
		if !ok || err != nil {
			return ""
		}
		var s string
		s, err = value(v, true)
		if err != nil {
			err = fmt.Errorf("source/journald: decode field %s: %w", name, err)
		}
		return s
	}
	e.Message = field("MESSAGE")
	e.Identifier = field("SYSLOG_IDENTIFIER")
	e.Comm = field("_COMM")
	e.Hostname = field("_HOSTNAME")
	e.Cursor = field("__CURSOR")
	pid := field("_PID")
	ts := field("__REALTIME_TIMESTAMP")
	if err != nil {
		return Entry{}, err
	}
	if len(e.Message) > source.MaxLine {
		e.Message, e.Truncated = e.Message[:source.MaxLine], true
	}
	if n, perr := strconv.Atoi(pid); perr == nil && n > 0 {
		e.PID = n
	}
	if us, perr := strconv.ParseInt(ts, 10, 64); perr == nil && us > 0 {
		e.Time = time.UnixMicro(us).UTC()
	}
	return e, nil
}

// value decodes one field value. top is false inside a repeated field's
// array, where a nested array can only be bytes.
func value(v json.RawMessage, top bool) (string, error) {
	if len(v) == 0 {
		return "", nil
	}
	switch v[0] {
	case 'n':
		return "", nil // null: too large to print
	case '"':
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return "", err
		}
		if len(items) == 0 {
			return "", nil
		}
		if top && (items[0][0] == '"' || items[0][0] == '[' || items[0][0] == 'n') {
			return value(items[0], false) // a repeated field: the first value
		}
		var bs []byte // an array of numbers 0..255: a non-UTF-8 value's bytes
		if err := json.Unmarshal(v, &bs); err != nil {
			return "", fmt.Errorf("not a byte array: %w", err)
		}
		return string(bs), nil
	}
	return "", fmt.Errorf("unexpected value %.20s", v)
}
