package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"
)

// S3 is the local S3-compatible server (gofakes3, objects kept as plain
// files under Dir/buckets/<bucket>/, their metadata beside it), and the
// bucket delivery writes to.
type S3 struct {
	Dir     string
	Bucket  string
	backend *s3afero.MultiBucketBackend
	log     func(string)
}

// OpenS3 opens the folder, creating the bucket if it is not there.
func OpenS3(dir, bucket string, log func(string)) (*S3, gofakes3.Backend, error) {
	for _, d := range []string{filepath.Join(dir, "buckets"), filepath.Join(dir, "metadata")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, err
		}
	}
	osfs := afero.NewOsFs()
	backend, err := s3afero.MultiBucket(afero.NewBasePathFs(osfs, dir),
		s3afero.MultiWithMetaFs(afero.NewBasePathFs(osfs, filepath.Join(dir, "metadata"))))
	if err != nil {
		return nil, nil, err
	}
	s := &S3{Dir: dir, Bucket: bucket, backend: backend, log: log}
	if err := s.ensureBucket(); err != nil {
		return nil, nil, err
	}
	return s, backend, nil
}

// Folder is where the bucket's objects are, as files.
func (s *S3) Folder() string { return filepath.Join(s.Dir, "buckets", s.Bucket) }

func (s *S3) ensureBucket() error {
	ok, err := s.backend.BucketExists(s.Bucket)
	if err != nil || ok {
		return err
	}
	return s.backend.CreateBucket(s.Bucket)
}

// Put writes one object. When the bucket's folder was deleted under the
// running pipeline, it says so once and makes the bucket again, so the
// records still in the stream land.
func (s *S3) Put(key string, body []byte) error {
	_, err := s.backend.PutObject(s.Bucket, key, nil, bytes.NewReader(body), int64(len(body)), nil)
	if err == nil {
		return nil
	}
	if !gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchBucket) && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s.log(fmt.Sprintf("s3: the bucket's folder %s was deleted; making it again (objects that were in it are gone, events not yet delivered will land)", s.Folder()))
	if err := os.MkdirAll(filepath.Join(s.Dir, "buckets"), 0o755); err != nil {
		return err
	}
	if err := s.ensureBucket(); err != nil {
		return err
	}
	_, err = s.backend.PutObject(s.Bucket, key, nil, bytes.NewReader(body), int64(len(body)), nil)
	return err
}
