package member

import (
	"context"
	"net/netip"

	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/parse/rules"
	"github.com/phalanx-defence/phalanx/source"
)

// DetectOptions configure the member's own detection beyond what
// member.yaml says: what `phalanx up --data DIR --config FILE` reads from a
// phalanx config file — custom rules (translated fail2ban filters among
// them), the scenarios (a fail2ban jail's thresholds, CrowdSec's
// translated scenarios), the sshd mode and the memory bound. The zero
// value is the built-in detection.
type DetectOptions struct {
	// Rules are custom rules tried on lines no built-in parser takes.
	Rules *rules.Set
	// Scenarios replace the built-in scenarios when not nil.
	Scenarios []detect.Scenario
	// SSHDMode is fail2ban's sshd mode (normal, ddos, extra, aggressive);
	// empty keeps the default.
	SSHDMode string
	// MaxSources caps per-source detection state; 0 is detect's default.
	MaxSources int
	// Allowlist adds to member.yaml's allowlist.
	Allowlist []netip.Prefix
	// Escalation of repeat offenders' decisions; zero: detect's default.
	Escalation detect.Escalation
}

// SetDetection sets the options of the member's own detection; call it
// before Run.
func (m *Member) SetDetection(o DetectOptions) { m.detectOpts = o }

// LineSource is a source of log lines other than a followed file:
// journald, a syslog listener, standard input (packages source/...).
type LineSource interface {
	Run(ctx context.Context, out chan<- source.Line) error
}

// AddLineSource adds a source of lines to the member's own detection;
// call it before Run. Files are added with AddSource, whose offsets the
// member keeps in its data directory.
func (m *Member) AddLineSource(s LineSource) { m.lineSources = append(m.lineSources, s) }
