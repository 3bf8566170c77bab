// Package natstest starts real NATS servers for integration tests: an
// embedded hub configuration and an in-process JetStream cluster on loopback.
package natstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/phalanx-defence/phalanx/natsbus"
)

// Hub is the configuration of an embedded hub with its store in a fresh
// temporary directory and a random loopback client port. After natsbus.Open,
// ClientURL gives the port; Listen(bus.ClientURL()) reopens on the same one.
func Hub(t testing.TB) natsbus.Config {
	t.Helper()
	return natsbus.Config{Embedded: true, Listen: "127.0.0.1:-1", StoreDir: t.TempDir()}
}

// Listen turns a client URL (nats://host:port) into a Config.Listen value,
// to restart a hub on the port it had.
func Listen(t testing.TB, clientURL string) string {
	t.Helper()
	u, err := url.Parse(clientURL)
	if err != nil {
		t.Fatalf("natstest: client URL %q: %v", clientURL, err)
	}
	return u.Host
}

// Alliance is a fresh random alliance id (64 lowercase hex digits).
func Alliance(t testing.TB) string {
	t.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// Cluster starts an n-node JetStream cluster in this process, routes and
// clients on loopback, and waits until it has a meta leader that every node
// follows. urls are the nodes' client URLs; stop(i) shuts node i down for
// good. Every node is shut down when the test ends.
func Cluster(t testing.TB, n int) (urls []string, stop func(i int)) {
	t.Helper()
	// Routes name each other's ports up front, so those are reserved first;
	// client ports stay random (-1).
	routePorts := make([]int, n)
	for i := range routePorts {
		routePorts[i] = freePort(t)
	}
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	name := "c" + Alliance(t)[:8]
	servers := make([]*server.Server, n)
	for i := range servers {
		opts := &server.Options{
			ServerName: fmt.Sprintf("%s-n%d", name, i),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			Cluster: server.ClusterOpts{
				Name: name,
				Host: "127.0.0.1",
				Port: routePorts[i],
			},
			Routes: routes,
		}
		ns, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("natstest: node %d: %v", i, err)
		}
		ns.Start()
		servers[i] = ns
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	}
	for i, ns := range servers {
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("natstest: node %d not ready within 10 s", i)
		}
		urls = append(urls, ns.ClientURL())
	}
	waitMetaLeader(t, servers)
	stop = func(i int) {
		servers[i].Shutdown()
		servers[i].WaitForShutdown()
	}
	return urls, stop
}

// waitMetaLeader polls the nodes' own view of the JetStream meta group:
// the server offers no notification for it.
func waitMetaLeader(t testing.TB, servers []*server.Server) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		leaders, current := 0, 0
		for _, ns := range servers {
			// Only the leader reports the peers it knows.
			if ns.JetStreamIsLeader() && len(ns.JetStreamClusterPeers()) == len(servers) {
				leaders++
			}
			if ns.JetStreamIsCurrent() {
				current++
			}
		}
		if leaders == 1 && current == len(servers) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: no JetStream meta leader followed by all %d nodes within 20 s (leaders %d, current %d)", len(servers), leaders, current)
		}
		<-tick.C
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: reserve a port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
