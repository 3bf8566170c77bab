// Package phalanx holds the domain types shared by every part of phalanx:
// the typed Event a parser produces from a log line, the Decision that
// detection (and later the alliance) takes about an address, and the Clock
// that every component is given instead of reading the time itself.
//
// The data flow is sources → parsers → Events → scenarios → Decisions →
// decision set → enforcers. Adapters (files, journald, syslog, NATS,
// nftables, HTTP) live in their own packages; this one depends on nothing
// but the standard library.
package phalanx

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"
)

// Service names the program that wrote a log line.
type Service string

// Services recognised by the built-in parsers. Custom rules may use any name.
const (
	ServiceSSHD    Service = "sshd"
	ServiceNginx   Service = "nginx"
	ServiceApache  Service = "apache"
	ServiceHTTP    Service = "http" // an access log whose server is not known
	ServicePostfix Service = "postfix"
	ServiceDovecot Service = "dovecot"
)

// EventKind says what happened in a log line. The built-in kinds below are
// what the default scenarios filter on; custom rules may add their own.
type EventKind string

// Kinds that count toward a scenario (hostile or failed activity).
const (
	// SSH.
	KindAuthFailed     EventKind = "auth_failed"      // wrong password or key, PAM failure
	KindInvalidUser    EventKind = "invalid_user"     // a user that does not exist
	KindUserNotAllowed EventKind = "user_not_allowed" // AllowUsers/DenyUsers/root login refused
	KindMaxAuthTries   EventKind = "max_auth_tries"   // too many authentication failures
	KindPreauthClose   EventKind = "preauth_close"    // connection closed or reset before authenticating
	KindKexFailure     EventKind = "kex_failure"      // no matching cipher/kex, bad protocol version
	KindBannerError    EventKind = "banner_error"     // no identification string, banner exchange failed
	KindConnRefused    EventKind = "conn_refused"     // tcpwrappers refused the connection
	KindAuthTimeout    EventKind = "auth_timeout"     // LoginGraceTime exceeded

	// HTTP.
	KindHTTPNotFound    EventKind = "http_not_found"    // a 4xx answer to an ordinary path: probing when repeated
	KindHTTPAuthFailed  EventKind = "http_auth_failed"  // 401, or an auth failure in an error log
	KindHTTPDenied      EventKind = "http_denied"       // server configuration denied the client
	KindHTTPSensitive   EventKind = "http_sensitive"    // a request for a secret or admin file (/.env, /.git/config, wp-login.php)
	KindHTTPExploit     EventKind = "http_exploit"      // an exploit payload: traversal, SQLi, XSS, a CVE path, a backdoor
	KindHTTPBadAgent    EventKind = "http_bad_agent"    // a user agent of a known scanner or attack tool
	KindHTTPRateLimited EventKind = "http_rate_limited" // nginx limit_req/limit_conn refused the client
	KindHTTPOpenProxy   EventKind = "http_open_proxy"   // a CONNECT or absolute-URI request probing for a proxy
	KindHTTPMalformed   EventKind = "http_malformed"    // a request line that is not HTTP (400, binary, overflow)

	// Mail.
	KindMailAuthFailed EventKind = "mail_auth_failed" // SASL/IMAP/POP3 authentication failure
	KindMailRejected   EventKind = "mail_rejected"    // RCPT/HELO rejected, relay denied, unknown user
	KindMailProtocol   EventKind = "mail_protocol"    // improper pipelining, lost connection after AUTH

	// Custom rules whose YAML names no kind.
	KindRuleMatch EventKind = "rule_match"
)

// Kinds that do not count toward a scenario: they are parsed so that
// scenarios and the parse summary can see legitimate activity.
const (
	KindAuthSuccess EventKind = "auth_success" // accepted password or key
	KindHTTPRequest EventKind = "http_request" // an ordinary request
	KindInfo        EventKind = "info"         // recognised, but neither hostile nor a login
)

// Hostile reports whether an event of this kind counts toward a scenario:
// the "match" of `phalanx parse`.
func (k EventKind) Hostile() bool {
	switch k {
	case "", KindAuthSuccess, KindHTTPRequest, KindInfo:
		return false
	}
	return true
}

// Event is one parsed log line. Parsers fill it in place so that the hot
// path allocates nothing; string fields may point into the line they came
// from, so whoever keeps one beyond the next line must clone it.
type Event struct {
	Time   time.Time  // when the line says it happened; zero if it does not say
	Source netip.Addr // the remote address the line is about; invalid if none
	// SourceName is the remote host as the line names it when that is not
	// an address (a host name, or "192.030.0.6"). It is shown, never
	// resolved: an attacker chooses the names it connects from, so phalanx
	// does no DNS on them and never decides against one.
	SourceName string
	Service    Service
	Kind       EventKind
	User       string // the user an authentication was for, when known

	// Method is the HTTP method, or the SSH authentication method
	// ("password", "publickey", "keyboard-interactive") when known: a
	// rejected key is a misconfigured job more often than an attack.
	Method string

	// HTTP fields, set by the web parsers.
	Path      string // path and query as requested
	Status    int
	UserAgent string
}

// Reset clears the event for reuse.
func (e *Event) Reset() { *e = Event{} }

// Hostile reports whether the event counts toward a scenario.
func (e *Event) Hostile() bool { return e.Kind.Hostile() && e.Source.IsValid() }

// Failure reports whether the line is an attack-relevant failure by a
// remote host, whether named by address or by name: what `phalanx parse`
// calls a match, like fail2ban-regex. Only Hostile events, which have an
// address, reach the scenarios.
func (e *Event) Failure() bool {
	return e.Kind.Hostile() && (e.Source.IsValid() || e.SourceName != "")
}

// DecisionType is the remedy a decision asks enforcers to apply.
type DecisionType string

// Remedies, mildest first.
const (
	Throttle DecisionType = "throttle"
	Captcha  DecisionType = "captcha"
	Ban      DecisionType = "ban"
)

// Strength orders remedies from the mildest: throttle 1, captcha 2, ban 3;
// 0 for anything else. Where two decisions meet on one value, the stronger
// one wins.
func (t DecisionType) Strength() int {
	switch t {
	case Throttle:
		return 1
	case Captcha:
		return 2
	case Ban:
		return 3
	}
	return 0
}

// ParseDecisionType parses a remedy name.
func ParseDecisionType(s string) (DecisionType, error) {
	switch t := DecisionType(s); t {
	case Throttle, Captcha, Ban:
		return t, nil
	}
	return "", fmt.Errorf("unknown decision type %q: use ban, captcha or throttle", s)
}

// Scope says whether a decision is about one address or a range.
type Scope string

// Scopes.
const (
	ScopeIP    Scope = "ip"
	ScopeRange Scope = "range"
)

// Origin says where a decision came from.
type Origin string

// Origins.
const (
	OriginLocal    Origin = "local"    // this member's own detection
	OriginAlliance Origin = "alliance" // folded from the alliance ledger
	OriginManual   Origin = "manual"   // added by an operator
)

// Decision is a remedy against an address or range, for a time, with the
// evidence that led to it.
type Decision struct {
	Value     netip.Prefix // a single address is a full-length prefix
	Type      DecisionType
	Scenario  string
	Duration  time.Duration
	FirstSeen time.Time // first event in the evidence
	LastSeen  time.Time // event that triggered the decision
	Events    int       // events that led to it
	Origin    Origin
	Evidence  []string // a few of the triggering log lines, oldest first
}

// Scope is ScopeIP for a single address and ScopeRange otherwise.
func (d Decision) Scope() Scope {
	if d.Value.IsSingleIP() {
		return ScopeIP
	}
	return ScopeRange
}

// Until is when the decision expires: its last sighting plus its duration.
func (d Decision) Until() time.Time { return d.LastSeen.Add(d.Duration) }

// ValueString is the address for an IP decision, the CIDR for a range.
func (d Decision) ValueString() string {
	if d.Value.IsSingleIP() {
		return d.Value.Addr().String()
	}
	return d.Value.String()
}

type decisionJSON struct {
	Value     string       `json:"value"`
	Scope     Scope        `json:"scope"`
	Type      DecisionType `json:"type"`
	Scenario  string       `json:"scenario"`
	Duration  string       `json:"duration"`
	FirstSeen time.Time    `json:"first_seen"`
	LastSeen  time.Time    `json:"last_seen"`
	Until     time.Time    `json:"until"`
	Events    int          `json:"events"`
	Origin    Origin       `json:"origin"`
	Evidence  []string     `json:"evidence,omitempty"`
}

// MarshalJSON writes the decision in the form `phalanx replay -o json` and
// the APIs use.
func (d Decision) MarshalJSON() ([]byte, error) {
	return json.Marshal(decisionJSON{
		Value: d.ValueString(), Scope: d.Scope(), Type: d.Type, Scenario: d.Scenario,
		Duration: d.Duration.String(), FirstSeen: d.FirstSeen, LastSeen: d.LastSeen,
		Until: d.Until(), Events: d.Events, Origin: d.Origin, Evidence: d.Evidence,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (d *Decision) UnmarshalJSON(b []byte) error {
	var j decisionJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	p, err := ParsePrefixOrAddr(j.Value)
	if err != nil {
		return err
	}
	dur, err := time.ParseDuration(j.Duration)
	if err != nil {
		return fmt.Errorf("decision duration: %w", err)
	}
	*d = Decision{Value: p, Type: j.Type, Scenario: j.Scenario, Duration: dur,
		FirstSeen: j.FirstSeen, LastSeen: j.LastSeen, Events: j.Events, Origin: j.Origin, Evidence: j.Evidence}
	return nil
}

// ParsePrefixOrAddr parses "192.0.2.1" as a /32 and "2001:db8::/64" as a
// range, masking host bits.
func ParsePrefixOrAddr(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR range", s)
	}
	return NormalizePrefix(p), nil
}

// NormalizePrefix makes equal values equal keys: host bits masked, and
// ::ffff:a.b.c.d/N — an IPv4 range written the IPv6 way — unmapped like a
// lone address, or it would read back as another value.
func NormalizePrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return p
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// Clock tells the time. Live runs use SystemClock; replays and tests use a
// clock driven by the log or by the test.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }
