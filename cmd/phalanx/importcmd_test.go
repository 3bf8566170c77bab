package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/phalanx-defence/phalanx/config"
	"github.com/phalanx-defence/phalanx/member"
)

const csDecisions = `[{"id":1,"scenario":"crowdsecurity/ssh-bf","events_count":6,"decisions":[
 {"id":11,"origin":"crowdsec","scenario":"crowdsecurity/ssh-bf","scope":"Ip","type":"ban","value":"192.0.2.31","duration":"3h59m12.5s"},
 {"id":12,"origin":"cscli","scenario":"manual","scope":"Range","type":"captcha","value":"198.51.100.0/24","duration":"1h"},
 {"id":13,"origin":"crowdsec","scenario":"x","scope":"Country","type":"ban","value":"XX","duration":"1h"},
 {"id":14,"origin":"crowdsec","scenario":"x","scope":"Ip","type":"ban","value":"192.0.2.32","duration":"-5m"}]}]`

// TestImportCrowdSecDecisions imports into a member that is not running
// (imported.json), starts it, checks the decisions are in force with their
// origin in `decisions list`, then imports more while it runs.
func TestImportCrowdSecDecisions(t *testing.T) {
	out, err := runCLI(t, csDecisions, "import", "crowdsec", "--decisions", "-", "--dry-run", "-o", "json")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	var rep importReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Read != 4 || rep.Valid != 2 || rep.Skipped.Total != 2 || rep.Member != nil {
		t.Errorf("dry run report %+v", rep)
	}

	dir := filepath.Join(t.TempDir(), "m")
	if out, err := runCLI(t, csDecisions, "import", "crowdsec", "--decisions", "-", "--data", dir); err == nil || !strings.Contains(err.Error(), "alliance init") {
		t.Fatalf("import without a member: want an error saying how to create one, got %v\n%s", err, out)
	}
	if out, err := runCLI(t, "", "alliance", "init", "--name", "imports", "--data", dir, "--nats-listen", "127.0.0.1:0"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	out, err = runCLI(t, csDecisions, "import", "crowdsec", "--decisions", "-", "--data", dir)
	if err != nil {
		t.Fatalf("offline import: %v\n%s", err, out)
	}
	for _, want := range []string{"imported.json (the member is not running)", "2 added", "unsupported scope Country:  1", "expired", "phalanx up --data " + dir} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	m, _ := runTestMember(t, dir)
	out, err = runCLI(t, "", "decisions", "list", "--data", dir)
	if err != nil {
		t.Fatalf("decisions list: %v\n%s", err, out)
	}
	for _, want := range []string{"192.0.2.31", "198.51.100.0/24", "import:crowdsec"} {
		if !strings.Contains(out, want) {
			t.Errorf("decisions list lacks %q:\n%s", want, out)
		}
	}

	// While it runs: in force at once, through its API.
	more := `{"new":[{"id":21,"origin":"CAPI","scenario":"crowdsecurity/http-probing","scope":"Ip","type":"ban","value":"203.0.113.44","duration":"2h"}],"deleted":[]}`
	out, err = runCLI(t, more, "import", "crowdsec", "--decisions", "-", "--data", dir, "-o", "json")
	if err != nil {
		t.Fatalf("running import: %v\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Member == nil || !rep.Member.Running || rep.Member.Added != 1 || rep.Member.Imported != 3 {
		t.Errorf("running import report %+v", rep.Member)
	}
	if d, ok := m.Decisions().Lookup(mustAddr(t, "203.0.113.44")); !ok || d.Origin != "import:crowdsec" {
		t.Errorf("not in force right after the import: %+v %v", d, ok)
	}

	// A long import into a running member shows its progress on a
	// terminal (the test's output stands in for one).
	defer func(f func(io.Writer) bool) { isTerminal = f }(isTerminal)
	isTerminal = func(io.Writer) bool { return true }
	var big strings.Builder
	big.WriteString(`{"new":[`)
	for i := range 2500 {
		if i > 0 {
			big.WriteString(",")
		}
		fmt.Fprintf(&big, `{"id":%d,"origin":"CAPI","scenario":"s","scope":"Ip","type":"ban","value":"10.9.%d.%d","duration":"2h"}`, 100+i, i/256, i%256)
	}
	big.WriteString(`],"deleted":[]}`)
	out, err = runCLI(t, big.String(), "import", "crowdsec", "--decisions", "-", "--data", dir)
	if err != nil {
		t.Fatalf("large running import: %v\n%s", err, out)
	}
	if !strings.Contains(out, "importing: 2000 of 2500 decisions") || !strings.Contains(out, "2500 added") {
		t.Errorf("no progress or count for a 2,500-decision import:\n%s", out)
	}
	isTerminal = func(io.Writer) bool { return false }

	// decisions list's filters reach the API's query.
	out, err = runCLI(t, "", "decisions", "list", "--data", dir, "--value", "198.51.100.7", "-o", "json")
	if err != nil {
		t.Fatalf("decisions list --value: %v\n%s", err, out)
	}
	var ds []member.DecisionView
	if err := json.Unmarshal([]byte(out), &ds); err != nil || len(ds) != 1 || ds[0].Value != "198.51.100.0/24" {
		t.Errorf("--value 198.51.100.7: want only the /24 that holds it, got %v (%v)\n%s", ds, err, out)
	}
	out, err = runCLI(t, "", "decisions", "list", "--data", dir, "--origin", "local")
	if err != nil || !strings.Contains(out, "No decisions in force match.") {
		t.Errorf("--origin local: want no match, got %v\n%s", err, out)
	}
	if out, err = runCLI(t, "", "decisions", "list", "--data", dir, "--type", "nonsense"); err == nil || !strings.Contains(err.Error(), "ban, captcha or throttle") {
		t.Errorf("--type nonsense: want the API's advice, got %v\n%s", err, out)
	}
}

func TestImportFail2banBans(t *testing.T) {
	py := ""
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import fail2ban.server.database").Run() == nil {
			py = path
			break
		}
	}
	if py == "" {
		t.Skip("no python3 with fail2ban's modules (apt-get install fail2ban): fail2ban's own code must write the test database")
	}
	db := filepath.Join(t.TempDir(), "fail2ban.sqlite3")
	if out, err := exec.Command(py, "../../migrate/f2bbans/testdata/mkdb.py", db, strconv.FormatInt(time.Now().Unix(), 10)).CombinedOutput(); err != nil {
		t.Fatalf("mkdb.py: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "m")
	if out, err := runCLI(t, "", "alliance", "init", "--name", "f2b", "--data", dir, "--nats-listen", "127.0.0.1:0"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	out, err := runCLI(t, "", "import", "fail2ban", "--bans", "--db", db, "--data", dir, "-o", "json")
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	var rep importReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Valid != 3 || rep.Member == nil || rep.Member.Added != 3 {
		t.Errorf("report %+v (member %+v), want 3 addresses imported", rep, rep.Member)
	}
	b, err := os.ReadFile(filepath.Join(dir, "imported.json"))
	if err != nil || !strings.Contains(string(b), "fail2ban/recidive") || !strings.Contains(string(b), "import:fail2ban") {
		t.Errorf("imported.json: %v\n%s", err, b)
	}
}

func TestImportCrowdSecScenarios(t *testing.T) {
	out := filepath.Join(t.TempDir(), "crowdsec.yaml")
	rep, err := runCLI(t, "", "import", "crowdsec", "--scenarios", "../../migrate/crowdsec/testdata/scenarios", "--out", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, rep)
	}
	for _, want := range []string{"crowdsecurity/ssh-bf", "Not translated:", "crowdsecurity/http-sensitive-files (http.yaml): filter"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
	if _, scen, err := config.LoadRulesFile(out); err != nil || len(scen) == 0 {
		t.Fatalf("the output does not load: %v (%d scenarios)", err, len(scen))
	}
	// replay runs it in place of the built-in scenarios: the translated
	// ssh-bf (capacity 5) decides on the sixth failure, not before.
	log := "Jun  2 10:00:0%d web1 sshd[10%d]: Failed password for root from 198.51.100.7 port 400%d ssh2\n"
	var lines strings.Builder
	for i := range 5 {
		lines.WriteString(strings.ReplaceAll(log, "%d", strconv.Itoa(i)))
	}
	got, err := runCLI(t, lines.String(), "replay", "--scenarios", out, "-o", "json", "-")
	if err != nil {
		t.Fatalf("replay --scenarios: %v\n%s", err, got)
	}
	if strings.Contains(got, "198.51.100.7") {
		t.Errorf("decided after 5 failures; the translated ssh-bf holds 5:\n%s", got)
	}
	lines.WriteString(strings.ReplaceAll(log, "%d", "5"))
	got, err = runCLI(t, lines.String(), "replay", "--scenarios", out, "-o", "json", "-")
	if err != nil {
		t.Fatalf("replay --scenarios: %v\n%s", err, got)
	}
	if !strings.Contains(got, `"scenario":"crowdsecurity/ssh-bf"`) {
		t.Errorf("no crowdsecurity/ssh-bf decision after 6 failures:\n%s", got)
	}
}

func TestImportFail2banJails(t *testing.T) {
	if _, err := os.Stat("/etc/fail2ban/jail.conf"); err != nil {
		t.Skip("no /etc/fail2ban (apt-get install fail2ban)")
	}
	out := t.TempDir()
	rep, err := runCLI(t, "", "import", "fail2ban", "--from", "/etc/fail2ban", "--out", out, "-o", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, rep)
	}
	var r struct {
		Out   string `json:"out"`
		Jails []struct {
			Name string `json:"name"`
		} `json:"jails"`
	}
	if err := json.Unmarshal([]byte(rep), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, rep)
	}
	if _, err := config.Load(filepath.Join(out, "phalanx.yaml")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := config.LoadRulesFile(filepath.Join(out, "rules.yaml")); err != nil {
		t.Fatal(err)
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestImportShare publishes imported decisions through a running member
// as manual decisions, then runs again: the progress file makes the
// second run publish nothing.
func TestImportShare(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	if out, err := runCLI(t, "", "alliance", "init", "--name", "share", "--data", dir, "--nats-listen", "127.0.0.1:0"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if out, err := runCLI(t, csDecisions, "import", "crowdsec", "--decisions", "-", "--data", dir, "--share"); err == nil || !strings.Contains(err.Error(), "start 'phalanx up") {
		t.Fatalf("--share without a running member: want an error saying to start it, got %v\n%s", err, out)
	}
	_, c := runTestMember(t, dir)
	out, err := runCLI(t, csDecisions, "import", "crowdsec", "--decisions", "-", "--data", dir, "--share", "--share-rate", "6000", "-o", "json")
	if err != nil {
		t.Fatalf("share: %v\n%s", err, out)
	}
	var rep importReport
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Shared == nil || rep.Shared.Published != 2 || rep.Shared.Failed != 0 {
		t.Fatalf("shared %+v, want 2 published", rep.Shared)
	}
	// They are in the ledger as this member's manual decisions.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := c.Decisions(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		manual := 0
		for _, d := range ds {
			if d.Scenario == "manual" || len(d.Reporters) > 0 {
				manual++
			}
		}
		if manual == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shared decisions not folded: %+v", ds)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline: the fold applies them asynchronously
	}
	out, err = runCLI(t, csDecisions, "import", "crowdsec", "--decisions", "-", "--data", dir, "--share", "--share-rate", "6000", "-o", "json")
	if err != nil {
		t.Fatalf("share again: %v\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Shared == nil || rep.Shared.Published != 0 || rep.Shared.Before != 2 {
		t.Errorf("second run shared %+v, want 0 published, 2 before", rep.Shared)
	}
	// Longer than the alliance takes (30 days): shared for 30 days.
	long := `[{"value":"192.0.2.99","scope":"Ip","type":"ban","duration":"2000h"}]`
	out, err = runCLI(t, long, "import", "crowdsec", "--decisions", "-", "--data", dir, "--share", "--share-rate", "6000", "-o", "json")
	if err != nil {
		t.Fatalf("share a long decision: %v\n%s", err, out)
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Shared == nil || rep.Shared.Published != 1 || rep.Shared.Failed != 0 {
		t.Errorf("long decision shared %+v, want it published", rep.Shared)
	}
}
