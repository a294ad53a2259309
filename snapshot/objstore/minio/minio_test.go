package minio_test

import (
	"testing"

	"amber/internal/testenv"
	"amber/snapshot/objstore/minio"
	"amber/snapshot/objstore/objtest"
)

func TestAcceptance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO")
	}
	m := testenv.StartMinio(t, testenv.MinioOptions{})
	m.CreateBucket("amber")
	b, err := minio.New(minio.Config{
		Endpoint:  m.Endpoint,
		Bucket:    "amber",
		AccessKey: m.AccessKey,
		SecretKey: m.SecretKey,
		Region:    m.Region,
	})
	if err != nil {
		t.Fatal(err)
	}
	objtest.AcceptanceTest(t, b)
}
