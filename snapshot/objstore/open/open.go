// Package open opens an objstore.Bucket from a SNAPSHOT_URL. It lives
// apart from objstore so the backends can import objstore without a
// cycle.
//
// Accepted forms:
//
//	/var/lib/amber/snapshots          a local directory (fs)
//	file:///var/lib/amber/snapshots   the same
//	s3://bucket/prefix?endpoint=http://host:port&region=us-east-1&path_style=true
//	minio://host:port/bucket/prefix?secure=false&region=us-east-1
//
// s3 takes credentials from the AWS default chain (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, shared files, instance roles). minio takes them
// from MINIO_ACCESS_KEY and MINIO_SECRET_KEY, else AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY. A path after the bucket is a prefix every object
// name is stored under.
package open

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"amber/snapshot/objstore"
	"amber/snapshot/objstore/fs"
	"amber/snapshot/objstore/minio"
	"amber/snapshot/objstore/s3"
)

// Options adjust Open.
type Options struct {
	// Getenv reads credentials for minio:// URLs; nil means os.Getenv.
	Getenv func(string) string
	// PartSize is the multipart part size for s3 and minio; zero means
	// the backend's default.
	PartSize int64
}

// ErrBadURL is returned (wrapped) for a SNAPSHOT_URL Open cannot use.
var ErrBadURL = errors.New("objstore: bad snapshot url")

// Open returns the bucket rawURL names. The URL may carry no secrets; they
// come from the environment.
func Open(ctx context.Context, rawURL string, opts Options) (objstore.Bucket, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if rawURL == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadURL)
	}
	if !strings.Contains(rawURL, "://") {
		return fs.New(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	q := u.Query()
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("%w: file url with host %q", ErrBadURL, u.Host)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("%w: file url without a path", ErrBadURL)
		}
		return fs.New(u.Path)
	case "s3":
		if u.Host == "" {
			return nil, fmt.Errorf("%w: s3 url without a bucket", ErrBadURL)
		}
		pathStyle, err := boolParam(q, "path_style", false)
		if err != nil {
			return nil, err
		}
		b, err := s3.New(ctx, s3.Config{
			Bucket:    u.Host,
			Endpoint:  q.Get("endpoint"),
			Region:    q.Get("region"),
			PathStyle: pathStyle,
			PartSize:  opts.PartSize,
		})
		if err != nil {
			return nil, err
		}
		return objstore.WithPrefix(b, u.Path), nil
	case "minio":
		bucket, prefix, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		if u.Host == "" || bucket == "" {
			return nil, fmt.Errorf("%w: minio url needs host:port/bucket", ErrBadURL)
		}
		secure, err := boolParam(q, "secure", true)
		if err != nil {
			return nil, err
		}
		ak, sk := getenv("MINIO_ACCESS_KEY"), getenv("MINIO_SECRET_KEY")
		if ak == "" && sk == "" {
			ak, sk = getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
		}
		b, err := minio.New(minio.Config{
			Endpoint:  u.Host,
			Bucket:    bucket,
			AccessKey: ak,
			SecretKey: sk,
			Secure:    secure,
			Region:    q.Get("region"),
			PartSize:  uint64(max(opts.PartSize, 0)),
		})
		if err != nil {
			return nil, err
		}
		return objstore.WithPrefix(b, prefix), nil
	default:
		return nil, fmt.Errorf("%w: unknown scheme %q", ErrBadURL, u.Scheme)
	}
}

func boolParam(q url.Values, key string, def bool) (bool, error) {
	v := q.Get(key)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%w: %s=%q", ErrBadURL, key, v)
	}
	return b, nil
}
