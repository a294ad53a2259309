// Package reliability is the suite that proves Amber keeps working and
// loses nothing when things go wrong. It has tests only.
//
// It drives the real amber binary, built once per run, against real btcd
// and MinIO processes (internal/testenv):
//
//   - Crashes: `amber build` and `amber serve` are killed with SIGKILL at
//     random moments of an initial sync, tip following, a reorg, a snapshot
//     publish and a snapshot restore. After each restart the index must
//     equal, row for row (index.Digest), an uninterrupted run's, and the
//     server must give the same answers to a fixed set of Electrum
//     requests over TCP.
//   - Faults: the daemon stopped, restarted, slow and answering with errors
//     (testenv.FaultProxy in front of btcd); the bucket going away in the
//     middle of an upload and of a download; the DB directory running out
//     of space. Each must be logged clearly and end without corruption.
//   - A fleet (TestFleet): HAProxy (TCP mode, PROXY v2, /readyz checks)
//     in front of three `amber serve` nodes fed by an `amber build`
//     publishing to MinIO. Wallets connect through HAProxy, over TCP or
//     WebSocket, from several loopback addresses while mempool
//     transactions and blocks arrive in lock-step rounds; a node joins on
//     an empty disk and must get no wallet before /readyz is green, and
//     the oldest node gets SIGTERM and must drain. Every header and
//     history a wallet gets is checked against the chain, every wallet
//     must be notified of every block, and `amber rpc sessions` must list
//     each node's wallets by their own addresses and transports.
//   - A rolling schema upgrade (TestRollingSchemaUpgrade): the steps of
//     infra/RUNBOOK.md with this amber and one built with -tags
//     amber_nextschema (schema one higher) on one bucket, blocks arriving
//     throughout: each builder's retention and amber snapshot gc leave the
//     other schema's snapshots whole, nodes of either release on empty or
//     kept disks serve the same answers at the daemon's tip.
//
// `go test ./reliability/` (and so `make test`) runs a short version.
// `make soak` sets SOAK_DURATION (default 20m): the crash and fault
// rounds, and the fleet's join and leave cycles, repeat until their share
// of it is used, every fuzz target of the
// module runs for a bounded time, and a summary table (kill points
// survived, faults injected, fuzz execs per target, inputs tried, data
// mismatches) is written to SOAK.md.
package reliability
