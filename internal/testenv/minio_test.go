package testenv

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSignV4 checks the signer against the worked examples of the AWS S3
// documentation ("Signature Calculations for the Authorization Header:
// Transferring Payload in a Single Chunk").
func TestSignV4(t *testing.T) {
	const (
		accessKey = "AKIAIOSFODNN7EXAMPLE"
		secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	)
	when := time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, url, signature string
	}{
		{"get bucket lifecycle", "https://examplebucket.s3.amazonaws.com/?lifecycle",
			"fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
		{"list objects", "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J",
			"34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			signV4(req, nil, accessKey, secretKey, "us-east-1", when)
			want := "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
				"SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + tc.signature
			if got := req.Header.Get("Authorization"); got != want {
				t.Fatalf("Authorization:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestMinio creates a bucket, puts, lists and gets an object with signed
// requests, checks that a bad signature is refused, and that Kill leaves
// no process behind.
func TestMinio(t *testing.T) {
	skipShort(t)
	m := StartMinio(t, MinioOptions{})
	ctx := context.Background()

	m.CreateBucket("amber-test")
	key := "/amber-test/snapshots/0-hash with space+plus.json"
	body := []byte(`{"height":0}`)
	status, reply, err := m.Do(ctx, http.MethodPut, key, body)
	if err != nil || status != http.StatusOK {
		t.Fatalf("put: HTTP %d, %v: %s", status, err, reply)
	}
	status, reply, err = m.Do(ctx, http.MethodGet, key, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("get: HTTP %d, %v: %s", status, err, reply)
	}
	if !bytes.Equal(reply, body) {
		t.Fatalf("get returned %q, want %q", reply, body)
	}
	status, reply, err = m.Do(ctx, http.MethodGet, "/amber-test?list-type=2&prefix=snapshots/", nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("list: HTTP %d, %v: %s", status, err, reply)
	}
	if !strings.Contains(string(reply), "<Key>snapshots/0-hash with space+plus.json</Key>") {
		t.Fatalf("listing lacks the object: %s", reply)
	}

	// A request signed with the wrong secret is refused.
	bad := *m
	bad.SecretKey = "wrong-" + m.SecretKey
	if status, _, err := bad.Do(ctx, http.MethodGet, key, nil); err != nil || status != http.StatusForbidden {
		t.Fatalf("wrongly signed get: HTTP %d, %v; want 403", status, err)
	}

	// The console listens on its own loopback port.
	resp, err := http.Get("http://" + m.ConsoleAddr + "/")
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	resp.Body.Close()

	pid := m.Pid()
	m.Kill()
	if m.Running() || !processGone(pid) {
		t.Fatalf("minio process %d still exists after Kill", pid)
	}
	m.Restart()
	status, reply, err = m.Do(ctx, http.MethodGet, key, nil)
	if err != nil || status != http.StatusOK || !bytes.Equal(reply, body) {
		t.Fatalf("get after a restart: HTTP %d, %v: %s", status, err, reply)
	}
}
