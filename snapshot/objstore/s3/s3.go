// Package s3 is an objstore.Bucket on Amazon S3 or any S3-compatible
// endpoint through aws-sdk-go-v2. Credentials come from the AWS default
// chain (environment, shared files, IMDS, ...) unless Config.Credentials
// is set. Large objects are uploaded in parts by the SDK's transfer
// manager; S3's single PUT and multipart completion are both atomic.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"amber/snapshot/objstore"
)

// Config configures New.
type Config struct {
	// Bucket is the S3 bucket name.
	Bucket string
	// Endpoint is the service URL (http://127.0.0.1:9000); empty means
	// AWS's endpoint for Region.
	Endpoint string
	// Region is the signing region; empty means the default chain's.
	Region string
	// PathStyle addresses the bucket as a path (http://host/bucket)
	// instead of a virtual host, as MinIO and most S3 clones need.
	PathStyle bool
	// PartSize is the multipart part size in bytes; zero means the
	// transfer manager's default. Objects larger than it go in parts.
	PartSize int64
	// Credentials, when set, replace the default credential chain.
	Credentials aws.CredentialsProvider
}

// Bucket is an S3 bucket.
type Bucket struct {
	client *s3.Client
	tm     *transfermanager.Client
	bucket string
	name   string
}

var _ objstore.Bucket = (*Bucket)(nil)

// New returns a bucket for cfg. It does not contact the service.
func New(ctx context.Context, cfg Config) (*Bucket, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3: empty bucket name")
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3: load aws config: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	tm := transfermanager.New(client, func(o *transfermanager.Options) {
		if cfg.PartSize > 0 {
			o.PartSizeBytes = cfg.PartSize
			o.MultipartUploadThreshold = cfg.PartSize
		}
	})
	name := "s3://" + cfg.Bucket
	if cfg.Endpoint != "" {
		name += " at " + cfg.Endpoint
	}
	return &Bucket{client: client, tm: tm, bucket: cfg.Bucket, name: name}, nil
}

// isNotFound reports whether err is S3's answer for a missing key.
func isNotFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}

// isInvalidRange reports whether err is S3's answer for a range starting
// at or past the end of the object.
func isInvalidRange(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "InvalidRange"
}

// wrap adds the operation and name to err, mapping a missing key to
// objstore.ErrNotFound.
func wrap(op, name string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("s3: %s %s: %w", op, name, objstore.ErrNotFound)
	}
	return fmt.Errorf("s3: %s %s: %w", op, name, err)
}

// Upload implements objstore.Bucket.
func (b *Bucket) Upload(ctx context.Context, name string, r io.Reader, size int64) error {
	if err := objstore.CheckCall(ctx, name); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("s3: upload %s: negative size %d", name, size)
	}
	_, err := b.tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket:        aws.String(b.bucket),
		Key:           aws.String(name),
		Body:          objstore.ExactReader(r, size),
		ContentLength: aws.Int64(size),
	})
	if err != nil {
		return wrap("upload", name, err)
	}
	return nil
}

// Get implements objstore.Bucket.
func (b *Bucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := objstore.CheckCall(ctx, name); err != nil {
		return nil, err
	}
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(name)})
	if err != nil {
		return nil, wrap("get", name, err)
	}
	return out.Body, nil
}

// GetRange implements objstore.Bucket.
func (b *Bucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	if err := objstore.CheckCall(ctx, name); err != nil {
		return nil, err
	}
	if err := objstore.CheckRange(off, length); err != nil {
		return nil, err
	}
	if length == 0 {
		if _, err := b.Attributes(ctx, name); err != nil {
			return nil, err
		}
		return objstore.EmptyReader(), nil
	}
	rng := fmt.Sprintf("bytes=%d-", off)
	if length > 0 {
		rng += fmt.Sprint(off + length - 1)
	}
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(b.bucket), Key: aws.String(name), Range: aws.String(rng),
	})
	if isInvalidRange(err) {
		return objstore.EmptyReader(), nil
	}
	if err != nil {
		return nil, wrap("get range", name, err)
	}
	return out.Body, nil
}

// Exists implements objstore.Bucket.
func (b *Bucket) Exists(ctx context.Context, name string) (bool, error) {
	_, err := b.Attributes(ctx, name)
	if objstore.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Attributes implements objstore.Bucket.
func (b *Bucket) Attributes(ctx context.Context, name string) (objstore.Attrs, error) {
	if err := objstore.CheckCall(ctx, name); err != nil {
		return objstore.Attrs{}, err
	}
	out, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(name)})
	if err != nil {
		return objstore.Attrs{}, wrap("head", name, err)
	}
	return objstore.Attrs{Size: aws.ToInt64(out.ContentLength)}, nil
}

// Iter implements objstore.Bucket. S3 lists keys in UTF-8 binary order,
// which is Go's string order.
func (b *Bucket) Iter(ctx context.Context, prefix string, fn func(name string) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(b.bucket), Prefix: aws.String(prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3: list %q: %w", prefix, err)
		}
		for _, obj := range page.Contents {
			name := aws.ToString(obj.Key)
			if strings.HasSuffix(name, "/") {
				continue // a "directory marker" some tools create
			}
			if err := fn(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete implements objstore.Bucket.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	if err := objstore.CheckCall(ctx, name); err != nil {
		return err
	}
	_, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(name)})
	if err != nil && !isNotFound(err) {
		return wrap("delete", name, err)
	}
	return nil
}

// Name implements objstore.Bucket.
func (b *Bucket) Name() string { return b.name }

// Close implements objstore.Bucket.
func (b *Bucket) Close() error { return nil }
