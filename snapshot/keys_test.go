package snapshot

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSigningKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	pub, err := WriteSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteSigningKey(path); err == nil {
		t.Error("an existing key file was overwritten")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", st.Mode().Perm())
	}
	priv, err := LoadSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(priv.Public()) {
		t.Error("loaded key does not match the written one")
	}
	os.WriteFile(path, []byte("not hex"), 0o600)
	if _, err := LoadSigningKey(path); err == nil {
		t.Error("garbage accepted as a key")
	}
}
