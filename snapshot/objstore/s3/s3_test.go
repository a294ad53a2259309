package s3_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"amber/internal/testenv"
	"amber/snapshot/objstore/objtest"
	"amber/snapshot/objstore/s3"
)

func TestAcceptance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO")
	}
	m := testenv.StartMinio(t, testenv.MinioOptions{})
	m.CreateBucket("amber")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	b, err := s3.New(t.Context(), s3.Config{
		Bucket:      "amber",
		Endpoint:    m.URL(),
		Region:      m.Region,
		PathStyle:   true,
		PartSize:    5 << 20,
		Credentials: credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	objtest.AcceptanceTest(t, b)
}
