package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phalanx-defence/phalanx/config"
)

// initChoice is one source init chose, and why.
type initChoice struct {
	yaml string // the config lines for it
	why  string
}

// inspectMachine looks under root (/ on a real machine; a fake tree in
// tests) for the logs phalanx can follow. hasJournalctl is injectable for
// the same reason.
func inspectMachine(root string, hasJournalctl bool) []initChoice {
	exists := func(p string) bool {
		_, err := os.Stat(filepath.Join(root, p))
		return err == nil || !errors.Is(err, fs.ErrNotExist)
	}
	var out []initChoice
	auth := false
	for _, c := range []struct{ path, hint, parser string }{
		{"/var/log/auth.log", "sshd", "sshd"},
		{"/var/log/secure", "sshd", "sshd"},
		{"/var/log/nginx/access.log", "nginx", "nginx"},
		{"/var/log/nginx/error.log", "nginx", "nginx"},
		{"/var/log/apache2/access.log", "apache", "apache"},
		{"/var/log/apache2/error.log", "apache", "apache"},
		{"/var/log/httpd/access_log", "apache", "apache"},
		{"/var/log/httpd/error_log", "apache", "apache"},
		{"/var/log/mail.log", "", "postfix/dovecot (recognised per line)"},
		{"/var/log/maillog", "", "postfix/dovecot (recognised per line)"},
	} {
		if !exists(c.path) {
			continue
		}
		auth = auth || c.hint == "sshd"
		y := "  - paths: [" + c.path + "]\n"
		if c.hint != "" {
			y += "    hint: " + c.hint + "\n"
		}
		out = append(out, initChoice{yaml: y, why: fmt.Sprintf("found %s: following it with the %s parser", c.path, c.parser)})
	}
	// Without an auth log, sshd logs only to the journal (the default on
	// recent Fedora, Arch, Debian without rsyslog).
	if !auth {
		switch {
		case hasJournalctl && exists("/run/systemd/journal/socket"):
			out = append(out, initChoice{
				yaml: "journald:\n  - matches: [_SYSTEMD_UNIT=ssh.service, +, _SYSTEMD_UNIT=sshd.service]\n    hint: sshd\n",
				why:  "no /var/log/auth.log or /var/log/secure, but journald runs and journalctl is present: following sshd's journal",
			})
		default:
			out = append(out, initChoice{why: "no /var/log/auth.log, /var/log/secure or journald found: sshd is not watched; add its log under files: by hand"})
		}
	}
	return out
}

// renderInit writes the starter config: the choices, then the commented
// rest of config.Config's schema.
func renderInit(choices []initChoice) []byte {
	var b bytes.Buffer
	b.WriteString("# phalanx configuration, written by `phalanx init` from what this machine has.\n")
	b.WriteString("# Every key is optional. Run it with: phalanx up --config /etc/phalanx/phalanx.yaml\n\n")
	b.WriteString("# State that must survive a restart: read offsets, journald cursors.\n")
	b.WriteString("data_dir: " + config.DefaultDataDir + "\n\n")
	var files, journal []initChoice
	for _, c := range choices {
		switch {
		case strings.HasPrefix(c.yaml, "journald:"):
			journal = append(journal, c)
		case c.yaml != "":
			files = append(files, c)
		}
	}
	b.WriteString("# Log files to follow, from their end; rotation is followed. hint names the\n# format; without it each line's format is recognised.\n")
	if len(files) == 0 {
		b.WriteString("# files:\n#   - paths: [/var/log/auth.log]\n#     hint: sshd\n")
	} else {
		b.WriteString("files:\n")
		for _, c := range files {
			b.WriteString("  # " + c.why + "\n" + c.yaml)
		}
	}
	b.WriteString("\n# journald, through `journalctl -o json --follow`.\n")
	if len(journal) == 0 {
		b.WriteString("# journald:\n#   - matches: [_SYSTEMD_UNIT=ssh.service]\n#     hint: sshd\n")
	} else {
		for _, c := range journal {
			b.WriteString("# " + c.why + "\n" + c.yaml)
		}
	}
	b.WriteString(`
# syslog over UDP or TCP; loopback unless a firewall admits only your hosts.
# syslog:
#   - listen: udp://127.0.0.1:5514

# Custom rules and extra scenarios (see 'phalanx rules test --help').
# rules: /etc/phalanx/rules.yaml

# Which sshd failures count, as fail2ban's modes: normal, ddos, extra, aggressive.
sshd_mode: aggressive

# Never decided against, whatever the logs say: add your office and your own
# networks. Loopback and link-local are allowlisted already.
# allowlist:
#   - 192.0.2.0/24

# Cap on per-source detection state (about 45 MB at the default).
# max_sources: 200000
`)
	return b.Bytes()
}

func newInitCmd() *cobra.Command {
	var out, root string
	var force bool
	cmd := &cobra.Command{
		Use:   "init [--out FILE] [--force]",
		Short: "Write a starter config from the logs this machine has",
		Long: `Init looks for the logs phalanx can follow — /var/log/auth.log or
/var/log/secure, journald, nginx and Apache logs, mail logs — writes a
commented config for them, and says why it chose each one. Check it, add your
own networks to allowlist, then start 'phalanx up --config FILE'.`,
		Example: `  sudo phalanx init
  phalanx init --out ./phalanx.yaml && phalanx up --config ./phalanx.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := exec.LookPath("journalctl")
			choices := inspectMachine(root, err == nil)
			data := renderInit(choices)
			// What init writes must load: a broken starter config would
			// only fail at 'phalanx up'.
			if _, err := config.Parse(data, out); err != nil {
				return fmt.Errorf("init wrote an invalid config (a bug, please report it): %w", err)
			}
			if _, err := os.Stat(out); err == nil && !force {
				return fmt.Errorf("%s exists: keep it, choose another file with --out, or overwrite it with --force", out)
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return fmt.Errorf("init: %w (run as root, or choose a file with --out)", err)
			}
			if err := os.WriteFile(out, data, 0o644); err != nil {
				return fmt.Errorf("init: %w (run as root, or choose a file with --out)", err)
			}
			w := cmd.OutOrStdout()
			for _, c := range choices {
				fmt.Fprintln(w, c.why)
			}
			fmt.Fprintf(w, "Wrote %s. Add your own networks to allowlist, then: phalanx up --config %s\n", out, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "/etc/phalanx/phalanx.yaml", "where to write the config")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	cmd.Flags().StringVar(&root, "root", "/", "inspect this directory as the machine's root (tests)")
	_ = cmd.Flags().MarkHidden("root")
	return cmd
}
