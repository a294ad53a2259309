package snapshot

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzKey signs the seed manifests of FuzzParseManifest; fixed so that the
// corpus in testdata stays valid.
var fuzzKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

// FuzzParseManifest feeds arbitrary bytes to the manifest parser, which
// reads what a bucket (anyone with write access to it) hands a server.
// Nothing may panic; an accepted manifest must be valid, keep every file
// inside the restore directory, re-encode to a manifest that parses the
// same, and pass the signature check only with the signed content.
func FuzzParseManifest(f *testing.F) {
	signed := validManifest()
	signed.Files = append(signed.Files, File{Name: "MANIFEST-000001", Size: 0, SHA256: strings.Repeat("1b", 32), Key: ObjectPrefix + strings.Repeat("1b", 32)})
	if err := signed.Sign(fuzzKey); err != nil {
		f.Fatal(err)
	}
	want, err := signed.Canonical()
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range []*Manifest{validManifest(), signed} {
		b, err := m.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`{"format": 1}`, `{}`, `[]`, `null`, `{"format": 1e400}`, `{"format":1}{"format":1}`} {
		f.Add([]byte(s))
	}
	trusted := []ed25519.PublicKey{fuzzKey.Public().(ed25519.PublicKey)}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("error %v does not wrap ErrInvalidManifest", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted an invalid manifest: %v", err)
		}
		if k := m.Key(); !strings.HasPrefix(k, ManifestPrefix) || strings.Contains(k, "..") || strings.Contains(k[len(ManifestPrefix):], "/") {
			t.Fatalf("manifest key %q escapes %s", k, ManifestPrefix)
		}
		dir := filepath.Join("restore", "dir")
		for _, f := range m.Files {
			if p := filepath.Join(dir, f.Name); filepath.Dir(p) != dir {
				t.Fatalf("file %q lands at %s, outside the restore directory", f.Name, p)
			}
		}
		again, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(again)
		if err != nil {
			t.Fatalf("re-encoded manifest refused: %v\n%s", err, again)
		}
		c1, _ := m.Canonical()
		c2, _ := m2.Canonical()
		if !bytes.Equal(c1, c2) {
			t.Fatalf("round trip changed the manifest:\n%s\n%s", c1, c2)
		}
		if m.VerifySignature(trusted) == nil && !bytes.Equal(c1, want) {
			t.Fatalf("signature accepted for content that was not signed:\n%s", c1)
		}
	})
}
