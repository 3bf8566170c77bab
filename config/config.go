// Package config is phalanx's configuration: one typed struct that is both
// the YAML file's schema and the API for embedding phalanx in a Go
// program. Defaults are chosen so that an empty file works.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/phalanx-defence/phalanx/detect"
	"github.com/phalanx-defence/phalanx/parse/rules"
	"github.com/phalanx-defence/phalanx/source/file"
	"github.com/phalanx-defence/phalanx/source/journald"
	"github.com/phalanx-defence/phalanx/source/syslog"
)

// Config is a member's configuration.
type Config struct {
	// DataDir holds state that must survive a restart: read offsets,
	// journald cursors. Default /var/lib/phalanx.
	DataDir string `yaml:"data_dir,omitempty"`

	// Sources.
	Files    []file.Config     `yaml:"files,omitempty"`
	Journald []journald.Config `yaml:"journald,omitempty"`
	Syslog   []syslog.Config   `yaml:"syslog,omitempty"`

	// Rules names a YAML file with custom `rules:` and extra `scenarios:`.
	Rules string `yaml:"rules,omitempty"`
	// Scenarios, when set, names a YAML file whose `scenarios:` replace the
	// built-in ones instead of adding to them.
	Scenarios string `yaml:"scenarios,omitempty"`
	// SSHDMode is fail2ban's notion of which sshd failures count: normal,
	// ddos, extra or aggressive (default).
	SSHDMode string `yaml:"sshd_mode,omitempty"`

	// Allowlist: addresses and CIDR ranges never decided against.
	Allowlist []string `yaml:"allowlist,omitempty"`
	// MaxSources caps the per-source detection state (default 200,000
	// sources, about 45 MB); beyond it the least recently seen source is
	// forgotten. A flood of distinct addresses cannot grow memory past it.
	MaxSources int `yaml:"max_sources,omitempty"`
	// EnforceNFT keeps an nftables table of phalanx's own (inet phalanx)
	// in step with the decisions (needs root; `--enforce nft`).
	EnforceNFT bool `yaml:"enforce_nft,omitempty"`
	// Escalation lengthens decisions against repeat offenders: on by
	// default (each new decision twice the previous within 24h, up to 7
	// days); `escalation: {off: true}` turns it off, `max:` caps it.
	Escalation detect.Escalation `yaml:"escalation,omitempty"`
	// NoBuiltinAllowlist turns off the built-in allowlist (loopback,
	// link-local).
	NoBuiltinAllowlist bool `yaml:"no_builtin_allowlist,omitempty"`
}

// DefaultDataDir is where state lives when the config does not say.
const DefaultDataDir = "/var/lib/phalanx"

// Load reads a config file. Unknown keys are errors: a typo must not
// silently disable a source.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes a config; name is used in error messages.
func Parse(data []byte, name string) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file is a valid, all-defaults config (Decode says io.EOF).
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config %s: %w (see packaging/phalanx.yaml for an example)", name, err)
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.SSHDMode == "" {
		c.SSHDMode = "aggressive"
	}
	base := filepath.Dir(name)
	for _, p := range []*string{&c.Rules, &c.Scenarios} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	return c, nil
}

// Discover returns a config for this machine when none is given: the
// usual auth and web logs that exist, followed from their end.
func Discover() Config {
	c := Config{DataDir: DefaultDataDir, SSHDMode: "aggressive"}
	for _, cand := range []struct{ path, hint string }{
		{"/var/log/auth.log", "sshd"},
		{"/var/log/secure", "sshd"},
		{"/var/log/nginx/access.log", "nginx"},
		{"/var/log/nginx/error.log", "nginx"},
		{"/var/log/apache2/access.log", "apache"},
		{"/var/log/apache2/error.log", "apache"},
		{"/var/log/httpd/access_log", "apache"},
		{"/var/log/mail.log", ""},
		{"/var/log/maillog", ""},
	} {
		if _, err := os.Stat(cand.path); err == nil || !errors.Is(err, fs.ErrNotExist) {
			c.Files = append(c.Files, file.Config{Paths: []string{cand.path}, Hint: cand.hint})
		}
	}
	return c
}

// LoadRulesFile reads a YAML file that may hold custom `rules:`,
// `scenarios:`, or both, and returns each (a nil set when it has no rules).
func LoadRulesFile(path string) (*rules.Set, []detect.Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("rules: %w", err)
	}
	set, err := rules.Parse(data, path)
	if err != nil {
		return nil, nil, err
	}
	scen, err := detect.ParseScenarios(data, path)
	if err != nil {
		return nil, nil, err
	}
	if len(set.Rules()) == 0 {
		set = nil
	}
	return set, scen, nil
}
