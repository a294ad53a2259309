// Package daemon is the client the builder and the server use to talk to
// the Bitcoin daemon, btcd or Bitcoin Core, over JSON-RPC.
//
// A Client holds one or more daemon URLs (DAEMON_URL, comma-separated) and
// talks to one of them at a time. Every method takes a context and
// returns as soon as it ends. Requests that fail in transport (connection
// refused, timeout, an HTTP status without a JSON-RPC reply such as 401 or
// 503) are retried after 0.25 s, then 0.5 s, 1 s, and so on doubling up to
// a maximum (4 s by default); a request that fails once more at the
// maximum delay makes the client switch to the next URL, round-robin, and
// the backoff starts again there. With one URL the client keeps retrying
// at the maximum delay until the context ends. An error the daemon
// answers with is returned at once as an *RPCError and never retried,
// except -28 ("warming up", Bitcoin Core's state while it loads its
// indexes), which is waited out with the same backoff and one log line.
//
// The client codes to the subset of the JSON-RPC interface that btcd and
// Bitcoin Core share, and detects the rest once per daemon:
//
//   - estimatesmartfee (Core) falls back to estimatefee (btcd) when the
//     method is missing;
//   - getnetworkinfo's relayfee (Core) falls back to getinfo's (btcd), and
//     getmempoolinfo's fee fields, which btcd lacks, are filled from it;
//   - blocks come from Core's REST interface (/rest/block/<hash>.bin, when
//     started with -rest) and otherwise from getblock in hex;
//   - submitpackage, which btcd lacks, reports ErrUnsupported.
//
// Every request carries a "jsonrpc" member (btcd ignores requests without
// one) and integer verbosity arguments (btcd rejects booleans). Credentials
// come from the URL or, when the URL has no password, from a bitcoind
// cookie file that is read again after every 401.
//
// At most Options.Concurrency HTTP requests (10 by default) are in flight
// at once; a JSON-RPC batch counts as one.
//
// NOTE: the client speaks HTTP itself (net/http, one small request
// encoder) instead of going through btcd's rpcclient. In HTTP POST mode
// rpcclient sends one request at a time per client, takes no per-request
// context, hides HTTP status codes in error strings, and retries a refused
// connection ten times over about 22 s before it reports anything, so
// neither cancellation nor failover could be prompt on top of it.
package daemon
