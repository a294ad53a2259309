package snapshot

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var time0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func validManifest() *Manifest {
	sum := strings.Repeat("0a", 32)
	return &Manifest{Format: FormatVersion, Schema: 1, PebbleFormat: 1, Network: netName, Genesis: genesis,
		Height: 7, Block: blockHash(7), Created: time0, Builder: "test",
		Files: []File{{Name: "000001.sst", Size: 3, SHA256: sum, Key: ObjectPrefix + sum}}}
}

func TestParseManifest(t *testing.T) {
	good, err := validManifest().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(good)
	if err != nil {
		t.Fatal(err)
	}
	if m.Key() != "snapshots/0000000007-"+blockHash(7)+".json" {
		t.Errorf("key %s", m.Key())
	}
	tests := []struct {
		name string
		edit func(m *Manifest)
		raw  string
	}{
		{name: "unknown format", raw: `{"format": 2}`},
		{name: "no format", raw: `{"schema": 1}`},
		{name: "unknown field", raw: strings.Replace(string(good), `"schema"`, `"bogus": 1, "schema"`, 1)},
		{name: "not json", raw: `{`},
		{name: "no network", edit: func(m *Manifest) { m.Network = "" }},
		{name: "no schema", edit: func(m *Manifest) { m.Schema = 0 }},
		{name: "bad genesis", edit: func(m *Manifest) { m.Genesis = "00" }},
		{name: "bad block", edit: func(m *Manifest) { m.Block = strings.Repeat("AB", 32) }},
		{name: "no files", edit: func(m *Manifest) { m.Files = nil }},
		{name: "no created", edit: func(m *Manifest) { m.Created = time.Time{} }},
		{name: "no builder", edit: func(m *Manifest) { m.Builder = "" }},
		{name: "path in name", edit: func(m *Manifest) { m.Files[0].Name = "../x" }},
		{name: "part name", edit: func(m *Manifest) { m.Files[0].Name = "x.part" }},
		{name: "key not content address", edit: func(m *Manifest) { m.Files[0].Key = "sst/other" }},
		{name: "duplicate name", edit: func(m *Manifest) { m.Files = append(m.Files, m.Files[0]) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(tc.raw)
			if tc.edit != nil {
				m := validManifest()
				tc.edit(m)
				raw, _ = m.Marshal()
			}
			if _, err := ParseManifest(raw); !errors.Is(err, ErrInvalidManifest) {
				t.Errorf("got %v, want ErrInvalidManifest", err)
			}
		})
	}
}
