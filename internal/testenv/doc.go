// Package testenv runs the real components Amber's integration tests talk
// to — btcd and MinIO — and gives tests a deterministic Bitcoin wallet to
// make transactions with.
//
// # Components
//
// StartBtcd and StartMinio start one daemon each for the calling test:
//
//   - The pinned binary is installed on first use into .tools/ at the
//     repository root (EnsureTool; `make tools` does it ahead of time).
//   - It listens on free 127.0.0.1 ports only, keeps all its files in the
//     test's temporary directory, and reaches nothing beyond loopback:
//     btcd has no peers and no DNS seeds, MinIO has update checks and
//     call-home turned off.
//   - It runs in its own process group with Pdeathsig set, so it dies with
//     the test binary even when that is killed; t.Cleanup stops it.
//   - When the test fails, the end of the daemon's log is shown with t.Log.
//   - Stop, Kill (SIGKILL, as a crash) and Restart (same data, ports and
//     credentials) let tests exercise outages. btcd wipes a regtest chain
//     when it starts, so the harness saves the best chain before stopping
//     a regtest btcd and submits it again on Restart.
//
// Btcd runs regtest by default, with --txindex, and offers an rpcclient in
// HTTP POST mode (Btcd.Client), a raw JSON-RPC call (Btcd.Call) for what
// rpcclient lacks, and the URL in DAEMON_URL form (Btcd.URL). Mainnet mode
// (BtcdOptions.Network) serves tests that load real blocks.
//
// StartBitcoind runs Bitcoin Core the same way (found at $BITCOIND, then
// ../shared/bitcoin-core/bin/bitcoind from the repository root, then
// PATH; without one the test skips with one loud line, or fails under
// CI=true): regtest by default or mainnet for btcd's real early blocks
// (LoadBlocks), -rest, ZMQ hashblock and sequence on free ports, no
// -txindex unless asked, user/password or cookie authentication, and
// -maxtipage=FarTipAge (OldTip) for chains with old timestamps.
//
// Minio offers the endpoint and root credentials for an S3 client, and
// signed requests of its own (Minio.Do, Minio.CreateBucket) for tests that
// need no SDK.
//
// StartHAProxy runs the haproxy binary on PATH (Debian's, which `make
// tools` installs; tests skip loudly without it, and fail under CI=true)
// in front of test servers: TCP mode, PROXY v2 to the servers, /readyz
// health checks, least connections, from a configuration generated into
// the test's temporary directory (HAProxyConfig). Besides the TCP
// frontend it can run others (HAProxyFrontend), e.g. one to the nodes'
// WebSocket ports. HAProxy.Servers and BackendServers read each server's
// state and session counts from its admin socket.
//
// FaultProxy sits between Amber and a daemon's JSON-RPC server and injects
// faults on demand: it stops and starts on the same port, delays answers,
// or fails requests with HTTP errors, counting what it injected.
//
// # Wallet and Regtest
//
// Wallet holds keys derived from a seed and makes scripts of every
// ScriptKind — P2PK, P2PKH, P2WPKH, P2SH-P2WPKH, 2-of-3 P2WSH multisig and
// P2TR key path — plus OP_RETURN outputs (NullDataOutput). It tracks the
// outputs paying to its scripts from the blocks and transactions it is
// given, including reorganisations (ConnectBlock, DisconnectBlock, AddTx),
// and builds transactions spending any mix of its kinds to any outputs,
// with coin selection, change and a fee rate (BuildTx). Every signature is
// checked by btcd's script engine before BuildTx returns. The wallet knows
// nothing of any node.
//
// Regtest joins the two: a regtest btcd whose block rewards pay to a
// wallet script, and helpers that keep the wallet on btcd's best chain
// (Mine, Sync), broadcast (Broadcast, Send, Pay) and reorganise the chain
// (Invalidate, Reorg). A chain generator builds on these: any number of
// blocks and transactions, Scripts reused to make busy histories, and
// reorganisations that Sync follows.
//
// # Example
//
//	func TestSomething(t *testing.T) {
//		r := testenv.StartRegtest(t, testenv.RegtestOptions{})
//		r.Mine(101) // the first coinbase output is now mature
//
//		w := r.Wallet
//		busy := w.NewScript(testenv.P2WPKH)
//		tx := r.Pay(
//			busy.TxOut(1e8),
//			w.NewScript(testenv.P2TR).TxOut(2e8),
//			testenv.NullDataOutput([]byte("hello")),
//		)
//		r.Mine(1)
//		if r.Btcd.Confirmations(tx.TxHash()) != 1 {
//			t.Fatal("not confirmed")
//		}
//
//		// Point the code under test at the node and a bucket.
//		m := testenv.StartMinio(t, testenv.MinioOptions{})
//		m.CreateBucket("snapshots")
//		runServer(t, r.Btcd.URL(), m.URL(), m.AccessKey, m.SecretKey)
//	}
//
// Methods without an error result fail the test when something goes wrong
// and, like t.Fatal, must be called from the test's goroutine. By
// convention a test that starts a daemon skips itself under -short (make
// test-short); the Wallet needs no daemon.
package testenv
