package snapshot

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"amber/snapshot/objstore"
)

// FormatVersion is the version of the Manifest layout. A manifest with any
// other format is refused: new fields mean a new format.
const FormatVersion = 1

// Object keys in the bucket.
const (
	// LatestKey is the pointer object naming the newest complete manifest.
	LatestKey = "LATEST"
	// ManifestPrefix is where manifests live.
	ManifestPrefix = "snapshots/"
	// ObjectPrefix is where file contents live, by sha256.
	ObjectPrefix = "sst/"
	// GCPendingKey records when Retain first saw each unreferenced
	// object, so the grace period spans processes (amber build --once,
	// amber snapshot gc).
	GCPendingKey = "gc/pending.json"
)

// Errors callers branch on. Errors from Restore wrap them.
var (
	// ErrInvalidManifest means a manifest does not parse or is incomplete.
	ErrInvalidManifest = errors.New("snapshot: invalid manifest")
	// ErrUntrusted means a manifest is unsigned or not signed by a trusted key.
	ErrUntrusted = errors.New("snapshot: manifest not signed by a trusted key")
	// ErrMismatch means a manifest is for another network, genesis, schema
	// or a newer Pebble format than this build reads.
	ErrMismatch = errors.New("snapshot: manifest does not match this node")
	// ErrCorrupt means a downloaded or stored object has the wrong size or hash.
	ErrCorrupt = errors.New("snapshot: corrupt object")
	// ErrNoSnapshot means no manifest in the bucket could be used.
	ErrNoSnapshot = errors.New("snapshot: no valid manifest")
	// ErrUnavailable means the bucket or the local disk failed during a
	// restore, not the snapshot: retrying later can succeed.
	ErrUnavailable = errors.New("snapshot: bucket or disk unavailable")
)

// File is one file of a checkpoint.
type File struct {
	// Name is the file's base name in the checkpoint directory.
	Name string `json:"name"`
	// Size is its length in bytes.
	Size int64 `json:"size"`
	// SHA256 is the lowercase hex sha256 of its content.
	SHA256 string `json:"sha256"`
	// Key is the object holding the content: "sst/<sha256>".
	Key string `json:"key"`
}

// Signature is an ed25519 signature over a manifest's canonical bytes
// (Manifest.Canonical).
type Signature struct {
	// PublicKey is the signer's key, hex.
	PublicKey string `json:"public_key"`
	// Sig is the signature, hex.
	Sig string `json:"sig"`
}

// Manifest describes one snapshot. It is stored as JSON under
// snapshots/<height>-<blockhash>.json.
type Manifest struct {
	// Format is FormatVersion.
	Format int `json:"format"`
	// Schema is the index schema version (index.SchemaVersion).
	Schema uint32 `json:"schema"`
	// PebbleFormat is the Pebble format major version (store.FormatVersion).
	PebbleFormat uint64 `json:"pebble_format"`
	// Network is the network name (chain.Network.Name).
	Network string `json:"network"`
	// Genesis is the hash of block 0, in the usual reversed hex.
	Genesis string `json:"genesis"`
	// Height is the height of the indexed tip.
	Height int64 `json:"height"`
	// Block is the hash of the tip.
	Block string `json:"block"`
	// Files lists every file of the checkpoint, sorted by name.
	Files []File `json:"files"`
	// Created is when the snapshot was published (UTC).
	Created time.Time `json:"created"`
	// Builder is the Amber version that published it.
	Builder string `json:"builder"`
	// UTXOCount is the number of unspent outputs, if the caller knows it.
	UTXOCount *uint64 `json:"utxo_count,omitempty"`
	// UTXOTotal is the value of all unspent outputs in satoshis, if known.
	UTXOTotal *uint64 `json:"utxo_total,omitempty"`
	// Signature is optional; see Sign and VerifySignature.
	Signature *Signature `json:"signature,omitempty"`
}

// ManifestKey is the object key of the manifest for a tip.
func ManifestKey(height int64, block string) string {
	return fmt.Sprintf("%s%010d-%s.json", ManifestPrefix, height, block)
}

// Key is the object key of the manifest.
func (m *Manifest) Key() string { return ManifestKey(m.Height, m.Block) }

// Size is the total size of the manifest's files.
func (m *Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// keyHeight parses the height out of a manifest key.
func keyHeight(key string) (int64, bool) {
	rest, ok := strings.CutPrefix(key, ManifestPrefix)
	if !ok || !strings.HasSuffix(rest, ".json") {
		return 0, false
	}
	h, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(h, 10, 64)
	return n, err == nil && n >= 0
}

// Canonical returns the bytes a signature covers: the manifest's JSON
// encoding without its signature.
func (m *Manifest) Canonical() ([]byte, error) {
	c := *m
	c.Signature = nil
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode manifest %s: %w", m.Key(), err)
	}
	return b, nil
}

// Sign signs the manifest with key, replacing any signature.
func (m *Manifest) Sign(key ed25519.PrivateKey) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("sign manifest %s: bad ed25519 key length %d", m.Key(), len(key))
	}
	b, err := m.Canonical()
	if err != nil {
		return err
	}
	pub := key.Public().(ed25519.PublicKey)
	m.Signature = &Signature{PublicKey: hex.EncodeToString(pub), Sig: hex.EncodeToString(ed25519.Sign(key, b))}
	return nil
}

// VerifySignature checks that the manifest is signed by one of trusted; it
// fails with ErrUntrusted otherwise. With no trusted keys every manifest,
// signed or not, is accepted.
func (m *Manifest) VerifySignature(trusted []ed25519.PublicKey) error {
	if len(trusted) == 0 {
		return nil
	}
	if m.Signature == nil {
		return fmt.Errorf("%w: %s is unsigned", ErrUntrusted, m.Key())
	}
	sig, err := hex.DecodeString(m.Signature.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: %s has a malformed signature", ErrUntrusted, m.Key())
	}
	b, err := m.Canonical()
	if err != nil {
		return err
	}
	for _, k := range trusted {
		if len(k) == ed25519.PublicKeySize && ed25519.Verify(k, b, sig) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s signed by %s", ErrUntrusted, m.Key(), m.Signature.PublicKey)
}

// Marshal encodes the manifest as indented JSON.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest %s: %w", m.Key(), err)
	}
	return append(b, '\n'), nil
}

// ParseManifest decodes and validates a manifest. An unknown format, an
// unknown field, a missing field or an inconsistent file entry is an error
// wrapping ErrInvalidManifest. It does not check the signature.
func ParseManifest(b []byte) (*Manifest, error) {
	var head struct {
		Format *int `json:"format"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	if head.Format == nil {
		return nil, fmt.Errorf("%w: no format", ErrInvalidManifest)
	}
	if *head.Format != FormatVersion {
		return nil, fmt.Errorf("%w: format %d, this amber reads %d", ErrInvalidManifest, *head.Format, FormatVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidManifest, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrInvalidManifest)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks that every required field is present and consistent.
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidManifest, fmt.Sprintf(format, args...))
	}
	switch {
	case m.Format != FormatVersion:
		return bad("format %d, this amber reads %d", m.Format, FormatVersion)
	case m.Schema == 0:
		return bad("no schema")
	case m.PebbleFormat == 0:
		return bad("no pebble_format")
	case m.Network == "":
		return bad("no network")
	case !isHash(m.Genesis):
		return bad("genesis %q is not a hash", m.Genesis)
	case m.Height < 0:
		return bad("height %d", m.Height)
	case !isHash(m.Block):
		return bad("block %q is not a hash", m.Block)
	case len(m.Files) == 0:
		return bad("no files")
	case m.Created.IsZero():
		return bad("no created time")
	case m.Builder == "":
		return bad("no builder")
	}
	seen := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		switch {
		case f.Name == "" || f.Name == "." || f.Name == ".." || strings.ContainsAny(f.Name, `/\`) ||
			strings.HasSuffix(f.Name, ".part"):
			return bad("bad file name %q", f.Name)
		case seen[f.Name]:
			return bad("file %s listed twice", f.Name)
		case f.Size < 0:
			return bad("file %s has size %d", f.Name, f.Size)
		case !isHash(f.SHA256):
			return bad("file %s has sha256 %q", f.Name, f.SHA256)
		case f.Key != ObjectPrefix+f.SHA256:
			return bad("file %s has key %q, want %s", f.Name, f.Key, ObjectPrefix+f.SHA256)
		}
		seen[f.Name] = true
	}
	return nil
}

// isHash reports whether s is 64 lowercase hex digits.
func isHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// SchemaBucket is the part of b that holds the snapshots of an index
// schema: b itself for schema 1, and the objects under "schema-N/" for
// any other. Each schema has its own LATEST, manifests and objects, so a
// builder of a new schema publishes beside the old one while nodes of the
// old schema, which only ever read the root, never see its manifests, and
// retention in one schema never deletes another's objects.
func SchemaBucket(b objstore.Bucket, schema uint32) objstore.Bucket {
	if schema <= 1 {
		return b
	}
	return objstore.WithPrefix(b, SchemaPrefix(schema))
}

// SchemaPrefix is the bucket prefix of an index schema's snapshots: empty
// for schema 1, "schema-N/" otherwise.
func SchemaPrefix(schema uint32) string {
	if schema <= 1 {
		return ""
	}
	return fmt.Sprintf("schema-%d/", schema)
}
