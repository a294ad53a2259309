package open_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"amber/internal/testenv"
	"amber/snapshot/objstore/objtest"
	"amber/snapshot/objstore/open"
)

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, url string }{
		{"plain path", filepath.Join(dir, "plain")},
		{"file url", "file://" + filepath.Join(dir, "url")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := open.Open(t.Context(), tc.url, open.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if !strings.HasPrefix(b.Name(), "file://") {
				t.Errorf("Name = %q", b.Name())
			}
			objtest.AcceptanceTest(t, b)
		})
	}
}

func TestOpenBadURL(t *testing.T) {
	for _, url := range []string{
		"", "ftp://x/y", "s3:///prefix", "minio://host:9000", "minio://host:9000/",
		"s3://b?path_style=maybe", "file://otherhost/dir",
	} {
		if _, err := open.Open(t.Context(), url, open.Options{}); !errors.Is(err, open.ErrBadURL) {
			t.Errorf("Open(%q): err = %v, want ErrBadURL", url, err)
		}
	}
}

// TestOpenMinio runs the acceptance test through s3:// and minio:// URLs
// against a real MinIO, with and without a prefix, and checks that a
// prefix keeps objects apart.
func TestOpenMinio(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO")
	}
	m := testenv.StartMinio(t, testenv.MinioOptions{})
	m.CreateBucket("amber")
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	env := map[string]string{"MINIO_ACCESS_KEY": m.AccessKey, "MINIO_SECRET_KEY": m.SecretKey}
	opts := open.Options{Getenv: func(k string) string { return env[k] }, PartSize: 5 << 20}

	s3URL := "s3://amber%s?endpoint=" + m.URL() + "&region=" + m.Region + "&path_style=true"
	minioURL := "minio://" + m.Endpoint + "/amber%s?secure=false&region=" + m.Region
	for _, tc := range []struct{ name, url string }{
		{"s3", strings.Replace(s3URL, "%s", "", 1)},
		{"s3 prefix", strings.Replace(s3URL, "%s", "/s3/prefix", 1)},
		{"minio", strings.Replace(minioURL, "%s", "", 1)},
		{"minio prefix", strings.Replace(minioURL, "%s", "/minio/prefix/", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := open.Open(t.Context(), tc.url, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if strings.Contains(b.Name(), m.SecretKey) {
				t.Errorf("Name %q shows the secret", b.Name())
			}
			objtest.AcceptanceTest(t, b)
		})
	}

	// An object under a prefix is seen at its full name without it.
	pb, err := open.Open(t.Context(), strings.Replace(minioURL, "%s", "/p", 1), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Upload(t.Context(), "x", strings.NewReader("1"), 1); err != nil {
		t.Fatal(err)
	}
	root, err := open.Open(t.Context(), strings.Replace(s3URL, "%s", "", 1), opts)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := root.Exists(t.Context(), "p/x"); !ok || err != nil {
		t.Errorf("Exists(p/x) at the root = %v, %v; want true", ok, err)
	}
	if ok, err := root.Exists(t.Context(), "x"); ok || err != nil {
		t.Errorf("Exists(x) at the root = %v, %v; want false", ok, err)
	}
}
