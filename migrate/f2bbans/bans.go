// Package f2bbans reads the bans in force from fail2ban's SQLite database
// (/var/lib/fail2ban/fail2ban.sqlite3), opened read-only with a pure-Go
// SQLite driver, so that `phalanx import fail2ban --bans` brings them
// into a member's decision set with the time they have left.
package f2bbans

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	_ "modernc.org/sqlite" // registers the "sqlite" driver; pure Go, no cgo

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/migrate"
)

// DefaultDB is where Debian's fail2ban keeps its database (dbfile in
// fail2ban.conf).
const DefaultDB = "/var/lib/fail2ban/fail2ban.sqlite3"

// unknownBantime is what fail2ban assumes for a ban whose bantime an old
// database did not record (-2 after an upgrade): its default bantime.
const unknownBantime = 10 * time.Minute

// maxEvidence bounds the matched lines kept per ban (fail2ban keeps 10).
const maxEvidence = 8

// Options tune Read.
type Options struct {
	// Permanent is how long a permanent fail2ban ban (bantime -1) lasts
	// in phalanx, whose decisions all expire. Default a year.
	Permanent time.Duration
	// Jails, when set, keeps only the bans of these jails.
	Jails []string
}

// Bans is what Read found.
type Bans struct {
	DB        string             `json:"db"`
	Table     string             `json:"table"` // bips (fail2ban ≥ 0.11), or bans for older databases
	Read      int                `json:"read"`  // ban rows still in force
	Permanent int                `json:"permanent"`
	Merged    int                `json:"merged"` // the same address banned by several jails
	Imported  []phalanx.Decision `json:"-"`
	Skipped   migrate.Skips      `json:"skipped"`
}

// Read returns the bans of the database at path still in force at now,
// one decision per address (the longest of its jails' bans), with origin
// import:fail2ban and scenario fail2ban/JAIL. The database is opened
// read-only: fail2ban may keep running while it is read.
func Read(ctx context.Context, path string, now time.Time, opt Options) (*Bans, error) {
	if opt.Permanent <= 0 {
		opt.Permanent = 365 * 24 * time.Hour
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("fail2ban bans: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("fail2ban bans: %w (give fail2ban's database with --db; `fail2ban-client get dbfile` prints where it is)", err)
	}
	// mode=ro: never write fail2ban's database, even by accident; the
	// busy timeout rides over fail2ban's own short write transactions.
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout(5000)")
	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("fail2ban bans: open %s: %w", abs, err)
	}
	defer db.Close()
	out := &Bans{DB: abs}
	table, err := banTable(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("fail2ban bans: %s: %w", abs, err)
	}
	out.Table = table
	rows, err := db.QueryContext(ctx, "SELECT jail, ip, timeofban, bantime, bancount, data FROM "+table+
		" WHERE timeofban + bantime > ? OR bantime < 0 ORDER BY timeofban", now.Unix())
	if err != nil {
		return nil, fmt.Errorf("fail2ban bans: read %s: %w", abs, err)
	}
	defer rows.Close()
	byValue := map[netip.Prefix]int{}
	for rows.Next() {
		var (
			jail, ip       sql.NullString
			tob, bt, count sql.NullInt64
			data           sql.NullString
		)
		if err := rows.Scan(&jail, &ip, &tob, &bt, &count, &data); err != nil {
			out.Skipped.Add("row", "", "unreadable row: "+err.Error())
			continue
		}
		if len(opt.Jails) > 0 && !slices.Contains(opt.Jails, jail.String) {
			continue
		}
		out.Read++
		where := "jail " + safeText(jail.String)
		d, reason := convert(jail.String, ip.String, tob.Int64, bt.Int64, count.Int64, data.String, now, opt)
		if reason != "" {
			out.Skipped.Add(where, ip.String, reason)
			continue
		}
		if bt.Int64 == -1 {
			out.Permanent++
		}
		if i, dup := byValue[d.Value]; dup {
			out.Merged++
			if d.Until().After(out.Imported[i].Until()) {
				d.Events = max(d.Events, out.Imported[i].Events)
				out.Imported[i] = d
			}
			continue
		}
		byValue[d.Value] = len(out.Imported)
		out.Imported = append(out.Imported, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fail2ban bans: read %s: %w", abs, err)
	}
	return out, nil
}

// banTable picks bips, fail2ban's table of current bans per address and
// jail (database version 4, fail2ban 0.11 and later), or bans, the ban
// history older versions have alone.
func banTable(ctx context.Context, db *sql.DB) (string, error) {
	var found []string
	rows, err := db.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type='table' AND name IN ('bips','bans')")
	if err != nil {
		return "", fmt.Errorf("%w (is it fail2ban's database?)", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return "", err
		}
		found = append(found, n)
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	switch {
	case slices.Contains(found, "bips"):
		return "bips", nil
	case slices.Contains(found, "bans"):
		return "bans", nil
	}
	return "", errors.New("no bans table: this is not fail2ban's database (fail2ban-client get dbfile names it)")
}

// banData is the JSON fail2ban stores with a ban.
type banData struct {
	Matches  []any `json:"matches"`
	Failures int   `json:"failures"`
}

// convert turns one row into a decision, or says why not.
func convert(jail, ip string, timeofban, bantime, bancount int64, data string, now time.Time, opt Options) (phalanx.Decision, string) {
	addr, err := netip.ParseAddr(strings.TrimSpace(ip))
	var p netip.Prefix
	if err == nil {
		addr = addr.Unmap().WithZone("")
		p = netip.PrefixFrom(addr, addr.BitLen())
	} else if pp, perr := netip.ParsePrefix(strings.TrimSpace(ip)); perr == nil {
		// fail2ban bans subnets when a filter's <SUBNET> tag matched.
		p = pp.Masked()
	} else {
		return phalanx.Decision{}, migrate.ReasonInvalidValue + ": not an IP address (fail2ban bans host names only with DNS lookups phalanx does not do)"
	}
	start := time.Unix(timeofban, 0).UTC()
	var until time.Time
	switch {
	case bantime == -1:
		until = now.Add(opt.Permanent)
	case bantime == -2:
		until = start.Add(unknownBantime)
	case bantime < 0:
		return phalanx.Decision{}, fmt.Sprintf("%s %d", migrate.ReasonInvalidDuration, bantime)
	default:
		until = start.Add(time.Duration(bantime) * time.Second)
	}
	if !until.After(now) {
		return phalanx.Decision{}, migrate.ReasonExpired
	}
	first := start
	if first.After(now) {
		first = now
	}
	d := phalanx.Decision{
		Value: p, Type: phalanx.Ban, Scenario: "fail2ban/" + safeText(jail),
		FirstSeen: first, LastSeen: now, Duration: until.Sub(now),
		Events: 1, Origin: migrate.OriginFail2ban,
	}
	var bd banData
	if json.Unmarshal([]byte(data), &bd) == nil {
		if bd.Failures > 0 {
			d.Events = bd.Failures
		}
		for _, m := range bd.Matches[max(0, len(bd.Matches)-maxEvidence):] {
			d.Evidence = append(d.Evidence, matchLine(m))
		}
	}
	if bancount > 1 {
		d.Evidence = append(d.Evidence, fmt.Sprintf("fail2ban jail %s: banned %d times", safeText(jail), bancount))
	}
	return d, ""
}

// matchLine renders one stored match: fail2ban keeps a line either as a
// string or as the list of its parts.
func matchLine(m any) string {
	switch v := m.(type) {
	case string:
		return safeText(v)
	case []any:
		parts := make([]string, 0, len(v))
		for _, p := range v {
			if s, ok := p.(string); ok {
				parts = append(parts, s)
			}
		}
		return safeText(strings.Join(parts, ""))
	}
	return ""
}

// safeText keeps text from the database printable and bounded: it is an
// attacker's log line, and ends up in terminals.
func safeText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if len(s) > 512 {
		s = strings.ToValidUTF8(s[:512], "")
	}
	return s
}
