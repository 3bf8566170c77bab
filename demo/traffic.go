package demo

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync"
	"time"
)

// Pacing of one wave: fast enough that the demo shows something within
// two seconds, slow enough to read like an attack rather than a file dump
// (a brute-force tool trying a password every 150 ms, a scanner fetching a
// path every 120 ms).
const (
	sshEvery   = 150 * time.Millisecond
	scanEvery  = 120 * time.Millisecond
	legitEvery = 250 * time.Millisecond
	// waveLength bounds one wave's script, so that a timed run starts
	// only waves that finish before its end.
	waveLength = 2 * time.Second
	// maxWaves: each wave takes two addresses of 203.0.113.0/24 and one of
	// 198.51.100.0/24; beyond 127 waves they would repeat, and an address
	// already banned for four hours shows nothing new.
	maxWaves = 127
)

// sshFailures is one brute-forcer's guesses: more than ssh-bf's six, all
// for existing users, so that the attack is ssh-bf alone (invalid users
// would first trip ssh-user-enum, which needs two members' reports).
var sshUsers = []string{"root", "root", "admin", "root", "ubuntu", "root", "root", "admin"}

// scanPaths are secret files that no browser or crawler asks for: five of
// them trip http-sensitive-files, which one member's report suffices for.
// No admin paths (http-admin-probing needs two members) and a browser's
// user agent (a scanner's would trip http-bad-user-agent, also two).
var scanPaths = []string{"/.env", "/.git/config", "/.aws/credentials", "/.htpasswd", "/.env.production", "/config.php.bak", "/db.sql", "/.git/HEAD"}

const browserUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

// Legitimate traffic comes from TEST-NET-1, attackers from TEST-NET-2 and
// -3: every address is a documentation address.
var legitPages = []string{"/", "/blog/", "/blog/postgres-backups", "/pricing", "/static/app.css", "/static/app.js", "/docs/api", "/favicon.ico", "/about"}

// logFile is one followed log; writes from the wave and the background
// traffic are serialized so that lines never interleave.
type logFile struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

func openLog(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("demo: log file: %w (is the temporary directory writable? set TMPDIR)", err)
	}
	return &logFile{f: f, path: path}, nil
}

// write appends one line and returns when it started: the clock of an
// attack starts before the line is in the file, so nothing is flattered.
func (l *logFile) write(line func(time.Time) string) (time.Time, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	_, err := l.f.WriteString(line(now))
	return now, err
}

func (l *logFile) close() error { return l.f.Close() }

func sshLine(now time.Time, pid int, msg string) string {
	return fmt.Sprintf("%s bastion sshd[%d]: %s\n", now.Format(time.Stamp), pid, msg)
}

func nginxLine(now time.Time, a netip.Addr, method, path string, status, size int, ref, ua string) string {
	return fmt.Sprintf("%s - - [%s] \"%s %s HTTP/1.1\" %d %d \"%s\" \"%s\"\n",
		a, now.Format("02/Jan/2006:15:04:05 -0700"), method, path, status, size, ref, ua)
}

// step is one line of a wave, due at its offset from the wave's start.
type step struct {
	at   time.Duration
	log  *logFile
	addr netip.Addr
	line func(time.Time) string
	last bool // the attacker's last line: its attack is complete
}

// attacker is one address of a wave and what it does.
type attacker struct {
	addr netip.Addr
	kind string // "ssh brute force" or "web scan"
}

// waveAttackers are wave w's addresses: fresh ones every wave.
func waveAttackers(w int) []attacker {
	return []attacker{
		{netip.AddrFrom4([4]byte{203, 0, 113, byte(1 + 2*w)}), "ssh brute force"},
		{netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + w)}), "web scan"},
		{netip.AddrFrom4([4]byte{203, 0, 113, byte(2 + 2*w)}), "ssh brute force"},
	}
}

// waveScript interleaves wave w's attackers, each starting a little after
// the previous one, with some jitter so that it does not look mechanical.
func waveScript(w int, auth, access *logFile, r *rand.Rand) ([]attacker, []step) {
	as := waveAttackers(w)
	var steps []step
	jitter := func(d time.Duration) time.Duration { return d + time.Duration(r.Int64N(int64(d/3))) }
	for i, a := range as {
		start := time.Duration(i) * 250 * time.Millisecond
		switch a.kind {
		case "ssh brute force":
			at := start
			for k, u := range sshUsers {
				port := 40000 + r.IntN(20000)
				pid := 2000 + 10*w + k
				steps = append(steps, step{at: at, log: auth, addr: a.addr, last: k == len(sshUsers)-1,
					line: func(now time.Time) string {
						return sshLine(now, pid, fmt.Sprintf("Failed password for %s from %s port %d ssh2", u, a.addr, port))
					}})
				at += jitter(sshEvery)
			}
		case "web scan":
			at := start
			for k, p := range scanPaths {
				status := 404
				if p[1] == '.' && k%2 == 1 {
					status = 403
				}
				size := 153 + r.IntN(400)
				steps = append(steps, step{at: at, log: access, addr: a.addr, last: k == len(scanPaths)-1,
					line: func(now time.Time) string {
						return nginxLine(now, a.addr, "GET", p, status, size, "-", browserUA)
					}})
				at += jitter(scanEvery)
			}
		}
	}
	// Stable by offset: an attacker's own lines keep their order.
	for i := 1; i < len(steps); i++ {
		for j := i; j > 0 && steps[j].at < steps[j-1].at; j-- {
			steps[j], steps[j-1] = steps[j-1], steps[j]
		}
	}
	return as, steps
}

// legitLine is one line of background traffic: mostly page views, now and
// then a deploy job's key login, and a person who mistypes a password
// once before logging in — which must not be banned anywhere.
func legitLine(i int, auth, access *logFile, r *rand.Rand) (*logFile, func(time.Time) string) {
	a := netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + r.IntN(60))})
	port := 40000 + r.IntN(20000)
	switch {
	case i%12 == 5:
		return auth, func(now time.Time) string {
			return sshLine(now, 3000+i, fmt.Sprintf("Accepted publickey for deploy from %s port %d ssh2: ED25519 SHA256:Jf0tcqvQ8bSxw3mEXAMPLEkey", a, port))
		}
	case i%24 == 11:
		return auth, func(now time.Time) string {
			return sshLine(now, 3000+i, fmt.Sprintf("Failed password for alice from 192.0.2.44 port %d ssh2", port))
		}
	case i%24 == 12:
		return auth, func(now time.Time) string {
			return sshLine(now, 3000+i, fmt.Sprintf("Accepted password for alice from 192.0.2.44 port %d ssh2", port))
		}
	}
	page := legitPages[r.IntN(len(legitPages))]
	size := 512 + r.IntN(20000)
	return access, func(now time.Time) string {
		return nginxLine(now, a, "GET", page, 200, size, "https://www.example.com/", browserUA)
	}
}
