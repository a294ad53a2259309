//go:build !amber_nextschema

package index

// SchemaVersion is the version of the key layout in keys.go. It is stored
// in the metadata row and in every snapshot manifest; a DB or snapshot with
// another version is refused. Bump it on any change to a key or value
// format, here and in schema_next.go.
//
// Version 2: spend rows keyed by funding tx_num (spendKey), packed undo
// records (undoRecord). Version 3: txids in rows of 16 (txidKey), 6-byte
// txid prefixes in the lookup rows (txLookupKey, outLookupKey).
const SchemaVersion = 3
