package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

type globalFlags struct {
	logLevel   string
	logFormat  string
	cpuProfile string
	stopProf   func()
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:   "phalanx",
		Short: "Collective defence for internet-facing servers",
		Long: `phalanx reads your logs (sshd, nginx, Apache, postfix, dovecot, or your own
YAML rules), recognises attacks — brute force, scanning, exploit payloads —
and decides what to block, with the evidence for every decision.

Start with a replay of a log you already have:

  phalanx replay /var/log/auth.log

then run it live with 'phalanx up'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.PersistentFlags().StringVar(&g.cpuProfile, "cpuprofile", "", "write a CPU profile to this file (for performance reports)")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if g.cpuProfile == "" {
			return nil
		}
		f, err := os.Create(g.cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		g.stopProf = func() { pprof.StopCPUProfile(); f.Close() }
		return nil
	}
	root.PersistentPostRun = func(*cobra.Command, []string) {
		if g.stopProf != nil {
			g.stopProf()
		}
	}
	root.AddCommand(newReplayCmd(g), newParseCmd(g), newUpCmd(g), newRulesCmd(g),
		newAllianceCmd(g), newDownCmd(), newDecisionsCmd(), newBouncersCmd(), newCharterCmd(), newCeasefireCmd(), newDrillCmd(), newLedgerCmd(g),
		newGuardCmd(g), newStatusCmd(), newInitCmd(), newVersionCmd())
	root.AddCommand(newDemoCmd(g))
	root.AddCommand(newAPICmd())
	root.AddCommand(newImportCmd())
	return root
}

// logger builds the structured logger from the global flags; logs go to
// standard error so that standard output stays for results.
func (g *globalFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(g.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", g.logFormat)
}

// outputFormat resolves -o: an explicit value, else a table on a terminal
// and JSON lines when piped.
func outputFormat(flag string, w io.Writer) (string, error) {
	switch flag {
	case "json", "table":
		return flag, nil
	case "":
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return "table", nil
		}
		return "json", nil
	}
	return "", fmt.Errorf("-o %q: use json or table", flag)
}

var version = "dev"

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "phalanx", version)
		},
	}
}
