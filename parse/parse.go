// Package parse turns log lines into typed events. It recognises the format
// of each line (or takes a hint), splits a syslog header once, and hands
// the message to the built-in parser for the program that wrote it —
// sshd, nginx and Apache, postfix and dovecot — and, failing those, to the
// operator's custom YAML rules.
//
// A Parser is not safe for concurrent use: sshd's parser keeps per-process
// state, and every parser reuses the Event it is given.
package parse

import (
	"fmt"
	"strings"

	"github.com/phalanx-defence/phalanx"
	"github.com/phalanx-defence/phalanx/parse/logline"
	"github.com/phalanx-defence/phalanx/parse/mail"
	"github.com/phalanx-defence/phalanx/parse/rules"
	"github.com/phalanx-defence/phalanx/parse/sshd"
	"github.com/phalanx-defence/phalanx/parse/web"
)

// Type is a format hint: which program wrote the lines.
type Type string

// Types a user can name with --type. Auto recognises the format line by line.
const (
	Auto    Type = "auto"
	SSHD    Type = "sshd"
	Nginx   Type = "nginx"
	Apache  Type = "apache"
	Postfix Type = "postfix"
	Dovecot Type = "dovecot"
	Syslog  Type = "syslog" // any syslog-framed line: routed by its program name
)

// Types lists the hints in the order --help shows them.
var Types = []Type{Auto, SSHD, Nginx, Apache, Postfix, Dovecot, Syslog}

// ParseType parses a --type value; "" is Auto.
func ParseType(s string) (Type, error) {
	if s == "" {
		return Auto, nil
	}
	for _, t := range Types {
		if string(t) == strings.ToLower(s) {
			return t, nil
		}
	}
	names := make([]string, len(Types))
	for i, t := range Types {
		names[i] = string(t)
	}
	return "", fmt.Errorf("unknown log type %q: use one of %s", s, strings.Join(names, ", "))
}

// Options configures a Parser. The zero value recognises every built-in
// format with sshd in aggressive mode.
type Options struct {
	Type     Type
	SSHDMode sshd.Mode // zero is fail2ban's normal mode; New defaults Auto to aggressive
	Rules    *rules.Set
	Context  *logline.Context // year and zone for timestamps that do not carry them
}

// Parser dispatches lines to the built-in parsers and custom rules.
type Parser struct {
	typ   Type
	ctx   *logline.Context
	sshd  *sshd.Parser
	web   *web.Parser
	mail  *mail.Parser
	rules *rules.Set
}

// New returns a parser for o.
func New(o Options) *Parser {
	if o.Type == "" {
		o.Type = Auto
	}
	if o.Context == nil {
		o.Context = &logline.Context{}
	}
	svc := phalanx.ServiceHTTP
	switch o.Type {
	case Nginx:
		svc = phalanx.ServiceNginx
	case Apache:
		svc = phalanx.ServiceApache
	}
	return &Parser{
		typ:   o.Type,
		ctx:   o.Context,
		sshd:  sshd.New(o.SSHDMode, o.Context),
		web:   web.New(svc, o.Context),
		mail:  mail.New(o.Context),
		rules: o.Rules,
	}
}

// Parse fills ev from line and reports whether any parser recognised it.
// A recognised line may be benign (a successful login, an ordinary
// request): ev.Hostile() says whether it counts toward a scenario.
func (p *Parser) Parse(line string, ev *phalanx.Event) bool {
	ev.Reset()
	ok := p.builtin(line, ev)
	if p.rules != nil && !ev.Hostile() {
		var rev phalanx.Event
		if p.rules.Parse(line, &rev) {
			*ev = rev
			return true
		}
	}
	return ok
}

// ParseHeader is Parse for a record whose header a structured source
// (journald, a syslog listener) has already split.
func (p *Parser) ParseHeader(h *logline.Header, ev *phalanx.Event) bool {
	ev.Reset()
	ok := p.route(h, ev)
	if !ok && p.typ != Auto && p.typ != Syslog {
		// The source was configured with a type; trust it over the
		// program name (a renamed binary, a container's tag).
		ok = p.byType(h.Message, ev)
		if ok && ev.Time.IsZero() {
			ev.Time = h.Time
		}
	}
	if p.rules != nil && !ev.Hostile() {
		var rev phalanx.Event
		if p.rules.Parse(h.Message, &rev) {
			if rev.Time.IsZero() {
				rev.Time = h.Time
			}
			*ev = rev
			return true
		}
	}
	return ok
}

func (p *Parser) builtin(line string, ev *phalanx.Event) bool {
	switch p.typ {
	case Auto, Syslog:
	default:
		return p.byType(line, ev)
	}
	if h, ok := logline.Parse(line, p.ctx); ok {
		if p.route(&h, ev) {
			return true
		}
		if p.typ == Syslog {
			return false
		}
	}
	// Not syslog-framed, or framed by a program we do not route: the
	// formats that carry their own framing.
	if p.web.Parse(line, ev) {
		return true
	}
	ev.Reset()
	if p.mail.Parse(line, ev) {
		return true
	}
	ev.Reset()
	if p.sshd.Parse(line, ev) {
		return true
	}
	ev.Reset()
	return false
}

func (p *Parser) byType(line string, ev *phalanx.Event) bool {
	switch p.typ {
	case SSHD:
		return p.sshd.Parse(line, ev)
	case Nginx, Apache:
		return p.web.Parse(line, ev)
	case Postfix, Dovecot:
		return p.mail.Parse(line, ev)
	}
	return false
}

// route sends a split record to the parser for its program.
func (p *Parser) route(h *logline.Header, ev *phalanx.Event) bool {
	prog := h.Program
	switch {
	case prog == "sshd" || prog == "sshd-session" || strings.HasPrefix(prog, "sshd@"):
		return p.sshd.ParseMessage(h, ev)
	case strings.HasPrefix(prog, "postfix") || prog == "dovecot" || prog == "imap-login" || prog == "pop3-login" ||
		prog == "auth" || prog == "dovecot-auth" || strings.HasPrefix(prog, "dovecot/"):
		return p.mail.ParseMessage(h, ev)
	case prog == "nginx" || prog == "apache2" || prog == "httpd" || prog == "apache":
		if p.web.Parse(h.Message, ev) {
			if ev.Time.IsZero() {
				ev.Time = h.Time
			}
			return true
		}
	}
	return false
}
