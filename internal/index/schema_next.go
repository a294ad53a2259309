//go:build amber_nextschema

package index

// SchemaVersion one ahead of schema.go's, with the same key layout: the
// build tag exists so the rolling-upgrade test (reliability) can build an
// amber of the next schema. Never ship a binary built with it.
const SchemaVersion = 4
