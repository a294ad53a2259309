package server_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	"amber/internal/chain"
	"amber/internal/config"
	"amber/internal/telemetry"
	"amber/internal/testenv"
	"amber/server"
)

// TestSpecVectorsMainnet serves real mainnet blocks 0 to 9 and checks the
// spec's §12 vectors byte for byte through the running server.
func TestSpecVectorsMainnet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs btcd")
	}
	b := testenv.StartBtcd(t, testenv.BtcdOptions{Network: "mainnet"})
	net, _ := chain.Lookup("Bitcoin", "mainnet")
	f, err := os.Open("../internal/chain/testdata/mainnet-0-9.dat")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	err = chain.ReadBlockFile(f, net, func(raw []byte) error {
		if n++; n == 1 {
			return nil // genesis is built in
		}
		if _, err := b.Call("submitblock", hex.EncodeToString(raw)); err != nil {
			return err
		}
		return nil
	})
	if err != nil || b.Height() != 9 {
		t.Fatalf("loading mainnet blocks: %v, height %d", err, b.Height())
	}
	env := map[string]string{"NET": "mainnet", "DB_DIRECTORY": t.TempDir(), "DAEMON_URL": b.URL(),
		"SERVICES": "tcp://127.0.0.1:0", "DAEMON_POLL_INTERVAL": "100ms", "PEER_DISCOVERY": "off"}
	cfg, err := config.Load(config.Serve, nil, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(cfg, telemetry.Discard(), telemetry.NewRegistry(), telemetry.NewHealth(""))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatal("server not ready")
	}
	addr := srv.Addrs()[0]

	const h0 = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c"
	const h1 = "010000006fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000982051fd1e4ba744bbbe680e1fee14677ba1a3c3540bf7b1cdb606e857233e0e61bc6649ffff001d01e36299"
	cases := []struct {
		proto, method string
		params        []any
		want          string
	}{
		// §12.3
		{"1.6", "blockchain.block.headers", []any{0, 2}, `{"count":2,"max":2016,"headers":["` + h0 + `","` + h1 + `"]}`},
		{"1.4", "blockchain.block.headers", []any{0, 2}, `{"hex":"` + h0 + h1 + `","count":2,"max":2016}`},
		// §12.2
		{"1.6", "blockchain.block.header", []any{5, 8}, `{"header":"0100000085144a84488ea88d221c8bd6c059da090e88f8a2c99690ee55dbba4e00000000e11c48fecdd9e72510ca84f023370c9a38bf91ac5cae88019bee94d24528526344c36649ffff001d1d03e477","branch":["000000004ebadb55ee9096c9a2f8880e09da59c0d68b1c228da88e48844a1485","96cbbc84783888e4cc971ae8acf86dd3c1a419370336bb3c634c97695a8c5ac9","965ac94082cebbcffe458075651e9cc33ce703ab0115c72d9e8b1a9906b2b636","89e5daa6950b895190716dd26054432b564ccdc2868188ba1da76de8e1dc7591"],"root":"e347b1c43fd9b5415bf0d92708db8284b78daf4d0e24f9c3405f45feb85e25db"}`},
		// §12.1: block 1's coinbase, a single-tx block.
		{"1.6", "blockchain.transaction.get_merkle", []any{"0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098", 1}, `{"block_height":1,"merkle":[],"pos":0}`},
		{"1.6", "blockchain.transaction.id_from_pos", []any{1, 0}, `"0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098"`},
		// §12.4: the genesis P2PK script has no history.
		{"1.6", "blockchain.scripthash.get_history", []any{"740485f380ff6379d11ef6fe7d7cdd68aea7f8bd0d953d9fdf3531fb7d531833"}, `[]`},
		{"1.6", "blockchain.scripthash.subscribe", []any{"740485f380ff6379d11ef6fe7d7cdd68aea7f8bd0d953d9fdf3531fb7d531833"}, `null`},
	}
	for _, tc := range cases {
		c := dialTCP(t, addr)
		c.call("server.version", "vectors", tc.proto)
		if got := string(c.call(tc.method, tc.params...)); got != tc.want {
			t.Errorf("%s %v at %s:\n got %s\nwant %s", tc.method, tc.params, tc.proto, got, tc.want)
		}
	}
	// §12.10: headers(0, 6, 8) carries the same root and branch as
	// header(5, 8).
	c := dialTCP(t, addr)
	c.call("server.version", "vectors", "1.6")
	var got struct {
		Root   string   `json:"root"`
		Branch []string `json:"branch"`
	}
	decode(t, c.call("blockchain.block.headers", 0, 6, 8), &got)
	if got.Root != "e347b1c43fd9b5415bf0d92708db8284b78daf4d0e24f9c3405f45feb85e25db" || len(got.Branch) != 4 || got.Branch[0] != "000000004ebadb55ee9096c9a2f8880e09da59c0d68b1c228da88e48844a1485" {
		t.Errorf("headers(0,6,8) proof %+v", got)
	}
}

func decode(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}
