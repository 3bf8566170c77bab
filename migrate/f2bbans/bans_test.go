package f2bbans

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/migrate"
)

// fail2banPython finds a python3 that can import Debian's fail2ban.
func fail2banPython(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import fail2ban.server.database").Run() == nil {
			return path
		}
	}
	t.Skip("no python3 with fail2ban's modules (apt-get install fail2ban): the database test needs fail2ban's own code to write one")
	return ""
}

// makeDB has fail2ban's own Fail2BanDb write a database with the bans of
// testdata/mkdb.py, banned relative to now.
func makeDB(t *testing.T, now time.Time) string {
	py := fail2banPython(t)
	db := filepath.Join(t.TempDir(), "fail2ban.sqlite3")
	out, err := exec.Command(py, "testdata/mkdb.py", db, strconv.FormatInt(now.Unix(), 10)).CombinedOutput()
	if err != nil {
		t.Fatalf("mkdb.py: %v\n%s", err, out)
	}
	return db
}

func TestReadFail2banDatabase(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	db := makeDB(t, now)
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Read(context.Background(), db, now, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Table != "bips" {
		t.Errorf("table %q, want bips", got.Table)
	}
	m := map[string]phalanx.Decision{}
	for _, d := range got.Imported {
		m[d.ValueString()] = d
	}
	if len(m) != 3 {
		t.Fatalf("imported %v, want 192.0.2.1, 2001:db8::5 and 198.51.100.9", m)
	}
	// Banned by sshd (600s) and recidive (a week): the longer one wins.
	if d := m["192.0.2.1"]; d.Scenario != "fail2ban/recidive" || !d.Until().Equal(now.Add(-30*time.Second).Add(604800*time.Second)) || d.Events != 7 {
		t.Errorf("192.0.2.1 = %+v, want the recidive week", d)
	}
	if d := m["198.51.100.9"]; !d.Until().Equal(now.Add(3500*time.Second)) || d.Origin != migrate.OriginFail2ban || len(d.Evidence) != 2 {
		t.Errorf("198.51.100.9 = %+v, want 3500s left with two matches", d)
	}
	if d := m["2001:db8::5"]; d.Duration != 365*24*time.Hour || got.Permanent != 1 {
		t.Errorf("permanent ban %+v (permanent %d), want a year", d, got.Permanent)
	}
	if got.Merged != 1 {
		t.Errorf("merged %d, want 1", got.Merged)
	}
	// The expired ban is not even read: the query keeps bans in force.
	if _, ok := m["192.0.2.2"]; ok {
		t.Error("expired ban imported")
	}
	after, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Error("reading changed fail2ban's database")
	}

	only, err := Read(context.Background(), db, now, Options{Jails: []string{"sshd"}, Permanent: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range only.Imported {
		if d.Scenario != "fail2ban/sshd" {
			t.Errorf("jail filter let %s through", d.Scenario)
		}
		if d.ValueString() == "2001:db8::5" && d.Duration != time.Hour {
			t.Errorf("permanent as 1h: %v", d.Duration)
		}
	}
}

func TestReadErrors(t *testing.T) {
	_, err := Read(context.Background(), filepath.Join(t.TempDir(), "missing.sqlite3"), time.Now(), Options{})
	if err == nil || !strings.Contains(err.Error(), "--db") {
		t.Errorf("missing database: %v, want a hint at --db", err)
	}
	notDB := filepath.Join(t.TempDir(), "x.sqlite3")
	os.WriteFile(notDB, []byte("this is not sqlite"), 0o600)
	if _, err := Read(context.Background(), notDB, time.Now(), Options{}); err == nil {
		t.Error("a text file read as a database")
	}
}

func TestConvert(t *testing.T) {
	now := time.Unix(1_800_000_000, 0).UTC()
	for _, tc := range []struct {
		ip       string
		tob, bt  int64
		reason   string
		duration time.Duration
	}{
		{"192.0.2.1", now.Unix() - 100, 600, "", 500 * time.Second},
		{"192.0.2.0/24", now.Unix(), 60, "", time.Minute},
		{"::ffff:192.0.2.1", now.Unix(), 60, "", time.Minute},
		{"host.example", now.Unix(), 60, migrate.ReasonInvalidValue, 0},
		{"192.0.2.1", now.Unix() - 700, 600, migrate.ReasonExpired, 0},
		{"192.0.2.1", now.Unix() - 60, -2, "", 9 * time.Minute},
		{"192.0.2.1", now.Unix(), -5, migrate.ReasonInvalidDuration, 0},
	} {
		d, reason := convert("sshd", tc.ip, tc.tob, tc.bt, 1, `{"matches": [["a", "b"], "c"], "failures": "x"}`, now, Options{Permanent: time.Hour})
		if !strings.HasPrefix(reason, tc.reason) || (tc.reason == "") != (reason == "") {
			t.Errorf("%s %d/%d: reason %q, want %q", tc.ip, tc.tob, tc.bt, reason, tc.reason)
			continue
		}
		if reason == "" && d.Duration != tc.duration {
			t.Errorf("%s: duration %v, want %v", tc.ip, d.Duration, tc.duration)
		}
	}
}
