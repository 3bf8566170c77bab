package member

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/phalanx-defence/phalanx/charter"
	"github.com/phalanx-defence/phalanx/ledger"
	"github.com/phalanx-defence/phalanx/natsbus"
	"github.com/phalanx-defence/phalanx/source/file"
)

// Files of a member's data directory.
const (
	fileIdentity = "identity.json"
	fileGenesis  = "genesis.env"
	fileConfig   = "member.yaml"
	fileChain    = "chain.json"
	fileSnapshot = "fold.snap"
	fileAPIAddr  = "api.addr"
	fileAPIToken = "api.token"
	fileAPIRead  = "api.readonly"
	dirState     = "state"
	dirNATS      = "nats"
)

// DefaultNATSListen is where a founder's embedded NATS server listens
// unless told otherwise: loopback, so that nothing is exposed by default.
const DefaultNATSListen = "127.0.0.1:4222"

// DefaultAPIListen lets the kernel choose a loopback port; the chosen
// address is written to api.addr for the CLI.
const DefaultAPIListen = "127.0.0.1:0"

// joinTimeout bounds how long Join waits for the hub.
const joinTimeout = 30 * time.Second

// Info says what Init or Join created.
type Info struct {
	Dir      string          `json:"dir"`
	ID       ledger.MemberID `json:"id"`
	Alliance string          `json:"alliance"`
	Name     string          `json:"name"`
	Hub      string          `json:"hub"` // host:port of the NATS server that hosts the ledger
}

// config is member.yaml: the file schema of a member.
type config struct {
	Name      string         `yaml:"name"`
	Alliance  string         `yaml:"alliance"`
	NATS      natsbus.Config `yaml:"nats"`
	API       string         `yaml:"api,omitempty"`
	Sources   []file.Config  `yaml:"sources,omitempty"`
	Territory []string       `yaml:"territory,omitempty"`
	Allowlist []string       `yaml:"allowlist,omitempty"`
}

func (c config) territory() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(c.Territory))
	for _, s := range c.Territory {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("member: %s territory: %w (fix the CIDR)", fileConfig, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Masked().String())
	}
	return out
}

// hub is the host:port other members connect to.
func (c config) hub() string {
	if c.NATS.Embedded {
		return c.NATS.Listen
	}
	if len(c.NATS.URLs) > 0 {
		u := c.NATS.URLs[0]
		if i := strings.Index(u, "://"); i >= 0 {
			u = u[i+3:]
		}
		return u
	}
	return ""
}

func loadConfig(dir string) (config, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileConfig))
	if err != nil {
		return config{}, fmt.Errorf("member: %w (is %s a member's data directory? create one with `phalanx alliance init` or `join`)", err, dir)
	}
	var c config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return config{}, fmt.Errorf("member: %s: %w", fileConfig, err)
	}
	return c, nil
}

func writeConfig(dir string, c config) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("member: %s: %w", fileConfig, err)
	}
	return writeFile(filepath.Join(dir, fileConfig), b, 0o640)
}

// writeFile replaces path atomically, so a crash never leaves half a file.
func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("member: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("member: write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("member: %w", err)
	}
	// Flushed before the rename, so that after a power loss the name
	// holds either the old content or the new, never an empty file. The
	// most frequent writer, the chain position, is paced by the charter's
	// rate (600 envelopes a minute by default).
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("member: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("member: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("member: %w", err)
	}
	return nil
}

func saveChain(dir string, c ledger.Chain) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("member: chain: %w", err)
	}
	return writeFile(filepath.Join(dir, fileChain), b, 0o600)
}

func loadChain(dir string) (ledger.Chain, error) {
	var c ledger.Chain
	b, err := os.ReadFile(filepath.Join(dir, fileChain))
	if err != nil {
		return c, fmt.Errorf("member: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("member: %s: %w", fileChain, err)
	}
	return c, nil
}

func loadGenesis(dir string) (ledger.Envelope, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileGenesis))
	if err != nil {
		return ledger.Envelope{}, fmt.Errorf("member: %w", err)
	}
	env, err := ledger.Decode(b)
	if err != nil {
		return ledger.Envelope{}, fmt.Errorf("member: %s: %w", fileGenesis, err)
	}
	return env, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// prepareDir creates dir for a new member, refusing one that already
// holds a member: overwriting an identity would lose it for good.
func prepareDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("member: %w", err)
	}
	if _, err := os.Stat(filepath.Join(abs, fileIdentity)); err == nil {
		return "", fmt.Errorf("member: %s already holds a member (%s); choose another --data", abs, fileIdentity)
	}
	if err := os.MkdirAll(filepath.Join(abs, dirState), 0o700); err != nil {
		return "", fmt.Errorf("member: data directory: %w (choose another with --data)", err)
	}
	return abs, nil
}

// resolveListen turns a port of 0 into a free port now, so that the hub's
// address written into invitations stays the same across restarts.
func resolveListen(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("member: NATS listen address %q: %w (give HOST:PORT)", addr, err)
	}
	if port != "0" {
		return addr, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("member: NATS listen address %q: %w", addr, err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Init founds an alliance in dir: the founder's identity, a charter signed
// by it (the genesis envelope, published when the member first runs) and
// a config whose embedded NATS server hosts the ledger on natsListen.
func Init(dir, name string, natsListen string, territory []netip.Prefix, at time.Time) (Info, error) {
	if name == "" {
		return Info{}, errors.New("member: an alliance needs a name (--name)")
	}
	if natsListen == "" {
		natsListen = DefaultNATSListen
	}
	listen, err := resolveListen(natsListen)
	if err != nil {
		return Info{}, err
	}
	return found(dir, name, natsbus.Config{Embedded: true, Listen: listen, StoreDir: dirNATS}, territory, at)
}

// InitCluster founds an alliance in dir, like Init, whose ledger lives on
// an external NATS cluster instead of an embedded server: nc names its
// client URLs, and optionally a credentials file and the ledger stream's
// replicas (0 leaves it to natsbus: 1). Invitations then name the first
// URL as the hub; a joining member learns the cluster's other nodes from
// it once connected.
func InitCluster(dir, name string, nc natsbus.Config, territory []netip.Prefix, at time.Time) (Info, error) {
	if name == "" {
		return Info{}, errors.New("member: an alliance needs a name (--name)")
	}
	if len(nc.URLs) == 0 {
		return Info{}, errors.New("member: an alliance on a NATS cluster needs its client URLs (--nats-url nats://host:4222,...)")
	}
	if nc.Replicas < 0 || nc.Replicas > 5 {
		return Info{}, fmt.Errorf("member: %d replicas: JetStream keeps 1 to 5 (--nats-replicas)", nc.Replicas)
	}
	nc.Embedded, nc.Listen, nc.StoreDir, nc.NoListen = false, "", "", false
	if nc.CredsFile != "" {
		// The member runs from any working directory, the file stays put.
		abs, err := filepath.Abs(nc.CredsFile)
		if err != nil {
			return Info{}, fmt.Errorf("member: --nats-creds: %w", err)
		}
		if _, err := os.Stat(abs); err != nil {
			return Info{}, fmt.Errorf("member: --nats-creds: %w (give the .creds file the cluster's operator issued)", err)
		}
		nc.CredsFile = abs
	}
	return found(dir, name, nc, territory, at)
}

// found writes a founder into dir whose ledger is where nc says.
func found(dir, name string, nc natsbus.Config, territory []netip.Prefix, at time.Time) (Info, error) {
	abs, err := prepareDir(dir)
	if err != nil {
		return Info{}, err
	}
	id, err := ledger.NewIdentity()
	if err != nil {
		return Info{}, fmt.Errorf("member: identity: %w", err)
	}
	founderName, err := os.Hostname()
	if err != nil || founderName == "" {
		founderName = "founder"
	}
	ch := charter.New(name, id, founderName, territory, at)
	var chain ledger.Chain
	genesis, err := ledger.Seal(id, &chain, "", ledger.KindCharter, ch, at)
	if err != nil {
		return Info{}, fmt.Errorf("member: seal the charter: %w", err)
	}
	cfg := config{
		Name:      founderName,
		Alliance:  genesis.ID(),
		NATS:      nc,
		API:       DefaultAPIListen,
		Territory: prefixStrings(territory),
	}
	info := Info{Dir: abs, ID: id.ID, Alliance: genesis.ID(), Name: founderName, Hub: cfg.hub()}
	if err := writeMember(abs, id, genesis, chain, cfg); err != nil {
		return Info{}, err
	}
	return info, nil
}

func writeMember(dir string, id ledger.Identity, genesis ledger.Envelope, chain ledger.Chain, cfg config) error {
	if err := ledger.SaveIdentity(filepath.Join(dir, fileIdentity), id); err != nil {
		return fmt.Errorf("member: %w", err)
	}
	if err := writeFile(filepath.Join(dir, fileGenesis), genesis.Encode(), 0o644); err != nil {
		return err
	}
	if err := saveChain(dir, chain); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, fileAPIToken), []byte(randomHex(32)+"\n"), 0o600); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, fileAPIRead), []byte(randomHex(32)+"\n"), 0o600); err != nil {
		return err
	}
	return writeConfig(dir, cfg)
}

// readOnlyToken reads the read-only API token of the member in dir,
// creating api.readonly (0600) for a data directory made before
// read-only tokens existed.
func readOnlyToken(dir string) (string, error) {
	path := filepath.Join(dir, fileAPIRead)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b = []byte(randomHex(32) + "\n")
		err = writeFile(path, b, 0o600)
	}
	if err != nil {
		return "", fmt.Errorf("member: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("member: %s is empty", path)
	}
	return tok, nil
}

// APIToken returns the local API's admin token (api.token) of the member
// in dir or, with readOnly, its read-only token (api.readonly): the one to
// give a dashboard viewer or a metrics scraper, good for GET routes only.
func APIToken(dir string, readOnly bool) (string, error) {
	name := fileAPIToken
	if readOnly {
		name = fileAPIRead
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) && readOnly {
		if _, serr := os.Stat(filepath.Join(dir, fileAPIToken)); serr == nil {
			return "", fmt.Errorf("member: %s has no %s yet: it predates read-only tokens; start `phalanx up --data %s` once to create it", dir, fileAPIRead, dir)
		}
	}
	if err != nil {
		return "", fmt.Errorf("member: %w (is %s a member's data directory?)", err, dir)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("member: %s in %s is empty", name, dir)
	}
	return tok, nil
}

// Invite issues a one-line invitation to the alliance of the member in
// dir: signed by it, single-use, valid for ttl.
func Invite(dir string, role ledger.Role, guarantor ledger.MemberID, ttl time.Duration, at time.Time) (string, error) {
	if role == "" {
		role = ledger.RoleMember
	}
	if role == ledger.RoleProtected && guarantor == "" {
		return "", errors.New("member: a protected party needs a guarantor (--guarantor MEMBER)")
	}
	cfg, err := loadConfig(dir)
	if err != nil {
		return "", err
	}
	id, err := ledger.LoadIdentity(filepath.Join(dir, fileIdentity))
	if err != nil {
		return "", fmt.Errorf("member: %w", err)
	}
	genesis, err := loadGenesis(dir)
	if err != nil {
		return "", err
	}
	ch, err := ledger.DecodeBody[charter.Charter](genesis)
	if err != nil {
		return "", fmt.Errorf("member: %s: %w", fileGenesis, err)
	}
	hub := cfg.hub()
	if hub == "" {
		return "", fmt.Errorf("member: %s names no NATS server to invite to", fileConfig)
	}
	tok, err := charter.NewInvitation(id, cfg.Alliance, ch.Name, charterHash(genesis), hub, role, guarantor, ttl, at)
	if err != nil {
		return "", fmt.Errorf("member: invitation: %w", err)
	}
	return tok, nil
}

// charterHash is what an invitation pins: the genesis envelope's ID, the
// hash of the signed charter's bytes.
func charterHash(genesis ledger.Envelope) string { return genesis.ID() }

// Join creates a member in dir from an invitation: its identity, a config
// pointing at the hub, the genesis fetched from the ledger and checked
// against the invitation, and its admission published to the ledger.
func Join(token, dir, name string, territory []netip.Prefix, at time.Time) (Info, error) {
	inv, err := charter.ParseInvitation(token)
	if err != nil {
		return Info{}, fmt.Errorf("member: invitation: %w (ask a member for a new one with `phalanx alliance invite`)", err)
	}
	if name == "" {
		if name, err = os.Hostname(); err != nil || name == "" {
			name = "member"
		}
	}
	abs, err := prepareDir(dir)
	if err != nil {
		return Info{}, err
	}
	id, err := ledger.NewIdentity()
	if err != nil {
		return Info{}, fmt.Errorf("member: identity: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), joinTimeout)
	defer cancel()
	nc := natsbus.Config{URLs: []string{"nats://" + inv.Hub}}
	bus, err := natsbus.Open(ctx, nc, inv.Alliance, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return Info{}, fmt.Errorf("member: connect to the hub %s: %w (is the founder running `phalanx up`?)", inv.Hub, err)
	}
	defer bus.Close()
	genesis, err := fetchGenesis(ctx, bus)
	if err != nil {
		return Info{}, fmt.Errorf("member: fetch the charter from %s: %w (is the founder running `phalanx up`?)", inv.Hub, err)
	}
	if genesis.ID() != inv.Alliance || charterHash(genesis) != inv.CharterHash {
		return Info{}, fmt.Errorf("member: the hub %s serves another charter than the invitation names: refusing to join", inv.Hub)
	}
	if err := verifyGenesis(genesis); err != nil {
		return Info{}, err
	}
	var chain ledger.Chain
	adm := ledger.Admission{
		Member:    id.ID,
		Name:      name,
		PublicKey: id.Public,
		Territory: territory,
	}
	fillAdmission(&adm, inv)
	env, err := ledger.Seal(id, &chain, inv.Alliance, ledger.KindAdmission, adm, at)
	if err != nil {
		return Info{}, fmt.Errorf("member: seal the admission: %w", err)
	}
	cfg := config{
		Name:      name,
		Alliance:  inv.Alliance,
		NATS:      nc,
		API:       DefaultAPIListen,
		Territory: prefixStrings(territory),
	}
	// The member is written before the admission is published: were the
	// publish to fail, `join` can be retried with a new directory, and an
	// admission never exists in the ledger without its identity on disk.
	if err := writeMember(abs, id, genesis, chain, cfg); err != nil {
		return Info{}, err
	}
	if _, _, err := bus.Publish(ctx, env.ID(), env.Encode()); err != nil {
		return Info{}, fmt.Errorf("member: publish the admission: %w", err)
	}
	return Info{Dir: abs, ID: id.ID, Alliance: inv.Alliance, Name: name, Hub: inv.Hub}, nil
}

var errStop = errors.New("stop")

// fetchGenesis reads the ledger's first envelope: the founding charter.
func fetchGenesis(ctx context.Context, bus *natsbus.Bus) (ledger.Envelope, error) {
	var env ledger.Envelope
	var derr error
	err := bus.Consume(ctx, 1, func(m natsbus.Message) error {
		env, derr = ledger.Decode(m.Data)
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return env, err
	}
	if derr != nil {
		return env, derr
	}
	if env.Kind != ledger.KindCharter {
		return env, fmt.Errorf("the ledger starts with a %s, not a charter", env.Kind)
	}
	return env, nil
}

// verifyGenesis checks that the charter founds an alliance and is signed
// by the founder it names.
func verifyGenesis(genesis ledger.Envelope) error {
	if _, err := charter.VerifyGenesis(genesis); err != nil {
		return fmt.Errorf("member: the hub's charter does not verify: %w; refusing to join", err)
	}
	return nil
}

// fillAdmission copies the invitation's grant into the admission: the
// fold admits only when the grant's nonce, role and guarantor are the
// admission's own.
func fillAdmission(adm *ledger.Admission, inv charter.Invitation) {
	g := inv.Grant()
	adm.Role, adm.Guarantor, adm.Nonce = g.Role, g.Guarantor, g.Nonce
	adm.Grant = charter.EncodeGrant(g)
}
